"""The channel simulator: an HTTP sandbox that plays payment channels, each in its own protocol.

The channel's behaviour is protocol-neutral (operations.py: charges and their
fates, closes and tombstones, refunds and their limits, payouts; lifecycle.py:
the payer, refunds finishing, notifications). Each protocol (protocols/, the
interface in protocols/base.py) puts its own wire format on top, under its
own path prefix, and formats, signs and judges the acknowledgement of the
notifications of the trades and refunds it created. PROTOCOLS lists the
protocols build_app can enable (all by default, SIMULATOR_PROTOCOLS to
choose). "simpay", the sandbox's own protocol, is below.

Several merchant accounts live in one process, shared by every protocol: each
protocol maps its own merchant identifier to an account (simpay: the account
id itself, in X-Sim-Merchant; all share one HMAC key). Each account keeps its
own trades, refunds, payouts and runtime Behaviour, numbered per protocol, so
the same out_trade_no may exist at two merchants, or through two protocols.

simpay's signed API (see protocols/simpay/signing.py), answers signed too:
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
           merchant_ref it is refused: OUT_PAYOUT_NO_USED (409). See protocols/simpay/payouts.py.
    GET  /v1/payouts/{out_payout_no}      -> the payout or NOT_FOUND

simpay's notifications: {"type": "PAYMENT" | "REFUND", "notify_id", ...}; a
body without "type" is a payment one. Acknowledge with HTTP 200 and body "success".

Faults, per request through directives in the charge's subject (directives.py:
sim:timeout, sim:success_after_timeout, sim:decline, sim:delay_notify=<ms>,
sim:duplicate_notify=<n>, sim:drop_notify, sim:out_of_order, sim:no_pay,
sim:pay_delay=<ms>) or per merchant through Behaviour (behaviour.py: the
matching rates and switches, plus unavailable, refund_delay_ms,
refund_decline_rate, payout_decline_rate, hang_s), the same through every protocol.

Admin (unsigned, `?merchant=<id>` for one account, else all; every protocol's records):
    GET|POST /v1/admin/config   read or change Behaviour (unknown key -> 400)
    GET /v1/admin/trades        trades with their refunds and delivery counts
    GET /v1/admin/payouts       payouts, PAID and FAILED
    GET /v1/admin/summary       per merchant and currency: paid, refunded, net, paid_out
    GET /v1/admin/sandbox-credentials
                                {protocol: its credentials} (simpay: {"merchant_ids", "secret"}),
                                so a local gateway can be configured for each protocol. These
                                keys are the sandbox's, generated at start-up or given by the
                                operator, for local use only: never a real channel's. alipay:
                                {<account id>: {"app_id", "seller_id", "app_private_key_pem",
                                "alipay_public_key_pem", "gateway_path"}} (protocols/alipay/).
    GET|POST|DELETE /v1/admin/statement-extras
                                statement lines planted for reconciliation tests (see
                                statement_extras.py): POST (?merchant= required) {"protocol",
                                "day": "yyyy-mm-dd", "kind": "PAYMENT" | "REFUND", "out_trade_no",
                                "amount", "currency", optional "trade_no", "out_refund_no" (refunds),
                                "refund_no", "occurred_at", "subject"} -> 201 and the line; it is
                                listed on that day's statement of that protocol next to the real
                                lines. A PAYMENT for a number never charged is a payment the channel
                                "invents"; GET lists the planted lines, DELETE removes them. A day's
                                payments whose notifications were dropped (sim:drop_notify) are on
                                its statement as every paid trade is.
    GET /v1/admin/statement?merchant=&protocol=&day=yyyy-mm-dd
                                the statement file the protocol makes for that account and day
                                (404 NO_STATEMENT for a protocol without statements).

Protocols besides simpay, each under its own prefix: alipay (protocols/alipay/: POST
/alipay/gateway.do, the OpenAPI gateway with RSA2; GET /alipay/bills/download, the trade bill);
wechatpay (protocols/wechatpay/: WeChat Pay API v3 under /wechatpay/v3, Native pay, refunds,
AEAD-encrypted callbacks, the trade bill).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from aiohttp import ClientSession, ClientTimeout, web

from channel_simulator import admin
from channel_simulator.behaviour import Behaviour
from channel_simulator.edge import SANDBOX, json_errors
from channel_simulator.limits import MAX_BODY_BYTES, NOTIFY_TIMEOUT_S
from channel_simulator.protocols.alipay import AlipayProtocol
from channel_simulator.protocols.base import ProtocolRegistry
from channel_simulator.protocols.card import CardProtocol
from channel_simulator.protocols.simpay import SimpayProtocol
from channel_simulator.protocols.wechatpay import WechatPayProtocol
from channel_simulator.sandbox import Sandbox

__all__ = ["PROTOCOLS", "Behaviour", "build_app"]

# Every protocol the sandbox can speak; a new protocol registers here, under its own name.
PROTOCOLS: Final = ProtocolRegistry()
PROTOCOLS.register(SimpayProtocol.name, SimpayProtocol)
PROTOCOLS.register(AlipayProtocol.name, AlipayProtocol)
PROTOCOLS.register(WechatPayProtocol.name, WechatPayProtocol)
PROTOCOLS.register(CardProtocol.name, CardProtocol)


def build_app(
    merchant_ids: Sequence[str],
    key: bytes,
    behaviour: Behaviour | None = None,
    seed: int | None = None,
    *,
    protocols: Iterable[str] | None = None,
    registry: ProtocolRegistry | None = None,
) -> web.Application:
    """The sandbox as an aiohttp application.

    `key` is the operator's secret (simpay's HMAC key); `seed` makes every random
    draw repeatable; `protocols` names the protocols to enable (every one in
    `registry`, PROTOCOLS by default, when None). Raises ValueError for an
    unknown protocol or one whose routes leave its prefix.
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors])
    sandbox = Sandbox.create(merchant_ids, key, behaviour or Behaviour(), seed)
    sandbox.protocols = (registry or PROTOCOLS).build(protocols, sandbox)
    app[SANDBOX] = sandbox

    async def on_startup(_app: web.Application) -> None:
        sandbox.http = ClientSession(timeout=ClientTimeout(total=NOTIFY_TIMEOUT_S))

    async def on_shutdown(_app: web.Application) -> None:
        # Before connections are drained: held ("lost") requests let go, tasks stop.
        await sandbox.shutdown()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/v1/admin/config", admin.admin_config)
    app.router.add_post("/v1/admin/config", admin.admin_config)
    app.router.add_get("/v1/admin/trades", admin.admin_trades)
    app.router.add_get("/v1/admin/payouts", admin.admin_payouts)
    app.router.add_get("/v1/admin/summary", admin.admin_summary)
    app.router.add_get("/v1/admin/sandbox-credentials", admin.admin_sandbox_credentials)
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, "/v1/admin/statement-extras", admin.admin_statement_extras)
    app.router.add_get("/v1/admin/statement", admin.admin_statement)
    for protocol in sandbox.protocols.values():
        app.router.add_routes(protocol.routes())
    return app
