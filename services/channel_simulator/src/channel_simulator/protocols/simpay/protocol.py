"""simpay as a protocol plugin: its routes under /v1, its notifications and their acknowledgement.

Notifications are the JSON bodies of views.py, signed like every simpay
message (signing.py) with the merchant's id and a fresh timestamp on each
attempt; the merchant acknowledges with HTTP 200 and the body "success".
Its merchant ids are the sandbox's account ids, its key the operator's
secret (SIMULATOR_SECRET).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from channel_simulator.accounts import MerchantAccount
from channel_simulator.protocols.base import Notice, PaymentNotice, Protocol
from channel_simulator.protocols.simpay import charges, payouts, refunds
from channel_simulator.protocols.simpay.signing import ACK_BODY, signed_headers
from channel_simulator.protocols.simpay.views import payment_notification, refund_notification
from channel_simulator.protocols.simpay.wire import NAME
from channel_simulator.sandbox import Sandbox


class SimpayProtocol(Protocol):
    name = NAME
    prefix = "/v1"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        for account_id in sandbox.merchants:
            sandbox.register_merchant(NAME, account_id, account_id)

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post("/v1/charges", charges.create_charge),
            web.get("/v1/charges/{out_trade_no}", charges.query_charge),
            web.post("/v1/charges/{out_trade_no}/close", charges.close_charge),
            web.post("/v1/refunds", refunds.create_refund),
            web.get("/v1/refunds/{out_refund_no}", refunds.query_refund),
            web.post("/v1/payouts", payouts.create_payout),
            web.get("/v1/payouts/{out_payout_no}", payouts.query_payout),
        ]

    def credentials(self, merchants: Sequence[MerchantAccount]) -> dict[str, Any]:
        ids = [self.sandbox.protocol_merchant_id(NAME, m.merchant_id) or m.merchant_id for m in merchants]
        # One HMAC key for every account; local use only, like every sandbox credential.
        return {"merchant_ids": ids, "secret": self.sandbox.secret.decode()}

    def format_notification(self, notice: Notice) -> bytes:
        if isinstance(notice, PaymentNotice):
            return json.dumps(payment_notification(notice.trade)).encode()
        return json.dumps(refund_notification(notice.refund)).encode()

    def sign_notification(self, notice: Notice, url: str, body: bytes, now_s: float) -> dict[str, str]:
        account_id = notice.merchant.merchant_id
        merchant_id = self.sandbox.protocol_merchant_id(NAME, account_id) or account_id
        return signed_headers(merchant_id, self.sandbox.secret, "POST", urlsplit(url).path, body, now_s)

    def is_acknowledged(self, status: int, body: bytes) -> bool:
        return status == 200 and body.decode("utf-8", "replace").strip() == ACK_BODY
