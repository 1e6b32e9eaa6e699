"""Keys in the shapes Alipay hands out, the vendor SDK's signing, and a fake Alipay gateway.

The fake gateway (aiohttp on 127.0.0.1, port 0) checks every request's signature with
alipay-sdk-python's own functions and answers with nodes signed by the SDK, so what passes
here is what the SDK would send and accept.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from aiohttp import web
from alipay.aop.api.util.SignatureUtils import get_sign_content, sign_with_rsa2, verify_with_rsa
from channel_gateway.adapters.connectors import alipay
from channel_gateway.adapters.connectors.alipay import sandbox
from channel_gateway.adapters.connectors.alipay.connector import AlipayConnector
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
GATEWAY_PATH = "/alipay/gateway.do"


@dataclass(frozen=True)
class KeyPair:
    """One RSA key pair, in every shape the tests need."""

    private: rsa.RSAPrivateKey

    @property
    def private_pkcs1_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()

    @property
    def private_pkcs8_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    # What Alipay's key tool gives and the Python SDK expects: PEM bodies without headers (the
    # SDK adds "RSA PRIVATE KEY" / "PUBLIC KEY" markers itself: fill_*_key_marker).
    @property
    def sdk_private(self) -> str:
        return pem_body(self.private_pkcs1_pem)

    @property
    def sdk_public(self) -> str:
        return pem_body(self.public_pem)


def pem_body(pem: str) -> str:
    """The base64 lines of a PEM, without the BEGIN/END lines."""
    return "\n".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


@cache
def key_pair(name: str, bits: int = 2048) -> KeyPair:
    """A fresh key pair per name, generated once per test session."""
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def app_keys() -> KeyPair:
    return key_pair("app")


def alipay_keys() -> KeyPair:
    return key_pair("alipay")


def stranger_keys() -> KeyPair:
    return key_pair("stranger")


def sdk_sign(keys: KeyPair, content: str) -> str:
    return str(sign_with_rsa2(keys.sdk_private, content, "utf-8"))


def sdk_verifies(keys: KeyPair, content: str, signature: str) -> bool:
    try:
        return bool(verify_with_rsa(keys.sdk_public, content.encode("utf-8"), signature))
    except Exception:  # the SDK raises rsa.VerificationError (and others on garbage)
        return False


def signed_notification(params: dict[str, str], keys: KeyPair | None = None) -> dict[str, str]:
    """`params` signed as Alipay signs a notification (all but sign and sign_type), by the SDK."""
    unsigned = {k: v for k, v in params.items() if k not in ("sign", "sign_type") and v != ""}
    return {
        **params,
        "sign_type": "RSA2",
        "sign": sdk_sign(keys or alipay_keys(), get_sign_content(unsigned)),
    }


def signed_answer(method: str, node: dict[str, Any], keys: KeyPair | None = None, node_name: str = "") -> str:
    """An answer body as Alipay writes it: the node's JSON text, signed by the SDK."""
    node_text = json.dumps(node, ensure_ascii=False)
    name = node_name or method.replace(".", "_") + "_response"
    signature = sdk_sign(keys or alipay_keys(), node_text)
    return f'{{"{name}":{node_text},"sign":"{signature}"}}'


def ok(**fields: Any) -> dict[str, Any]:
    return {"code": "10000", "msg": "Success", **fields}


def failed(code: str, sub_code: str = "", sub_msg: str = "refused") -> dict[str, Any]:
    node: dict[str, Any] = {"code": code, "msg": "Business Failed"}
    if sub_code:
        node.update(sub_code=sub_code, sub_msg=sub_msg)
    return node


# A scripted answer: the request's biz_content -> (HTTP status, body).
Script = Callable[[dict[str, Any]], tuple[int, str]]


def answer_with(method: str, node: dict[str, Any], keys: KeyPair | None = None) -> Script:
    return lambda _biz: (200, signed_answer(method, node, keys))


@dataclass
class FakeAlipay:
    """The fake gateway's state: scripted answers per method, and what it was asked."""

    url: str = ""
    scripts: dict[str, Script] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    bill: bytes = b""

    @property
    def biz(self) -> dict[str, Any]:
        """The last request's biz_content."""
        return dict(json.loads(self.requests[-1]["biz_content"]))


def _error_response(sub_code: str, sub_msg: str) -> str:
    # As Alipay: a call refused before the method ran is answered in error_response, signed.
    node = {"code": "40002", "msg": "Invalid Arguments", "sub_code": sub_code, "sub_msg": sub_msg}
    return signed_answer("", node, node_name="error_response")


def _build_app(fake: FakeAlipay) -> web.Application:
    async def gateway(request: web.Request) -> web.Response:
        form = await request.post()
        params = {**dict(request.query), **{k: str(v) for k, v in form.items()}}
        fake.requests.append(params)
        unsigned = {k: v for k, v in params.items() if k != "sign"}
        if not sdk_verifies(app_keys(), get_sign_content(unsigned), params.get("sign", "")):
            return web.Response(text=_error_response("isv.invalid-signature", "invalid signature"))
        if params.get("app_id") != APP_ID:
            return web.Response(text=_error_response("isv.invalid-app-id", "invalid app_id"))
        script = fake.scripts.get(params["method"])
        if script is None:
            return web.Response(status=500, text="no script")
        status, body = script(json.loads(params["biz_content"]))
        return web.Response(status=status, text=body, content_type="application/json", charset="utf-8")

    async def bill(request: web.Request) -> web.Response:
        return web.Response(
            body=fake.bill,
            content_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="20881_20260101.csv.zip"'},
        )

    app = web.Application()
    app.router.add_post(GATEWAY_PATH, gateway)
    app.router.add_get("/bill/download", bill)
    return app


@asynccontextmanager
async def fake_alipay() -> AsyncIterator[FakeAlipay]:
    fake = FakeAlipay()
    runner = web.AppRunner(_build_app(fake), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


def credentials(app: KeyPair | None = None, platform: KeyPair | None = None) -> dict[str, Any]:
    """What the simulator publishes for its Alipay protocol (keys as Alipay's tool gives them)."""
    return {
        "app_id": APP_ID,
        "app_private_key_pem": (app or app_keys()).sdk_private,
        "alipay_public_key_pem": (platform or alipay_keys()).sdk_public,
        "gateway_path": GATEWAY_PATH,
    }


def connector_for(
    base_url: str, app: KeyPair | None = None, platform: KeyPair | None = None
) -> AlipayConnector:
    config = sandbox.account_config(base_url, credentials(app, platform))
    return alipay.build("alipay-sandbox", {**config, "seller_id": SELLER_ID})
