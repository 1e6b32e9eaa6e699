"""The sandbox's control panel (unsigned; loopback only): config, trades, payouts, summary, credentials,
planted statement lines and statement files.

Every endpoint takes `?merchant=<id>` to act on one merchant account;
without it, it acts on all of them (planting a statement line and fetching a
statement need one).
"""

from __future__ import annotations

from aiohttp import web

from channel_simulator import fields
from channel_simulator.accounts import MerchantAccount
from channel_simulator.behaviour import ConfigError, updated
from channel_simulator.edge import JsonError, sandbox_of
from channel_simulator.statement_extras import extra_view, parse_day, parse_extra
from channel_simulator.views import admin_payout_view, admin_trade_view, summary


def _selected(request: web.Request) -> list[MerchantAccount]:
    merchants = sandbox_of(request).merchants
    name = request.query.get("merchant")
    if name is None:
        return list(merchants.values())
    merchant = merchants.get(name)
    if merchant is None:
        raise JsonError(
            404, {"error": "UNKNOWN_MERCHANT", "message": f"no merchant {name!r}; known: {sorted(merchants)}"}
        )
    return [merchant]


async def _apply_config(request: web.Request, selected: list[MerchantAccount]) -> None:
    try:
        changes = fields.json_object(await request.read())
        # All accounts or none: every new behaviour is checked before any is installed.
        new = [updated(merchant.behaviour, changes) for merchant in selected]
    except (fields.FieldError, ConfigError) as exc:
        raise JsonError(400, {"error": "INVALID_CONFIG", "message": str(exc)}) from exc
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


async def admin_sandbox_credentials(request: web.Request) -> web.Response:
    """{protocol: its credentials for the selected accounts}: sandbox keys, for local use only."""
    selected = _selected(request)
    protocols = sandbox_of(request).protocols
    return web.json_response({name: protocol.credentials(selected) for name, protocol in protocols.items()})


def _one(request: web.Request) -> MerchantAccount:
    if "merchant" not in request.query:
        raise JsonError(400, {"error": "MERCHANT_REQUIRED", "message": "name one account: ?merchant=<id>"})
    return _selected(request)[0]


async def _plant(request: web.Request) -> web.Response:
    merchant = _one(request)
    try:
        extra = parse_extra(sandbox_of(request), merchant, await request.read())
    except fields.FieldError as exc:
        raise JsonError(400, {"error": "INVALID_STATEMENT_EXTRA", "message": str(exc)}) from exc
    if not merchant.add_statement_extra(extra):
        raise JsonError(409, {"error": "STATEMENT_EXTRAS_FULL", "message": "no more lines may be planted"})
    return web.json_response(extra_view(merchant, extra), status=201)


async def admin_statement_extras(request: web.Request) -> web.Response:
    """GET: the planted statement lines; POST: plant one (statement_extras.py); DELETE: remove them."""
    if request.method == "POST":
        return await _plant(request)
    selected = _selected(request)
    if request.method == "DELETE":
        removed = sum(len(m.statement_extras) for m in selected)
        for merchant in selected:
            merchant.statement_extras.clear()
        return web.json_response({"removed": removed})
    return web.json_response([extra_view(m, extra) for m in selected for extra in m.statement_extras])


async def admin_statement(request: web.Request) -> web.Response:
    """?merchant=&protocol=&day=yyyy-mm-dd: the statement file the protocol makes, as its bytes."""
    merchant = _one(request)
    name = request.query.get("protocol", "")
    protocol = sandbox_of(request).protocols.get(name)
    if protocol is None:
        raise JsonError(400, {"error": "UNKNOWN_PROTOCOL", "message": f"protocol {name!r} is not enabled"})
    try:
        day = parse_day(request.query.get("day", ""))
    except fields.FieldError as exc:
        raise JsonError(400, {"error": "INVALID_DAY", "message": str(exc)}) from None
    content = protocol.statement(merchant, day)
    if content is None:
        raise JsonError(404, {"error": "NO_STATEMENT", "message": f"{name} offers no statement files"})
    return web.Response(body=content, content_type="application/octet-stream")
