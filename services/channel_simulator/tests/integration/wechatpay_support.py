"""Talking to the sandbox's WeChat Pay protocol as a merchant would, through WeChat Pay's own
Python SDK (wechatpayv3): requests signed by its build_authorization, answers checked by its
rsa_verify with the published platform key, callbacks verified and decrypted by Core.callback.
A test passing here means the sandbox and WeChat Pay's reference client agree, not merely that
the sandbox agrees with itself."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web
from channel_simulator.harness import LoopThread
from wechatpayv3.core import Core
from wechatpayv3.utils import build_authorization, load_private_key, load_public_key, rsa_verify
from yarl import URL

from services.channel_simulator.tests.integration.support import HTTP_TIMEOUT_S, eventually

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"


def published_credentials(base_url: str) -> dict[str, Any]:
    """Every account's WeChat Pay credentials, as /v1/admin/sandbox-credentials serves them."""
    with urllib.request.urlopen(base_url + "/v1/admin/sandbox-credentials", timeout=HTTP_TIMEOUT_S) as resp:
        return dict(json.loads(resp.read())["wechatpay"])


@dataclass(frozen=True)
class Creds:
    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_private_key_pem: str
    platform_serial_no: str
    platform_public_key_pem: str
    apiv3_key: str
    api_path: str

    @classmethod
    def of(cls, base_url: str, account_id: str) -> Creds:
        return cls(**published_credentials(base_url)["merchants"][account_id])

    def sdk(self) -> Core:
        """WeChat Pay's SDK client for this merchant, trusting the platform public key (no network)."""
        return Core(
            mchid=self.mchid,
            cert_serial_no=self.merchant_serial_no,
            private_key=self.merchant_private_key_pem,
            apiv3_key=self.apiv3_key,
            public_key=self.platform_public_key_pem,
            public_key_id=self.platform_serial_no,
        )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    # The SDK verified the Wechatpay-* signature with the platform key and the serial is the platform's.
    signed: bool

    @property
    def data(self) -> dict[str, Any]:
        return dict(json.loads(self.text)) if self.text else {}

    @property
    def code(self) -> str:
        return str(self.data.get("code", ""))


def sdk_verifies(creds: Creds, headers: dict[str, str], text: str) -> bool:
    if headers.get("Wechatpay-Serial") != creds.platform_serial_no:
        return False
    if headers.get("Wechatpay-Signature-Type") != SIGNATURE_TYPE:
        return False
    return bool(
        rsa_verify(
            headers.get("Wechatpay-Timestamp", ""),
            headers.get("Wechatpay-Nonce", ""),
            text,
            headers.get("Wechatpay-Signature", ""),
            load_public_key(creds.platform_public_key_pem),
        )
    )


class WechatMerchant:
    """A merchant calling the sandbox's WeChat Pay API v3 with the SDK's request signature."""

    def __init__(self, loop: LoopThread, base_url: str, creds: Creds) -> None:
        self.loop = loop
        self.base_url = base_url
        self.creds = creds

    def authorization(self, method: str, url_path: str, body: str, *, private_key_pem: str = "") -> str:
        key = load_private_key(private_key_pem or self.creds.merchant_private_key_pem)
        return str(
            build_authorization(
                url_path, method, self.creds.mchid, self.creds.merchant_serial_no, key, data=body or None
            )
        )

    async def _call(
        self, method: str, url_path: str, body: str, headers: dict[str, str], timeout_s: float
    ) -> Answer:
        async with (
            ClientSession(timeout=ClientTimeout(total=timeout_s)) as session,
            session.request(
                method,
                URL(self.base_url + url_path, encoded=True),
                data=body.encode() or None,
                headers=headers,
            ) as resp,
        ):
            raw = await resp.read()
            found = dict(resp.headers)
        text = raw.decode()
        return Answer(resp.status, found, text, sdk_verifies(self.creds, found, text))

    def call(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        authorization: str | None = None,
        sent_body: str | None = None,
        timeout_s: float = HTTP_TIMEOUT_S,
    ) -> Answer:
        """`path` under the api_path (or already starting with it); `sent_body` replaces the
        signed body on the wire (a tampered request)."""
        url_path = path if path.startswith(self.creds.api_path + "/") else self.creds.api_path + path
        body = json.dumps(payload, ensure_ascii=False) if payload is not None else ""
        headers = {
            "Authorization": authorization
            if authorization is not None
            else self.authorization(method, url_path, body),
            "Accept": "application/json",
            "User-Agent": "wechatpay-sandbox-tests",
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        wire = body if sent_body is None else sent_body
        return self.loop.run(self._call(method, url_path, wire, headers, timeout_s))

    # -- the API ---------------------------------------------------------------------------
    def native(
        self,
        out_trade_no: str,
        total: int,
        notify_url: str,
        description: str = "tea",
        changes: dict[str, Any] | None = None,
    ) -> Answer:
        order = {
            "appid": self.creds.appid,
            "mchid": self.creds.mchid,
            "description": description,
            "out_trade_no": out_trade_no,
            "notify_url": notify_url,
            "amount": {"total": total, "currency": "CNY"},
            **(changes or {}),
        }
        return self.call("POST", "/v3/pay/transactions/native", order)

    def query(self, out_trade_no: str) -> Answer:
        return self.call("GET", f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={self.creds.mchid}")

    def close(self, out_trade_no: str) -> Answer:
        return self.call(
            "POST", f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close", {"mchid": self.creds.mchid}
        )

    def refund(
        self, out_trade_no: str, out_refund_no: str, refund: int, total: int, notify_url: str
    ) -> Answer:
        payload = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "reason": "顾客退货",
            "notify_url": notify_url,
            "amount": {"refund": refund, "total": total, "currency": "CNY"},
        }
        return self.call("POST", "/v3/refund/domestic/refunds", payload)

    def query_refund(self, out_refund_no: str) -> Answer:
        return self.call("GET", f"/v3/refund/domestic/refunds/{out_refund_no}")

    def state(self, out_trade_no: str) -> str:
        return str(self.query(out_trade_no).data.get("trade_state", ""))

    def wait_state(self, out_trade_no: str, state: str) -> None:
        eventually(lambda: self.state(out_trade_no) == state, f"trade {out_trade_no} to be {state}")


@dataclass(frozen=True)
class Callback:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def envelope(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class CallbackReceiver:
    """The merchant's notify_url: records every callback; answers each path's scripted statuses
    first (e.g. a 500 to make the channel send it again), then 200 with an empty body."""

    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: list[Callback] = field(default_factory=list)
    _script: dict[str, list[int]] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/wx/{name}", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self._seen.append(Callback(request.path, dict(request.headers), body, time.monotonic()))
            script = self._script.get(request.path) or []
            status = script.pop(0) if script else 200
        return web.Response(status=status)

    def new_url(self, *answers: int) -> str:
        path = f"/wx/{uuid.uuid4().hex}"
        with self._lock:
            self._script[path] = list(answers)
        return self.base_url + path

    def received(self, url: str) -> list[Callback]:
        path = url[len(self.base_url) :]
        with self._lock:
            return [c for c in self._seen if c.path == path]

    def wait(self, url: str, count: int = 1) -> list[Callback]:
        eventually(lambda: len(self.received(url)) >= count, f"{count} callback(s) at {url}")
        return self.received(url)


def new_number(prefix: str = "pay") -> str:
    """A WeChat Pay out_trade_no / out_refund_no (6-32 of [0-9A-Za-z_-|*])."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"
