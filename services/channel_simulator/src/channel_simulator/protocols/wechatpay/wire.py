"""WeChat Pay's HTTP edge: signed requests in, signed answers out, refusals as {code, message}.

The front door answers unsigned, as WeChat Pay does when it cannot trust the caller: no or a
bad Authorization (401 SIGN_ERROR), an mchid it does not know (404 MCH_NOT_EXISTS), and an
outage of the account (behaviour.unavailable: 503 SYSTEM_ERROR, nothing read). Every answer to
a request whose signature verified is signed with the platform key, refusals included.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from paykit.money import Money

from channel_simulator import fields
from channel_simulator.accounts import MerchantAccount
from channel_simulator.edge import AnswerError, sandbox_of
from channel_simulator.operations import Refusal, Refused
from channel_simulator.protocols.wechatpay.keys import Keyring, MerchantKeys, PlatformKey
from channel_simulator.protocols.wechatpay.signing import (
    AuthorizationError,
    check_request,
    parse_authorization,
    signed_headers,
)

NAME: Final = "wechatpay"
# Where the protocol listens under the simulator's base URL (account_config's api_path).
PREFIX: Final = "/wechatpay"
# Domestic WeChat Pay settles CNY only; amounts travel as integer fen.
CURRENCY: Final = "CNY"
# WeChat Pay's error message texts are short; ours too.
MESSAGE_MAX_CHARS: Final = 256

# The neutral core's refusals in WeChat Pay's codes (its API v3 error-code lists): by code,
# then by kind. SANDBOX_FULL is the sandbox's own limit: nothing was done, try later.
_BY_CODE: Final = {
    "TRADE_CLOSED": (400, "ORDER_CLOSED"),
    "OUT_TRADE_NO_USED": (403, "OUT_TRADE_NO_USED"),
    "TRADE_ALREADY_PAID": (400, "ORDERPAID"),
    "OUT_REFUND_NO_USED": (400, "RESOURCE_ALREADY_EXISTS"),
    "SANDBOX_FULL": (503, "SYSTEM_ERROR"),
}
_BY_KIND: Final = {
    Refusal.INVALID: (400, "PARAM_ERROR"),
    Refusal.CONFLICT: (400, "INVALID_REQUEST"),
    Refusal.FULL: (503, "SYSTEM_ERROR"),
}


def dump(data: dict[str, Any]) -> bytes:
    # The bytes sent are the bytes signed: one compact UTF-8 encoding, Chinese text as is.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


class WechatError(AnswerError):
    """A refusal {"code", "message"}; signed with `platform` when the caller was verified."""

    def __init__(self, status: int, code: str, message: str, platform: PlatformKey | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message[:MESSAGE_MAX_CHARS]
        self.platform = platform

    def answer(self, request: web.Request) -> web.StreamResponse:
        data = {"code": self.code, "message": self.message}
        if self.platform is None:
            return web.json_response(data, status=self.status, dumps=lambda d: dump(d).decode())
        return reply(self.platform, data, self.status)


def reply(platform: PlatformKey, data: dict[str, Any] | None, status: int = 200) -> web.Response:
    """A signed answer; `data` None is an empty body (204 No Content)."""
    body = b"" if data is None else dump(data)
    headers = signed_headers(platform.private_key, platform.serial_no, body, time.time())
    if data is not None:
        headers["Content-Type"] = "application/json"
    return web.Response(status=status, body=body, headers=headers)


@dataclass(frozen=True)
class Caller:
    """A verified request: the account, its WeChat Pay keys, the body as signed."""

    merchant: MerchantAccount
    keys: MerchantKeys
    body: bytes
    platform: PlatformKey

    def refuse(self, status: int, code: str, message: str) -> WechatError:
        return WechatError(status, code, message, self.platform)

    def param_error(self, message: str) -> WechatError:
        return self.refuse(400, "PARAM_ERROR", message)


async def read_signed(request: web.Request, keyring: Keyring) -> Caller:
    """The calling account and the body its signature covers; WechatError otherwise."""
    body = await request.read()
    try:
        auth = parse_authorization(request.headers.get("Authorization", ""))
    except AuthorizationError as exc:
        raise WechatError(401, "SIGN_ERROR", str(exc)) from None
    merchant = sandbox_of(request).merchant_for(NAME, auth.mchid)
    if merchant is None:
        raise WechatError(404, "MCH_NOT_EXISTS", "商户号不存在 (no such mchid)")
    if merchant.behaviour.unavailable:
        # An outage answers from the front door: nothing is read, nothing is signed.
        raise WechatError(503, "SYSTEM_ERROR", "系统繁忙 (the channel is down)")
    keys = keyring.of(merchant.merchant_id)
    try:
        # raw_path: the path and query exactly as the merchant sent (and signed) them.
        check_request(
            auth, keys.public_key, keys.serial_no, request.method, request.raw_path, body, time.time()
        )
    except AuthorizationError as exc:
        raise WechatError(401, "SIGN_ERROR", str(exc)) from None
    return Caller(merchant, keys, body, keyring.platform)


@contextlib.contextmanager
def refusals(caller: Caller) -> Iterator[None]:
    """The neutral core's refusals as WeChat Pay's signed error answers."""
    try:
        yield
    except Refused as exc:
        status, code = _BY_CODE.get(exc.code) or _BY_KIND[exc.kind]
        raise caller.refuse(status, code, f"{exc.code}: {exc.message}") from exc


# -- reading request fields --------------------------------------------------------------


def json_body(caller: Caller) -> dict[str, Any]:
    try:
        return fields.json_object(caller.body)
    except fields.FieldError as exc:
        raise caller.param_error(str(exc)) from None


def text(
    caller: Caller,
    data: dict[str, Any],
    name: str,
    shape: re.Pattern[str] | None = None,
    *,
    max_chars: int = MESSAGE_MAX_CHARS,
    required: bool = True,
) -> str:
    """A text field, within `max_chars` and of `shape` when given; PARAM_ERROR naming it."""
    try:
        value = fields.text(data, name, max_chars=max_chars, required=required)
    except fields.FieldError as exc:
        raise caller.param_error(str(exc)) from None
    if value and shape is not None and not shape.fullmatch(value):
        raise caller.param_error(f"{name} is not of the form {shape.pattern}")
    return value


def url(caller: Caller, data: dict[str, Any], name: str) -> str:
    try:
        return fields.url(data, name)
    except fields.FieldError as exc:
        raise caller.param_error(str(exc)) from None


def amount_object(caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
    found = data.get("amount")
    if not isinstance(found, dict):
        raise caller.param_error("amount must be an object")
    currency = found.get("currency", CURRENCY)
    if currency != CURRENCY:
        raise caller.param_error(f"amount.currency must be {CURRENCY}")
    return found


def fen(caller: Caller, amount: dict[str, Any], name: str) -> Money:
    """A positive integer count of fen, exactly as JSON gave it (never a float or a string)."""
    value = amount.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise caller.param_error(f"amount.{name} must be a positive integer of fen")
    try:
        return Money(value, CURRENCY)
    except ValueError as exc:
        raise caller.param_error(f"amount.{name}: {exc}") from None
