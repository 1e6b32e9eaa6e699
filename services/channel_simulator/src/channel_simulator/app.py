"""The channel simulator: an HTTP service that behaves like an asynchronous QR channel.

A signed charge is answered PENDING with a QR payload; after `pay_delay_ms`
the simulated payer pays (or not), and the channel posts a signed
notification to the merchant's notify_url, retrying until it is
acknowledged. Declines, duplicated notifications and lost notifications are
switchable at runtime through /v1/admin/config for tests and load runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from aiohttp import ClientSession, ClientTimeout, web
from paykit.money import AmountError, CurrencyError, Money

from channel_simulator.protocol import ACK_BODY, signature, verify

log = logging.getLogger(__name__)

NOTIFY_MAX_ATTEMPTS = 6
NOTIFY_FIRST_RETRY_S = 0.5
NOTIFY_TIMEOUT_S = 5.0
MAX_BODY_BYTES = 64 * 1024
MAX_TRADES = 1_000_000


@dataclass
class Behaviour:
    """Switchable at runtime; defaults are a well-behaved channel."""

    pay_delay_ms: int = 50
    decline_rate: float = 0.0
    duplicate_notifications: int = 1
    drop_notifications: bool = False


@dataclass
class Trade:
    trade_no: str
    out_trade_no: str
    amount: str
    currency: str
    notify_url: str
    status: str = "PENDING"
    paid_at: str | None = None
    notify_id: str | None = None
    notifications_sent: int = 0
    notifications_acked: int = 0


@dataclass
class Channel:
    merchant_id: str
    key: bytes
    behaviour: Behaviour = field(default_factory=Behaviour)
    trades: dict[str, Trade] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    seq: int = 0

    def next_trade_no(self) -> str:
        self.seq += 1
        return f"SIM{datetime.now(UTC):%Y%m%d}{self.seq:012d}"


def _signed_headers(channel: Channel, method: str, path: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "X-Sim-Merchant": channel.merchant_id,
        "X-Sim-Timestamp": ts,
        "X-Sim-Signature": signature(channel.key, ts, method, path, body),
        "Content-Type": "application/json",
    }


async def _read_verified(request: web.Request, channel: Channel) -> bytes:
    body = await request.read()
    if len(body) > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=len(body))
    if request.headers.get("X-Sim-Merchant") != channel.merchant_id:
        raise web.HTTPUnauthorized(text=json.dumps({"error": "UNKNOWN_MERCHANT"}))
    reason = verify(
        channel.key,
        request.headers.get("X-Sim-Timestamp", ""),
        request.method,
        request.path,
        body,
        request.headers.get("X-Sim-Signature", ""),
        time.time(),
    )
    if reason is not None:
        raise web.HTTPUnauthorized(text=json.dumps({"error": "BAD_SIGNATURE", "message": reason}))
    return body


def _reply(
    channel: Channel, request: web.Request, payload: dict[str, object], status: int = 200
) -> web.Response:
    body = json.dumps(payload).encode()
    return web.Response(
        body=body,
        status=status,
        headers=_signed_headers(channel, request.method, request.path, body),
    )


async def create_charge(request: web.Request) -> web.Response:
    channel: Channel = request.app["channel"]
    body = await _read_verified(request, channel)
    try:
        data = json.loads(body)
        out_trade_no, amount, currency = data["out_trade_no"], data["amount"], data["currency"]
        notify_url = data["notify_url"]
        Money.parse(amount, currency)
    except (ValueError, KeyError, TypeError, AmountError, CurrencyError) as exc:
        return _reply(
            channel,
            request,
            {"result": "INVALID", "code": "INVALID_REQUEST", "message": str(exc)},
            400,
        )
    existing = channel.trades.get(out_trade_no)
    if existing is not None:
        # Channels answer a repeated out_trade_no with the trade they already have.
        if (existing.amount, existing.currency) != (amount, currency):
            return _reply(channel, request, {"result": "INVALID", "code": "OUT_TRADE_NO_USED"}, 409)
        return _reply(channel, request, _charge_view(existing))
    if len(channel.trades) >= MAX_TRADES:
        return _reply(channel, request, {"result": "INVALID", "code": "SANDBOX_FULL"}, 503)
    if channel.rng.random() < channel.behaviour.decline_rate:
        return _reply(
            channel,
            request,
            {"result": "DECLINED", "code": "RISK_DECLINED", "message": "declined by sandbox"},
        )
    trade = Trade(channel.next_trade_no(), out_trade_no, amount, currency, notify_url)
    channel.trades[out_trade_no] = trade
    request.app["tasks"].add(asyncio.create_task(_payer_pays(request.app, trade)))
    return _reply(channel, request, _charge_view(trade))


def _charge_view(trade: Trade) -> dict[str, object]:
    return {
        "result": trade.status,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "amount": trade.amount,
        "currency": trade.currency,
        "qr_code": f"simpay://qr/{trade.trade_no}",
        "paid_at": trade.paid_at,
    }


async def query_charge(request: web.Request) -> web.Response:
    channel: Channel = request.app["channel"]
    await _read_verified(request, channel)
    trade = channel.trades.get(request.match_info["out_trade_no"])
    if trade is None:
        return _reply(channel, request, {"result": "NOT_FOUND"})
    return _reply(channel, request, _charge_view(trade))


async def _payer_pays(app: web.Application, trade: Trade) -> None:
    channel: Channel = app["channel"]
    await asyncio.sleep(channel.behaviour.pay_delay_ms / 1000)
    trade.status = "SUCCESS"
    trade.paid_at = datetime.now(UTC).isoformat(timespec="seconds")
    trade.notify_id = f"N{trade.trade_no}"
    if channel.behaviour.drop_notifications:
        return
    for _ in range(max(1, channel.behaviour.duplicate_notifications)):
        await _notify(app, trade)


async def _notify(app: web.Application, trade: Trade) -> None:
    channel: Channel = app["channel"]
    body = json.dumps(
        {
            "notify_id": trade.notify_id,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "status": trade.status,
            "amount": trade.amount,
            "currency": trade.currency,
            "paid_at": trade.paid_at,
        }
    ).encode()
    path = urlsplit(trade.notify_url).path
    delay_s = NOTIFY_FIRST_RETRY_S
    session: ClientSession = app["http"]
    for _attempt in range(NOTIFY_MAX_ATTEMPTS):
        trade.notifications_sent += 1
        try:
            async with session.post(
                trade.notify_url, data=body, headers=_signed_headers(channel, "POST", path, body)
            ) as resp:
                if resp.status == 200 and (await resp.text()).strip() == ACK_BODY:
                    trade.notifications_acked += 1
                    return
        except (TimeoutError, OSError) as exc:
            log.info("notification not delivered: %s", exc)
        await asyncio.sleep(delay_s)
        delay_s *= 2


async def admin_config(request: web.Request) -> web.Response:
    channel: Channel = request.app["channel"]
    if request.method == "POST":
        data = await request.json()
        unknown = set(data) - set(asdict(channel.behaviour))
        if unknown:
            return web.json_response({"error": f"unknown settings: {sorted(unknown)}"}, status=400)
        channel.behaviour = Behaviour(**{**asdict(channel.behaviour), **data})
    return web.json_response(asdict(channel.behaviour))


async def admin_trades(request: web.Request) -> web.Response:
    channel: Channel = request.app["channel"]
    return web.json_response([asdict(t) for t in channel.trades.values()])


def build_app(merchant_id: str, key: bytes, behaviour: Behaviour, seed: int | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app["channel"] = Channel(merchant_id, key, behaviour, rng=random.Random(seed))
    app["tasks"] = set()

    async def on_startup(app: web.Application) -> None:
        app["http"] = ClientSession(timeout=ClientTimeout(total=NOTIFY_TIMEOUT_S))

    async def on_cleanup(app: web.Application) -> None:
        for task in app["tasks"]:
            task.cancel()
        await app["http"].close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/v1/charges", create_charge)
    app.router.add_get("/v1/charges/{out_trade_no}", query_charge)
    app.router.add_route("*", "/v1/admin/config", admin_config)
    app.router.add_get("/v1/admin/trades", admin_trades)
    return app
