"""The sandbox Alipay as a protocol plugin: its apps and keys, gateway.do, the bill link, notifications.

At start-up it makes the channel's own ("Alipay") RSA2 key pair and, per merchant account,
one Alipay app: an app id ("9021" + 12 digits, like an Alipay sandbox app), a seller id
("2088" + 12 digits, the account's PID), and the app's key pair. The sandbox keeps the app's
public key to verify the app's requests; credentials() publishes, per account id, what the
merchant's gateway needs (channel_gateway's alipay/sandbox.py account_config reads it):

    {"<account id>": {"app_id", "seller_id", "app_private_key_pem", "alipay_public_key_pem",
                      "gateway_path": "/alipay/gateway.do"}}

The keys are published as Alipay's key tool gives them (base64 DER, no PEM headers); they are
the sandbox's, for local use only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web

from channel_simulator.accounts import MerchantAccount, RefundStatus, Trade
from channel_simulator.edge import lose_answer
from channel_simulator.protocols.alipay import methods, notifications, signing, statement, wire
from channel_simulator.protocols.alipay.methods import Call
from channel_simulator.protocols.alipay.signing import KeyPair
from channel_simulator.protocols.alipay.wire import BILL_PATH, GATEWAY_PATH, NAME, Failure, GatewayRefusal
from channel_simulator.protocols.base import Notice, PaymentNotice, Protocol, RefundNotice
from channel_simulator.sandbox import Sandbox

# A request's timestamp must be "yyyy-MM-dd HH:mm:ss" and within this of the sandbox's clock
# (isv.invalid-timestamp). Wide on purpose: Alipay asks for Beijing time, but its own SDKs send
# the machine's local time (alipay-sdk-python: datetime.now()), which may be a day away.
TIMESTAMP_TOLERANCE: Final = timedelta(days=1)
# Alipay's bill_download_url is valid for 30 seconds [bill].
BILL_LINK_TTL_S: Final = 30
SIGN_TYPE: Final = "RSA2"


@dataclass(frozen=True)
class App:
    """One Alipay app of one sandbox account, and the app's key pair."""

    app_id: str
    seller_id: str
    account_id: str
    keys: KeyPair


class AlipayProtocol(Protocol):
    name = NAME
    prefix = wire.PREFIX

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.alipay_keys = KeyPair.generate()
        self._bill_secret = secrets.token_bytes(32)
        self.apps: dict[str, App] = {}
        self._app_of_account: dict[str, App] = {}
        for account in sandbox.merchants.values():
            number = account.number
            app = App(f"9021{number:012d}", f"2088{number:012d}", account.merchant_id, KeyPair.generate())
            sandbox.register_merchant(NAME, app.app_id, account.merchant_id)
            self.apps[app.app_id] = app
            self._app_of_account[account.merchant_id] = app

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post(GATEWAY_PATH, self.gateway), web.get(BILL_PATH, self.download_bill)]

    def credentials(self, merchants: Sequence[MerchantAccount]) -> dict[str, Any]:
        return {
            m.merchant_id: {
                "app_id": app.app_id,
                "seller_id": app.seller_id,
                "app_private_key_pem": app.keys.private_text(),
                "alipay_public_key_pem": self.alipay_keys.public_text(),
                "gateway_path": GATEWAY_PATH,
            }
            for m in merchants
            for app in [self._app_of_account[m.merchant_id]]
        }

    # -- gateway.do --------------------------------------------------------------------
    def _refusal(self, code: str, sub_code: str, sub_msg: str) -> GatewayRefusal:
        return GatewayRefusal(code, sub_code, sub_msg, self.alipay_keys.private)

    def _caller(self, params: dict[str, str]) -> tuple[App, MerchantAccount]:
        app_id = params.get("app_id", "")
        if not app_id:
            raise self._refusal("40001", "isv.missing-app-id", "缺少AppID参数")
        merchant = self.sandbox.merchant_for(NAME, app_id)
        app = self.apps.get(app_id)
        if merchant is None or app is None:
            raise self._refusal("40002", "isv.invalid-app-id", f"无效的AppID参数 [{app_id[:40]}]")
        return app, merchant

    def _authenticate(self, params: dict[str, str], app: App, now: datetime) -> str:
        """The method to run, once the request proves to be the app's; GatewayRefusal otherwise."""
        method = params.get("method", "")
        if not method:
            raise self._refusal("40001", "isv.missing-method", "缺少方法名参数")
        if method not in methods.METHODS:
            raise self._refusal("40002", "isv.invalid-method", f"不存在的方法名 [{method[:80]}]")
        if not params.get("sign_type"):
            raise self._refusal("40001", "isv.missing-signature-type", "缺少签名类型参数")
        if params["sign_type"] != SIGN_TYPE:
            raise self._refusal("40002", "isv.invalid-signature-type", f"无效的签名类型 [only {SIGN_TYPE}]")
        if not params.get("sign"):
            raise self._refusal("40001", "isv.missing-signature", "缺少签名参数")
        content = signing.sign_content(params, signing.REQUEST_UNSIGNED)
        if not signing.verifies(app.keys.public, content, params["sign"]):
            raise self._refusal(
                "40002", "isv.invalid-signature", "验签出错, 建议检查签名字符串或签名私钥与应用公钥是否匹配"
            )
        self._check_timestamp(params.get("timestamp", ""), now)
        if params.get("charset", signing.CHARSET).lower() != signing.CHARSET:
            raise self._refusal("40002", "isv.invalid-charset", f"字符集错误 [only {signing.CHARSET}]")
        return method

    def _check_timestamp(self, text: str, now: datetime) -> None:
        if not text:
            raise self._refusal("40001", "isv.missing-timestamp", "缺少时间戳参数")
        try:
            sent_at = wire.parse_beijing_time(text)
        except ValueError:
            sent_at = None
        if sent_at is None or abs(now - sent_at) > TIMESTAMP_TOLERANCE:
            why = "not yyyy-MM-dd HH:mm:ss" if sent_at is None else f"more than {TIMESTAMP_TOLERANCE} off"
            raise self._refusal("40002", "isv.invalid-timestamp", f"非法的时间戳参数 [{why}]")

    async def gateway(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            params = wire.parse_params(request.query_string, body)
        except ValueError as exc:  # UnicodeDecodeError included: the sandbox speaks utf-8 only
            raise self._refusal("40002", "isv.invalid-parameter", f"参数无效 [{exc}]") from None
        app, merchant = self._caller(params)
        if merchant.behaviour.unavailable:
            raise wire.Outage("the channel is down")
        now = datetime.now(UTC)
        method = self._authenticate(params, app, now)
        try:
            call = Call(
                self.sandbox, merchant, app.app_id, app.seller_id, params,
                wire.Biz.parse(params.get("biz_content", "")),
                lambda day: self._bill_link(request, app, day), now,
            )  # fmt: skip
            node = await methods.METHODS[method](call)
        except Failure as exc:
            node = exc.node()
        if node is None:
            return await lose_answer(request, merchant)
        return wire.signed_answer(wire.node_name(method), node, self.alipay_keys.private)

    # -- the bill link -----------------------------------------------------------------
    def _bill_token(self, app_id: str, day: str, expires: str) -> str:
        message = f"{app_id}|{day}|{expires}".encode()
        return hmac.new(self._bill_secret, message, hashlib.sha256).hexdigest()

    def _bill_link(self, request: web.Request, app: App, day: date) -> str:
        expires = str(int(time.time()) + BILL_LINK_TTL_S)
        token = self._bill_token(app.app_id, day.isoformat(), expires)
        fields = {"app_id": app.app_id, "bill_date": day.isoformat(), "expires": expires, "token": token}
        return f"{request.url.origin()}{BILL_PATH}?{urlencode(fields)}"

    async def download_bill(self, request: web.Request) -> web.StreamResponse:
        """GET of a bill link: the day's trade bill (GBK CSV) while the link is valid; 403 after."""
        app_id, day_text = request.query.get("app_id", ""), request.query.get("bill_date", "")
        expires, token = request.query.get("expires", ""), request.query.get("token", "")
        app = self.apps.get(app_id)
        valid = (
            app is not None
            and expires.isdigit()
            and int(expires) >= time.time()
            and hmac.compare_digest(self._bill_token(app_id, day_text, expires), token)
        )
        merchant = self.sandbox.merchant_for(NAME, app_id)
        if not valid or app is None or merchant is None:
            return web.Response(status=403, text="the bill link is invalid or has expired")
        if merchant.behaviour.unavailable:
            raise wire.Outage("the channel is down")
        day = date.fromisoformat(day_text)
        filename = f"{app.seller_id}_{day:%Y%m%d}.csv"
        return web.Response(
            body=self.statement(merchant, day),
            headers={
                "Content-Type": "text/csv;charset=GBK",
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )

    def statement(self, merchant: MerchantAccount, day: date) -> bytes:
        app = self._app_of_account[merchant.merchant_id]
        lines = statement.bill_lines(merchant, NAME, day)
        # The export time follows from the lines (the last one completed, or the day's start),
        # not the clock: the same lines always give the same bytes, so downloading a day's
        # bill twice gives one statement, not two that differ only in their 导出时间.
        start = datetime.combine(day, datetime.min.time(), wire.SHANGHAI)
        exported_at = max([start, *(line.finished_at for line in lines)])
        return statement.trade_bill(app.seller_id, day, lines, exported_at)

    # -- notifications -----------------------------------------------------------------
    def _app_of(self, trade: Trade) -> App:
        """The app that created the trade (several may name one account), else the account's."""
        app = self.apps.get(str(trade.extra.get("app_id", "")))
        return app if app is not None else self._app_of_account[trade.merchant_id]

    def destination(self, notice: Notice) -> str | None:
        # Alipay notifies only refunds that moved money.
        if isinstance(notice, RefundNotice) and notice.refund.status is not RefundStatus.SUCCESS:
            return None
        return super().destination(notice)

    def format_notification(self, notice: Notice) -> bytes:
        app, now = self._app_of(notice.trade), datetime.now(UTC)
        if isinstance(notice, PaymentNotice):
            params = notifications.payment_params(notice.trade, app.app_id, app.seller_id, now)
        else:
            params = notifications.refund_params(
                notice.merchant, notice.trade, notice.refund, app.app_id, app.seller_id, now
            )
        content = signing.sign_content(params, signing.NOTIFICATION_UNSIGNED)
        params["sign"] = signing.sign(self.alipay_keys.private, content)
        return urlencode(params).encode(signing.CHARSET)

    def sign_notification(self, notice: Notice, url: str, body: bytes, now_s: float) -> dict[str, str]:
        # The signature is inside the form body (format_notification); the headers only say what it is.
        return {"Content-Type": f"application/x-www-form-urlencoded; charset={signing.CHARSET}"}

    def is_acknowledged(self, status: int, body: bytes) -> bool:
        # Alipay stops retrying only on exactly "success"; anything else is sent again.
        return status == 200 and body == notifications.ACK_BODY
