"""The sandbox's HTTP edge: signed requests and answers, the outage switch, JSON errors."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from channel_simulator.accounts import MerchantAccount
from channel_simulator.protocol import signed_headers, verify
from channel_simulator.sandbox import Sandbox, SandboxBusy

log = logging.getLogger(__name__)

SANDBOX = web.AppKey("sandbox", Sandbox)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An answer other than success; signed when the merchant is known, like every channel answer."""

    def __init__(self, status: int, payload: dict[str, Any], merchant: MerchantAccount | None = None) -> None:
        super().__init__(str(payload))
        self.status = status
        self.payload = payload
        self.merchant = merchant


def invalid(merchant: MerchantAccount, code: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, {"result": "INVALID", "code": code, "message": message}, merchant)


def sandbox_of(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]


async def read_signed(request: web.Request) -> tuple[MerchantAccount, bytes]:
    """The calling merchant account and the verified body; ApiError when it is not to be trusted."""
    sandbox = sandbox_of(request)
    body = await request.read()
    merchant = sandbox.merchants.get(request.headers.get("X-Sim-Merchant", ""))
    if merchant is None:
        raise ApiError(401, {"error": "UNKNOWN_MERCHANT", "message": "X-Sim-Merchant names no account"})
    if merchant.behaviour.unavailable:
        # An outage answers from the channel's front door: nothing is read, nothing is signed.
        raise ApiError(503, {"error": "CHANNEL_UNAVAILABLE", "message": "the channel is down"})
    reason = verify(
        sandbox.key,
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
    headers = signed_headers(
        merchant.merchant_id, sandbox_of(request).key, request.method, request.path, body, time.time()
    )
    return web.Response(body=body, status=status, headers=headers)


def _error_code(exc: web.HTTPException) -> str:
    return (exc.reason or "ERROR").upper().replace(" ", "_")


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure is a JSON answer with a code; a traceback never leaves the process."""
    try:
        return await handler(request)
    except ApiError as exc:
        if exc.merchant is not None:
            return reply(request, exc.merchant, exc.payload, exc.status)
        return web.json_response(exc.payload, status=exc.status)
    except SandboxBusy as exc:
        return web.json_response({"error": "SANDBOX_BUSY", "message": str(exc)}, status=503)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": _error_code(exc), "message": exc.reason}, status=exc.status)
    except Exception:
        log.exception("sandbox request failed", extra={"path": request.path})
        return web.json_response({"error": "INTERNAL", "message": "internal sandbox error"}, status=500)
