"""Talking to the sandbox's Alipay as a merchant's server does, with the vendor SDK's own signing:
requests signed and answers and notifications verified by alipay-sdk-python's SignatureUtils,
sent over a real aiohttp client; and a notification endpoint that records what it is sent."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import ClientSession, ClientTimeout, web
from alipay.aop.api.util.SignatureUtils import get_sign_content, sign_with_rsa2, verify_with_rsa
from channel_simulator.harness import LoopThread
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GATEWAY_PATH = "/alipay/gateway.do"
BEIJING = timezone(timedelta(hours=8))
HTTP_TIMEOUT_S = 10.0


def beijing_now() -> str:
    return datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def beijing_today() -> date:
    return datetime.now(UTC).astimezone(BEIJING).date()


def sdk_verifies(public_key: str, content: bytes, signature: str) -> bool:
    try:
        return bool(verify_with_rsa(public_key, content, signature))
    except Exception:  # the SDK raises rsa.VerificationError (and others on garbage)
        return False


def stranger_key() -> str:
    """An RSA key the sandbox never saw, in the SDK's shape (base64 PKCS#1, no headers)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


@dataclass(frozen=True)
class App:
    """One sandbox Alipay app, from GET /v1/admin/sandbox-credentials."""

    account: str
    credentials: dict[str, str]

    @property
    def app_id(self) -> str:
        return self.credentials["app_id"]

    @property
    def seller_id(self) -> str:
        return self.credentials["seller_id"]

    @property
    def private_key(self) -> str:
        return self.credentials["app_private_key_pem"]

    @property
    def alipay_public_key(self) -> str:
        return self.credentials["alipay_public_key_pem"]


def alipay_apps(base_url: str) -> dict[str, App]:
    with urllib.request.urlopen(base_url + "/v1/admin/sandbox-credentials", timeout=HTTP_TIMEOUT_S) as resp:
        everyone = json.loads(resp.read())
    return {account: App(account, creds) for account, creds in everyone["alipay"].items()}


@dataclass(frozen=True)
class Reply:
    """One gateway.do answer, split as the SDK splits it, its signature checked by the SDK."""

    status: int
    text: str
    node_name: str = ""
    node: Any = None
    verified: bool = False

    @property
    def sub_code(self) -> str:
        return str(self.node.get("sub_code", "")) if isinstance(self.node, dict) else ""


def split_answer(text: str) -> tuple[str, str, str]:
    """(node name, the node's exact text, sign) of `{"<name>":{...},"sign":"..."}`."""
    head, _, rest = text.partition(":")
    node_text, _, sign_part = rest.rpartition(',"sign":"')
    return json.loads(head.lstrip("{")), node_text, sign_part.rstrip('"}')


def read_reply(status: int, text: str, alipay_public_key: str) -> Reply:
    if status != 200:
        return Reply(status, text)
    name, node_text, sign = split_answer(text)
    verified = sdk_verifies(alipay_public_key, node_text.encode("utf-8"), sign)
    return Reply(status, text, name, json.loads(node_text), verified)


def signed_params(
    app: App, method: str, biz: dict[str, Any], *, key: str = "", **common: str
) -> dict[str, str]:
    """The call's parameters signed as the SDK signs them (every one but sign, sorted)."""
    params = {
        "app_id": app.app_id,
        "method": method,
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": beijing_now(),
        "version": "1.0",
        "biz_content": json.dumps(biz, ensure_ascii=False),
        **common,
    }
    params = {k: v for k, v in params.items() if v != ""}
    params["sign"] = str(sign_with_rsa2(key or app.private_key, get_sign_content(params), "utf-8"))
    return params


async def post_gateway(
    base_url: str, params: dict[str, str], timeout_s: float = HTTP_TIMEOUT_S, extra_query: str = ""
) -> tuple[int, str]:
    """POST as the SDKs do: biz_content in the form body, everything else in the query string
    (`extra_query` is appended to it as is)."""
    query = urlencode({k: v for k, v in params.items() if k != "biz_content"}) + extra_query
    body = urlencode({"biz_content": params.get("biz_content", "")})
    headers = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}
    async with (
        ClientSession(timeout=ClientTimeout(total=timeout_s)) as session,
        session.post(f"{base_url}{GATEWAY_PATH}?{query}", data=body, headers=headers) as resp,
    ):
        return resp.status, (await resp.read()).decode("utf-8")


async def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with (
        ClientSession(timeout=ClientTimeout(total=HTTP_TIMEOUT_S)) as session,
        session.get(url) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


class Merchant:
    """A merchant's server calling the sandbox Alipay as one app, from synchronous tests."""

    def __init__(self, loop: LoopThread, base_url: str, app: App) -> None:
        self.loop = loop
        self.base_url = base_url
        self.app = app

    def send(self, params: dict[str, str], timeout_s: float = HTTP_TIMEOUT_S, extra_query: str = "") -> Reply:
        status, text = self.loop.run(post_gateway(self.base_url, params, timeout_s, extra_query))
        return read_reply(status, text, self.app.alipay_public_key)

    def call(self, method: str, biz: dict[str, Any], *, key: str = "", **common: str) -> Reply:
        return self.send(signed_params(self.app, method, biz, key=key, **common))

    def precreate(
        self, out_trade_no: str, amount: str = "19.99", subject: str = "", notify_url: str = ""
    ) -> Reply:
        biz = {"out_trade_no": out_trade_no, "total_amount": amount, "subject": subject or "sandbox goods"}
        return self.call("alipay.trade.precreate", biz, notify_url=notify_url)

    def query(self, out_trade_no: str) -> Reply:
        return self.call("alipay.trade.query", {"out_trade_no": out_trade_no})

    def refund(self, out_trade_no: str, amount: str, out_request_no: str, notify_url: str = "") -> Reply:
        biz = {
            "out_trade_no": out_trade_no,
            "refund_amount": amount,
            "out_request_no": out_request_no,
            "query_options": ["gmt_refund_pay"],
        }
        return self.call("alipay.trade.refund", biz, notify_url=notify_url)

    def refund_query(self, out_trade_no: str, out_request_no: str) -> Reply:
        biz = {
            "out_trade_no": out_trade_no,
            "out_request_no": out_request_no,
            "query_options": ["gmt_refund_pay"],
        }
        return self.call("alipay.trade.fastpay.refund.query", biz)

    def close(self, out_trade_no: str) -> Reply:
        return self.call("alipay.trade.close", {"out_trade_no": out_trade_no})

    def bill(self, day: date, bill_type: str = "trade") -> Reply:
        biz = {"bill_type": bill_type, "bill_date": day.isoformat()}
        return self.call("alipay.data.dataservice.bill.downloadurl.query", biz)

    def get(self, url: str) -> tuple[int, dict[str, str], bytes]:
        return self.loop.run(http_get(url))


@dataclass(frozen=True)
class Notification:
    path: str
    content_type: str
    body: bytes

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))

    def verified_by_sdk(self, alipay_public_key: str) -> bool:
        """Alipay's rule: the sign covers every non-empty field but sign and sign_type."""
        params = self.params
        unsigned = {k: v for k, v in params.items() if k not in ("sign", "sign_type") and v != ""}
        return sdk_verifies(alipay_public_key, get_sign_content(unsigned).encode("utf-8"), params["sign"])


class NotifyEndpoint:
    """The merchant's notify_url: records each post; answers each path's scripted replies in turn,
    then 200 "success"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._posts: list[Notification] = []
        self._replies: dict[str, list[tuple[int, bytes]]] = {}
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/alipay-notify/{name}", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self._posts.append(Notification(request.path, request.headers.get("Content-Type", ""), body))
            scripted = self._replies.get(request.path, [])
            status, reply = scripted.pop(0) if scripted else (200, b"success")
        return web.Response(status=status, body=reply)

    def new_url(self, replies: Iterator[tuple[int, bytes]] | list[tuple[int, bytes]] = ()) -> str:
        path = f"/alipay-notify/{uuid.uuid4().hex}"
        with self._lock:
            self._replies[path] = list(replies)
        return self.base_url + path

    def posts(self, url: str) -> list[Notification]:
        path = url[len(self.base_url) :]
        with self._lock:
            return [p for p in self._posts if p.path == path]
