"""The sandbox's HTTP edge, whatever the protocol: the sandbox in the app, errors as JSON, lost answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from channel_simulator.accounts import MerchantAccount
from channel_simulator.sandbox import Sandbox, SandboxBusy

log = logging.getLogger(__name__)

SANDBOX = web.AppKey("sandbox", Sandbox)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sandbox_of(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]


class AnswerError(Exception):
    """A refusal already shaped by its protocol: the middleware sends `answer(request)`."""

    def answer(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError


class JsonError(AnswerError):
    """A plain JSON refusal (the admin panel's, a protocol's unsigned front-door answers)."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(str(payload))
        self.status = status
        self.payload = payload

    def answer(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.payload, status=self.status)


async def lose_answer(request: web.Request, merchant: MerchantAccount) -> web.Response:
    """The answer is lost: hold the connection for the account's hang_s, then drop it."""
    await sandbox_of(request).hang(merchant.behaviour.hang_s, request)
    # The connection is gone; this answer is never delivered.
    return web.Response(status=504)


def _error_code(exc: web.HTTPException) -> str:
    return (exc.reason or "ERROR").upper().replace(" ", "_")


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure is an answer with a code; a traceback never leaves the process."""
    try:
        return await handler(request)
    except AnswerError as exc:
        return exc.answer(request)
    except SandboxBusy as exc:
        return web.json_response({"error": "SANDBOX_BUSY", "message": str(exc)}, status=503)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": _error_code(exc), "message": exc.reason}, status=exc.status)
    except Exception:
        log.exception("sandbox request failed", extra={"path": request.path})
        return web.json_response({"error": "INTERNAL", "message": "internal sandbox error"}, status=500)
