"""simpay's HTTP edge: signed requests and answers, the outage switch, refusals as signed JSON."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any, Final

from aiohttp import web

from channel_simulator.accounts import MerchantAccount
from channel_simulator.edge import JsonError, sandbox_of
from channel_simulator.operations import Refusal, Refused
from channel_simulator.protocols.simpay.signing import signed_headers, verify

NAME: Final = "simpay"
# The HTTP status of each kind of refusal.
_STATUS: Final = {Refusal.INVALID: 400, Refusal.CONFLICT: 409, Refusal.FULL: 503}


class ApiError(JsonError):
    """An answer other than success; signed when the merchant is known, like every channel answer."""

    def __init__(self, status: int, payload: dict[str, Any], merchant: MerchantAccount | None = None) -> None:
        super().__init__(status, payload)
        self.merchant = merchant

    def answer(self, request: web.Request) -> web.StreamResponse:
        if self.merchant is None:
            return super().answer(request)
        return reply(request, self.merchant, self.payload, self.status)


def invalid(merchant: MerchantAccount, code: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, {"result": "INVALID", "code": code, "message": message}, merchant)


@contextlib.contextmanager
def refusals(merchant: MerchantAccount) -> Iterator[None]:
    """The neutral core's refusals, answered as simpay's signed INVALID answers."""
    try:
        yield
    except Refused as exc:
        raise invalid(merchant, exc.code, exc.message, _STATUS[exc.kind]) from exc


async def read_signed(request: web.Request) -> tuple[MerchantAccount, bytes]:
    """The calling merchant account and the verified body; ApiError when it is not to be trusted."""
    sandbox = sandbox_of(request)
    body = await request.read()
    merchant = sandbox.merchant_for(NAME, request.headers.get("X-Sim-Merchant", ""))
    if merchant is None:
        raise ApiError(401, {"error": "UNKNOWN_MERCHANT", "message": "X-Sim-Merchant names no account"})
    if merchant.behaviour.unavailable:
        # An outage answers from the channel's front door: nothing is read, nothing is signed.
        raise ApiError(503, {"error": "CHANNEL_UNAVAILABLE", "message": "the channel is down"})
    reason = verify(
        sandbox.secret,
        request.headers.get("X-Sim-Timestamp", ""),
        request.method,
        request.path,
        body,
        request.headers.get("X-Sim-Signature", ""),
        time.time(),
    )
    if reason is not None:
        raise ApiError(401, {"error": "BAD_SIGNATURE", "message": reason})
    return merchant, body


def reply(
    request: web.Request, merchant: MerchantAccount, payload: dict[str, Any], status: int = 200
) -> web.Response:
    body = json.dumps(payload).encode()
    sandbox = sandbox_of(request)
    merchant_id = sandbox.protocol_merchant_id(NAME, merchant.merchant_id) or merchant.merchant_id
    headers = signed_headers(merchant_id, sandbox.secret, request.method, request.path, body, time.time())
    return web.Response(body=body, status=status, headers=headers)
