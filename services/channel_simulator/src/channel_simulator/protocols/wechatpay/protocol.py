"""WeChat Pay API v3 as a protocol plugin: routes under /wechatpay, callbacks, credentials, bills.

Callbacks: TRANSACTION.SUCCESS when the payer pays, REFUND.SUCCESS when a refund settles and
REFUND.CLOSED when the channel declines it (no money moved). The body is WeChat Pay's envelope
{id, create_time, event_type, resource_type, summary, resource}, the resource sealed with
AEAD_AES_256_GCM under the merchant's APIv3 key (associated_data "transaction" or "refund"),
built once per notification so every copy and retry sends the same bytes (and the same id);
each attempt is signed afresh with the platform key. Any 2xx acknowledges (WeChat Pay's rule:
200 or 204, no body needed); anything else is sent again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

from aiohttp import web

from channel_simulator.accounts import MerchantAccount, RefundStatus
from channel_simulator.protocols.base import Notice, PaymentNotice, Protocol
from channel_simulator.protocols.wechatpay import bills, refunds, trades
from channel_simulator.protocols.wechatpay.keys import Keyring
from channel_simulator.protocols.wechatpay.signing import AEAD_ALGORITHM, seal, signed_headers
from channel_simulator.protocols.wechatpay.views import refund_resource, rfc3339, transaction_view
from channel_simulator.protocols.wechatpay.wire import NAME, PREFIX
from channel_simulator.sandbox import Sandbox

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TRANSACTION_SUCCESS: Final = "TRANSACTION.SUCCESS"
# (event_type, summary) of a refund callback by the refund's final status.
_REFUND_EVENTS: Final = {
    RefundStatus.SUCCESS: ("REFUND.SUCCESS", "退款成功"),
    RefundStatus.FAILED: ("REFUND.CLOSED", "退款关闭"),
}
_V3: Final = f"{PREFIX}/v3"


class WechatPayProtocol(Protocol):
    name = NAME
    prefix = PREFIX

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        # Made once at start-up, for this run only (keys.py).
        self.keyring = Keyring.generate(sandbox.merchants.values())
        self.links = bills.BillLinks()
        for keys in self.keyring.accounts():
            sandbox.register_merchant(NAME, keys.mchid, keys.account_id)

    def _with_keys(self, handler: Callable[[Keyring, web.Request], Awaitable[web.Response]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await handler(self.keyring, request)

        return handle

    def _with_links(
        self, handler: Callable[[Keyring, bills.BillLinks, web.Request], Awaitable[web.Response]]
    ) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await handler(self.keyring, self.links, request)

        return handle

    def routes(self) -> Sequence[web.RouteDef]:
        by_out_trade_no = f"{_V3}/pay/transactions/out-trade-no/{{out_trade_no}}"
        refund = f"{_V3}/refund/domestic/refunds"
        return [
            web.post(f"{_V3}/pay/transactions/native", self._with_keys(trades.create_native)),
            web.get(by_out_trade_no, self._with_keys(trades.query_by_out_trade_no)),
            web.post(f"{by_out_trade_no}/close", self._with_keys(trades.close)),
            web.post(refund, self._with_keys(refunds.create_refund)),
            web.get(f"{refund}/{{out_refund_no}}", self._with_keys(refunds.query_refund)),
            web.get(f"{_V3}/bill/tradebill", self._with_links(bills.tradebill)),
            web.get(bills.DOWNLOAD_PATH, self._with_links(bills.download)),
        ]

    def credentials(self, merchants: Sequence[MerchantAccount]) -> dict[str, Any]:
        """{"merchants": {account id: the keys channel_gateway's wechatpay account_config takes}}:
        one WeChat Pay merchant per sandbox account (the gateway's seeder configures the first)."""
        published = {m.merchant_id: self.keyring.credentials(m.merchant_id, PREFIX) for m in merchants}
        return {"merchants": published}

    def format_notification(self, notice: Notice) -> bytes:
        keys = self.keyring.of(notice.merchant.merchant_id)
        if isinstance(notice, PaymentNotice):
            # A payment callback says the trade was paid, whatever refunds followed since.
            resource = transaction_view(keys, notice.trade, "SUCCESS")
            event_type, summary, original_type = TRANSACTION_SUCCESS, "支付成功", "transaction"
        else:
            event = _REFUND_EVENTS.get(notice.refund.status)
            if event is None:
                raise ValueError(f"refund {notice.refund.out_refund_no} is not final: nothing to call back")
            resource = refund_resource(keys, notice.trade, notice.refund)
            (event_type, summary), original_type = event, "refund"
        plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
        sealed = seal(keys.apiv3_key, plaintext, original_type)
        envelope = {
            # The same id on every copy and retry: the merchant's way to spot a repeat.
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{NAME}:{keys.mchid}:{_notify_id(notice)}")),
            "create_time": rfc3339(datetime.now(UTC)),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": AEAD_ALGORITHM,
                "ciphertext": sealed.ciphertext,
                "associated_data": sealed.associated_data,
                "nonce": sealed.nonce,
            },
        }
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()

    def sign_notification(self, notice: Notice, url: str, body: bytes, now_s: float) -> dict[str, str]:
        platform = self.keyring.platform
        headers = signed_headers(platform.private_key, platform.serial_no, body, now_s)
        headers["Content-Type"] = "application/json"
        return headers

    def is_acknowledged(self, status: int, body: bytes) -> bool:
        return 200 <= status < 300

    def statement(self, merchant: MerchantAccount, day: date) -> bytes | None:
        return bills.trade_bill(self.keyring.of(merchant.merchant_id), merchant, day)


def _notify_id(notice: Notice) -> str:
    if isinstance(notice, PaymentNotice):
        return notice.trade.notify_id
    return notice.refund.notify_id
