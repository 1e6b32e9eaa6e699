"""The sandbox's control panel (unsigned; loopback only): config, trades, payouts, summary.

Every endpoint takes `?merchant=<id>` to act on one merchant account;
without it, it acts on all of them.
"""

from __future__ import annotations

from aiohttp import web

from channel_simulator import fields
from channel_simulator.accounts import MerchantAccount
from channel_simulator.behaviour import ConfigError, updated
from channel_simulator.views import admin_payout_view, admin_trade_view, summary
from channel_simulator.wire import ApiError, sandbox_of


def _selected(request: web.Request) -> list[MerchantAccount]:
    merchants = sandbox_of(request).merchants
    name = request.query.get("merchant")
    if name is None:
        return list(merchants.values())
    merchant = merchants.get(name)
    if merchant is None:
        raise ApiError(
            404, {"error": "UNKNOWN_MERCHANT", "message": f"no merchant {name!r}; known: {sorted(merchants)}"}
        )
    return [merchant]


async def _apply_config(request: web.Request, selected: list[MerchantAccount]) -> None:
    try:
        changes = fields.json_object(await request.read())
        # All accounts or none: every new behaviour is checked before any is installed.
        new = [updated(merchant.behaviour, changes) for merchant in selected]
    except (fields.FieldError, ConfigError) as exc:
        raise ApiError(400, {"error": "INVALID_CONFIG", "message": str(exc)}) from exc
    for merchant, behaviour in zip(selected, new, strict=True):
        merchant.behaviour = behaviour


async def admin_config(request: web.Request) -> web.Response:
    selected = _selected(request)
    if request.method == "POST":
        await _apply_config(request, selected)
    if "merchant" in request.query:
        return web.json_response(selected[0].behaviour.as_dict())
    return web.json_response({m.merchant_id: m.behaviour.as_dict() for m in selected})


async def admin_trades(request: web.Request) -> web.Response:
    return web.json_response(
        [admin_trade_view(m, trade) for m in _selected(request) for trade in m.trades.values()]
    )


async def admin_payouts(request: web.Request) -> web.Response:
    return web.json_response(
        [admin_payout_view(m, payout) for m in _selected(request) for payout in m.payouts.values()]
    )


async def admin_summary(request: web.Request) -> web.Response:
    return web.json_response(summary(_selected(request)))
