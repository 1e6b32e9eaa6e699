"""Test material for the WeChat Pay connector: keys, configs, callbacks built the way the
vendor SDK (wechatpayv3) reads them, and a small fake WeChat Pay API v3 server on loopback.

Everything the other side signs or checks goes through the SDK's own functions
(wechatpayv3.utils.rsa_sign / rsa_verify / aes_decrypt, wechatpayv3.core.Core.callback), so a
test passing means our connector and WeChat Pay's reference client agree, not merely that our
code agrees with itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from aiohttp import web
from channel_gateway.adapters.connectors.wechatpay import build
from channel_gateway.adapters.connectors.wechatpay.connector import WechatPayConnector
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from wechatpayv3.core import Core
from wechatpayv3.utils import load_private_key, load_public_key, rsa_sign, rsa_verify

T = TypeVar("T")
MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
MERCHANT_SERIAL = "444F4864EA9B34415A1B2C3D4E5F60718293A4B5"
# Platform public key mode: Wechatpay-Serial carries the key's id.
PLATFORM_SERIAL = "PUB_KEY_ID_0119000001092024112500000000000001"
# Certificate mode: Wechatpay-Serial carries the certificate's serial number in hex.
CERT_SERIAL_INT = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
APIV3_KEY = "a12d3924fd499edac8a5efc0a1b2c3d4"
API_PATH = "/wechatpay"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"


@dataclass(frozen=True)
class Keys:
    merchant: rsa.RSAPrivateKey
    platform: rsa.RSAPrivateKey
    # A key WeChat Pay never gave us: whatever it signs must be refused.
    rogue: rsa.RSAPrivateKey


@cache
def keys() -> Keys:
    def generate() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(generate(), generate(), generate())


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@cache
def platform_certificate_pem() -> str:
    """A platform certificate (self-signed here) carrying the platform key, serial CERT_SERIAL_INT."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (test)")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(keys().platform.public_key())
        .serial_number(CERT_SERIAL_INT)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(keys().platform, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def config(base_url: str = "https://api.mch.weixin.qq.com", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "api_base_url": base_url,
        "mchid": MCHID,
        "appid": APPID,
        "merchant_serial_no": MERCHANT_SERIAL,
        "merchant_private_key_pem": private_pem(keys().merchant),
        "platform_serial_no": PLATFORM_SERIAL,
        "platform_public_key_pem": public_pem(keys().platform),
        "apiv3_key": APIV3_KEY,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def sdk_core() -> Core:
    """The vendor SDK's client for our merchant, trusting the platform public key (no network:
    with public_key and public_key_id it never downloads certificates)."""
    return Core(
        mchid=MCHID,
        cert_serial_no=MERCHANT_SERIAL,
        private_key=private_pem(keys().merchant),
        apiv3_key=APIV3_KEY,
        public_key=public_pem(keys().platform),
        public_key_id=PLATFORM_SERIAL,
    )


# -- what WeChat Pay signs ----------------------------------------------------------------


def sdk_signed_headers(
    body: str,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    serial: str = PLATFORM_SERIAL,
    signer: rsa.RSAPrivateKey | None = None,
) -> dict[str, str]:
    """Wechatpay-* headers over `body`, signed with the SDK's rsa_sign (the platform key by default)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    private_key = load_private_key(private_pem(signer or keys().platform))
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(private_key, f"{ts}\n{nonce}\n{body}\n"),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


def sdk_verifies_request(method: str, url: str, headers: Any, body: str) -> bool:
    """Check a request's Authorization with the SDK's rsa_verify and the merchant public key.

    rsa_verify(timestamp, nonce, body, ...) checks "timestamp\\nnonce\\nbody\\n"; handing it
    "METHOD\\nURL\\ntimestamp" as its first line makes that exactly the request's five lines.
    """
    scheme, _, params = headers.get("Authorization", "").partition(" ")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    if scheme != SIGNATURE_TYPE or fields.get("mchid") != MCHID or fields.get("serial_no") != MERCHANT_SERIAL:
        return False
    public_key = load_public_key(public_pem(keys().merchant))
    first_lines = f"{method}\n{url}\n{fields.get('timestamp', '')}"
    return bool(
        rsa_verify(first_lines, fields.get("nonce_str", ""), body, fields.get("signature", ""), public_key)
    )


def encrypt_resource(plaintext: str, associated_data: str, nonce: str, key: str = APIV3_KEY) -> str:
    """AEAD_AES_256_GCM as the SDK's aes_decrypt expects it: key, nonce and associated data as
    UTF-8 bytes, Base64 of ciphertext || tag."""
    sealed = AESGCM(key.encode()).encrypt(nonce.encode(), plaintext.encode(), associated_data.encode())
    return base64.b64encode(sealed).decode()


def transaction_resource(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "appid": APPID,
        "mchid": MCHID,
        "out_trade_no": "pay_01JD5Q8W3K7M2N4P6R8T0V2X4Z",
        "transaction_id": "4200001234202411251234567890",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-11-25T18:00:05+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 1999, "payer_total": 1999, "currency": "CNY", "payer_currency": "CNY"},
    }
    data.update(changes)
    return data


def refund_resource(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "mchid": MCHID,
        "out_trade_no": "pay_01JD5Q8W3K7M2N4P6R8T0V2X4Z",
        "transaction_id": "4200001234202411251234567890",
        "out_refund_no": "rfd_01JD5QA0000000000000000000",
        "refund_id": "50300000012024112512345678901",
        "refund_status": "SUCCESS",
        "success_time": "2026-11-25T19:00:00+08:00",
        "user_received_account": "支付用户零钱",
        "amount": {"total": 1999, "refund": 500, "payer_total": 1999, "payer_refund": 500},
    }
    data.update(changes)
    return data


@dataclass(frozen=True)
class Callback:
    headers: dict[str, str]
    body: bytes
    plaintext: str


def callback(
    event_type: str,
    resource: dict[str, Any],
    *,
    original_type: str = "transaction",
    associated_data: str = "transaction",
    sent_associated_data: str | None = None,
    flip_ciphertext: bool = False,
    apiv3_key: str = APIV3_KEY,
    timestamp: int | None = None,
    serial: str = PLATFORM_SERIAL,
    signer: rsa.RSAPrivateKey | None = None,
    notify_id: str = "EV-2018022511223320873",
) -> Callback:
    """A WeChat Pay callback: the resource encrypted (AES-256-GCM, APIv3 key), the envelope
    signed with the SDK's rsa_sign. `sent_associated_data` / `flip_ciphertext` tamper with
    the resource *before* signing, so only decryption can notice."""
    plaintext = json.dumps(resource, ensure_ascii=False)
    nonce = secrets.token_hex(6)  # 12 characters, as WeChat Pay sends
    ciphertext = encrypt_resource(plaintext, associated_data, nonce, apiv3_key)
    if flip_ciphertext:
        sealed = bytearray(base64.b64decode(ciphertext))
        sealed[0] ^= 0x01
        ciphertext = base64.b64encode(bytes(sealed)).decode()
    envelope = {
        "id": notify_id,
        "create_time": "2026-11-25T18:00:06+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": associated_data if sent_associated_data is None else sent_associated_data,
            "nonce": nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False)
    headers = sdk_signed_headers(body, timestamp=timestamp, serial=serial, signer=signer)
    return Callback(headers, body.encode(), plaintext)


# -- a fake WeChat Pay API v3 -------------------------------------------------------------


@dataclass
class Trade:
    out_trade_no: str
    total: int
    description: str
    notify_url: str
    state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: str = ""


@dataclass
class RefundRecord:
    out_refund_no: str
    out_trade_no: str
    refund: int
    total: int
    status: str = "PROCESSING"
    refund_id: str = field(default_factory=lambda: "503" + secrets.token_hex(8))


@dataclass(frozen=True)
class Seen:
    method: str
    url: str
    headers: dict[str, str]
    body: str
    authorised: bool


@dataclass(frozen=True)
class Scripted:
    status: int
    code: str
    message: str = "scripted"
    signed: bool = True


# The head of a WeChat Pay trade bill (UTF-8 with BOM, values prefixed with a backtick).
BILL = (
    "\ufeff交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号\r\n"
    "`2026-11-25 18:00:05,`wx1,`1900000109,`0,`,`4200001,`pay_1\r\n"
)


class FakeWechatPay:
    """WeChat Pay API v3 as far as the connector uses it. Requests are checked with the SDK's
    rsa_verify (a bad one gets an unsigned 401 SIGN_ERROR, as WeChat Pay answers); answers are
    signed with the SDK's rsa_sign. `answer_mode` spoils the signature of every answer:
    "rogue_key", "wrong_serial", "stale", "unsigned"."""

    def __init__(self, prefix: str = API_PATH) -> None:
        self.prefix = prefix
        self.trades: dict[str, Trade] = {}
        self.refunds: dict[str, RefundRecord] = {}
        self.seen: list[Seen] = []
        self.scripted: dict[tuple[str, str], Scripted] = {}
        self.answer_mode = "good"
        self.bill = BILL.encode()
        self.bill_hash: str | None = None
        self.download_url: str | None = None
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url + self.prefix

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def pay(self, out_trade_no: str) -> None:
        trade = self.trades[out_trade_no]
        trade.state, trade.transaction_id = "SUCCESS", "4200" + secrets.token_hex(10)
        trade.success_time = "2026-11-25T18:00:05+08:00"

    # -- answers --------------------------------------------------------------------------
    def _answer(self, status: int, data: dict[str, Any] | None = None, signed: bool = True) -> web.Response:
        body = "" if data is None else json.dumps(data, ensure_ascii=False)
        headers: dict[str, str] = {}
        if signed and self.answer_mode != "unsigned":
            headers = sdk_signed_headers(
                body,
                timestamp=int(time.time()) - (3600 if self.answer_mode == "stale" else 0),
                serial="PUB_KEY_ID_SOMEONE_ELSE" if self.answer_mode == "wrong_serial" else PLATFORM_SERIAL,
                signer=keys().rogue if self.answer_mode == "rogue_key" else None,
            )
        if data is not None:
            headers["Content-Type"] = "application/json"
        return web.Response(status=status, body=body.encode(), headers=headers)

    def _error(self, status: int, code: str, message: str = "error", signed: bool = True) -> web.Response:
        return self._answer(status, {"code": code, "message": message}, signed=signed)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = (await request.read()).decode()
        url = request.raw_path
        authorised = sdk_verifies_request(request.method, url, request.headers, body)
        self.seen.append(Seen(request.method, url, dict(request.headers), body, authorised))
        if not authorised:
            return self._error(401, "SIGN_ERROR", "signature check failed", signed=False)
        path = url.split("?", 1)[0].removeprefix(self.prefix)
        for (method, suffix), scripted in list(self.scripted.items()):
            if request.method == method and path.endswith(suffix):
                del self.scripted[(method, suffix)]
                return self._error(scripted.status, scripted.code, scripted.message, scripted.signed)
        return self._route(request.method, path, request.query, body)

    def _route(self, method: str, path: str, query: Any, body: str) -> web.StreamResponse:
        data = json.loads(body) if body else {}
        if method == "POST" and path == "/v3/pay/transactions/native":
            return self._native(data)
        if match := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path):
            return self._close(match.group(1), data)
        if match := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path):
            return self._query(match.group(1), query)
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._refund(data)
        if match := re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path):
            found = self.refunds.get(match.group(1))
            return self._refund_answer(found) if found else self._error(404, "RESOURCE_NOT_EXISTS")
        if path == "/v3/bill/tradebill":
            return self._tradebill(query)
        if path == "/v3/billdownload/file":
            # The file itself is not signed (WeChat Pay: check it against hash_value).
            return web.Response(status=200, body=self.bill, headers={"Content-Type": "text/csv"})
        return self._error(404, "NOT_FOUND", f"no route {method} {path}")

    def _native(self, data: dict[str, Any]) -> web.Response:
        amount = data["amount"]
        if data["mchid"] != MCHID or data["appid"] != APPID:
            return self._error(400, "APPID_MCHID_NOT_MATCH")
        if type(amount["total"]) is not int or amount["currency"] != "CNY":
            return self._error(400, "PARAM_ERROR", "amount.total must be an integer of fen")
        number = data["out_trade_no"]
        existing = self.trades.get(number)
        if existing is not None and existing.total != amount["total"]:
            return self._error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        if existing is None:
            self.trades[number] = Trade(number, amount["total"], data["description"], data["notify_url"])
        return self._answer(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={number[-8:]}"})

    def _query(self, number: str, query: Any) -> web.Response:
        trade = self.trades.get(number)
        if query.get("mchid") != MCHID:
            return self._error(400, "PARAM_ERROR", "mchid")
        if trade is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        data: dict[str, Any] = {
            "appid": APPID,
            "mchid": MCHID,
            "out_trade_no": number,
            "trade_type": "NATIVE",
            "trade_state": trade.state,
            "trade_state_desc": trade.state,
            "amount": {"total": trade.total, "currency": "CNY"},
        }
        if trade.state == "SUCCESS":
            data["transaction_id"] = trade.transaction_id
            data["success_time"] = trade.success_time
            data["amount"].update({"payer_total": trade.total, "payer_currency": "CNY"})
        return self._answer(200, data)

    def _close(self, number: str, data: dict[str, Any]) -> web.Response:
        trade = self.trades.get(number)
        if data.get("mchid") != MCHID:
            return self._error(400, "PARAM_ERROR", "mchid")
        if trade is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        if trade.state == "SUCCESS":
            return self._error(400, "ORDERPAID", "订单已支付")
        trade.state = "CLOSED"
        return self._answer(204)

    def _refund(self, data: dict[str, Any]) -> web.Response:
        trade = self.trades.get(data["out_trade_no"])
        if trade is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        amount = data["amount"]
        if amount["total"] != trade.total or amount["refund"] > trade.total:
            return self._error(400, "INVALID_REQUEST", "金额不一致")
        number = data["out_refund_no"]
        record = self.refunds.get(number)
        if record is None:
            record = RefundRecord(number, trade.out_trade_no, amount["refund"], amount["total"])
            self.refunds[number] = record
        return self._refund_answer(record)

    def _refund_answer(self, record: RefundRecord) -> web.Response:
        data: dict[str, Any] = {
            "refund_id": record.refund_id,
            "out_refund_no": record.out_refund_no,
            "transaction_id": self.trades[record.out_trade_no].transaction_id,
            "out_trade_no": record.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": "2026-11-25T19:00:00+08:00",
            "status": record.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": record.total,
                "refund": record.refund,
                "payer_total": record.total,
                "payer_refund": record.refund,
                "settlement_refund": record.refund,
                "settlement_total": record.total,
                "discount_refund": 0,
                "currency": "CNY",
                "from": [],
            },
        }
        if record.status == "SUCCESS":
            data["success_time"] = "2026-11-25T19:00:03+08:00"
        return self._answer(200, data)

    def _tradebill(self, query: Any) -> web.Response:
        if query.get("bill_type") != "ALL" or not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", query.get("bill_date", "")
        ):
            return self._error(400, "PARAM_ERROR", "bill_date")
        sha1 = self.bill_hash or hashlib.sha1(self.bill).hexdigest()
        url = (
            self.download_url
            or f"{self.base_url}{self.prefix}/v3/billdownload/file?token=t{secrets.token_hex(4)}"
        )
        return self._answer(200, {"hash_type": "SHA1", "hash_value": sha1, "download_url": url})


def run(scenario: Callable[[FakeWechatPay, WechatPayConnector], Awaitable[T]]) -> T:
    """Start the fake WeChat Pay, build a connector at it, run `scenario`, stop both."""

    async def main() -> T:
        server = FakeWechatPay()
        base_url = await server.start()
        connector = build("wechatpay-test", config(base_url))
        try:
            return await scenario(server, connector)
        finally:
            await connector.aclose()
            await server.stop()

    return asyncio.run(main())
