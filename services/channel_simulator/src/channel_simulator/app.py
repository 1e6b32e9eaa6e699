"""The channel simulator: an HTTP sandbox that behaves like an asynchronous QR channel.

Several merchant accounts live in one process (X-Sim-Merchant picks the
account; all share one HMAC key). Each keeps its own trades, refunds, payouts
and runtime Behaviour, so the same out_trade_no may exist at two merchants.

Signed API (see protocol.py), answers signed too:
    POST /v1/charges                      {out_trade_no, amount, currency, notify_url, subject}
        -> PENDING with a QR payload; after pay_delay_ms the payer pays and a
           PAYMENT notification is posted to notify_url until acknowledged.
    GET  /v1/charges/{out_trade_no}       -> the trade (PENDING | SUCCESS | CLOSED) or NOT_FOUND
    POST /v1/charges/{out_trade_no}/close -> CLOSED; TRADE_ALREADY_PAID (409) once paid. Closing
           an unknown number stores a CLOSED tombstone: a later charge with it is refused
           (INVALID, TRADE_CLOSED) and never takes money.
    POST /v1/refunds                      {out_refund_no, out_trade_no, amount, currency, notify_url, reason}
        -> PROCESSING; after refund_delay_ms SUCCESS (or FAILED, REFUND_DECLINED) and a
           REFUND notification. Refused: TRADE_NOT_FOUND, TRADE_NOT_PAID, REFUND_AMOUNT_EXCEEDED
           (result FAILED); OUT_REFUND_NO_USED (409), CURRENCY_MISMATCH (400).
    GET  /v1/refunds/{out_refund_no}      -> the refund or NOT_FOUND
    POST /v1/payouts                      {out_payout_no, merchant_ref, amount, currency}
        -> PAID at once (payout_no, paid_at), or FAILED with PAYOUT_DECLINED; no notification.
           A repeated out_payout_no gets the same payout back; with another amount, currency or
           merchant_ref it is refused: OUT_PAYOUT_NO_USED (409). See payouts.py.
    GET  /v1/payouts/{out_payout_no}      -> the payout or NOT_FOUND

Notifications: {"type": "PAYMENT" | "REFUND", "notify_id", ...}; a body
without "type" is a payment one. Acknowledge with HTTP 200 and body "success".

Faults, per request through directives in the charge's subject (directives.py:
sim:timeout, sim:success_after_timeout, sim:decline, sim:delay_notify=<ms>,
sim:duplicate_notify=<n>, sim:drop_notify, sim:out_of_order, sim:no_pay,
sim:pay_delay=<ms>) or per merchant through Behaviour (behaviour.py: the
matching rates and switches, plus unavailable, refund_delay_ms,
refund_decline_rate, payout_decline_rate, hang_s).

Admin (unsigned, `?merchant=<id>` for one account, else all):
    GET|POST /v1/admin/config   read or change Behaviour (unknown key -> 400)
    GET /v1/admin/trades        trades with their refunds and delivery counts
    GET /v1/admin/payouts       payouts, PAID and FAILED
    GET /v1/admin/summary       per merchant and currency: paid, refunded, net, paid_out
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import ClientSession, ClientTimeout, web

from channel_simulator import admin, charges, payouts, refunds
from channel_simulator.behaviour import Behaviour
from channel_simulator.limits import MAX_BODY_BYTES, NOTIFY_TIMEOUT_S
from channel_simulator.sandbox import Sandbox
from channel_simulator.wire import SANDBOX, json_errors

__all__ = ["Behaviour", "build_app"]


def build_app(
    merchant_ids: Sequence[str], key: bytes, behaviour: Behaviour | None = None, seed: int | None = None
) -> web.Application:
    """The sandbox as an aiohttp application; `seed` makes every random draw repeatable."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors])
    sandbox = Sandbox.create(merchant_ids, key, behaviour or Behaviour(), seed)
    app[SANDBOX] = sandbox

    async def on_startup(_app: web.Application) -> None:
        sandbox.http = ClientSession(timeout=ClientTimeout(total=NOTIFY_TIMEOUT_S))

    async def on_shutdown(_app: web.Application) -> None:
        # Before connections are drained: held ("lost") requests let go, tasks stop.
        await sandbox.shutdown()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.router.add_post("/v1/charges", charges.create_charge)
    app.router.add_get("/v1/charges/{out_trade_no}", charges.query_charge)
    app.router.add_post("/v1/charges/{out_trade_no}/close", charges.close_charge)
    app.router.add_post("/v1/refunds", refunds.create_refund)
    app.router.add_get("/v1/refunds/{out_refund_no}", refunds.query_refund)
    app.router.add_post("/v1/payouts", payouts.create_payout)
    app.router.add_get("/v1/payouts/{out_payout_no}", payouts.query_payout)
    app.router.add_get("/v1/admin/config", admin.admin_config)
    app.router.add_post("/v1/admin/config", admin.admin_config)
    app.router.add_get("/v1/admin/trades", admin.admin_trades)
    app.router.add_get("/v1/admin/payouts", admin.admin_payouts)
    app.router.add_get("/v1/admin/summary", admin.admin_summary)
    return app
