"""The card acquirer's HTTP edge: the secret key, the outage switch, the rate limiter, and
Idempotency-Key replay, around every handler.

Stripe "Idempotent requests" (https://docs.stripe.com/idempotency): the first answer under a
key is saved once the endpoint starts executing (errors and 5xx included) and replayed for
the same parameters; the same key with other parameters (or on another endpoint) is an
idempotency_error; a key whose first request is still running is answered 409
idempotency_key_in_use. Requests refused before executing (bad key, outage, rate limit,
invalid parameters) save nothing. Stripe "Rate limits" (https://docs.stripe.com/rate-limits):
429 with code rate_limit when too many requests of an account are in flight at once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from channel_simulator.accounts import MerchantAccount
from channel_simulator.edge import lose_answer, sandbox_of
from channel_simulator.protocols.base import Protocol
from channel_simulator.protocols.card.accounts import CardAccount, StoredAnswer
from channel_simulator.protocols.card.wire import MAX_ID_CHARS, CardError, Params, invalid
from channel_simulator.sandbox import Sandbox

# Requests of one account being answered at once; more are refused 429 rate_limit. Far above
# what the suite sends, low enough that a runaway client is told to slow down.
MAX_REQUESTS_IN_FLIGHT: Final = 1_000
JSON: Final = "application/json"
_KEY_SHOWN_CHARS: Final = 4


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON
    # The answer is made (and kept under the Idempotency-Key) but never reaches the caller.
    lost: bool = False
    # The first answer under the Idempotency-Key, sent again as it was.
    replayed: bool = False

    @classmethod
    def json(cls, payload: Mapping[str, Any], status: int = 200, *, lost: bool = False) -> Reply:
        return cls(status, json.dumps(payload).encode(), JSON, lost)

    @classmethod
    def error(cls, error: CardError) -> Reply:
        """An error answer given once the request ran: kept under its key like any other."""
        return cls.json(error.payload, error.status)


@dataclass(frozen=True)
class Call:
    request: web.Request
    sandbox: Sandbox
    merchant: MerchantAccount
    account: CardAccount
    params: Params
    # The card protocol itself, for the notifications a handler sends on its own.
    protocol: Protocol


# None: the request is lost before anything happened (no answer, nothing kept).
Handler = Callable[[Call], Awaitable[Reply | None]]


class CardEdge:
    def __init__(self, protocol: Protocol, accounts: Mapping[str, CardAccount], max_in_flight: int) -> None:
        self.protocol = protocol
        self.max_in_flight = max_in_flight
        self._by_key = {account.secret_key: account for account in accounts.values()}

    def _caller(self, request: web.Request) -> tuple[MerchantAccount, CardAccount]:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not key:
            raise CardError(
                401,
                "invalid_request_error",
                "You did not provide an API key. Provide it in the Authorization header: Bearer <key>.",
            )
        account = self._by_key.get(key.strip())
        if account is None:
            shown = key[: len("sk_test_")] + "*" * 4 + key[-_KEY_SHOWN_CHARS:]
            raise CardError(401, "invalid_request_error", f"Invalid API Key provided: {shown}")
        return sandbox_of(request).merchants[account.account_id], account

    def route(self, method: str, path: str, handler: Handler) -> web.RouteDef:
        async def serve(request: web.Request) -> web.StreamResponse:
            merchant, account = self._caller(request)
            if merchant.behaviour.unavailable:
                # The outage answers at the front door: nothing is read or kept.
                raise CardError(503, "api_error", "The acquirer is unavailable; try again later.")
            if account.in_flight >= self.max_in_flight:
                raise CardError(
                    429,
                    "invalid_request_error",
                    "Too many requests hit the API too quickly.",
                    code="rate_limit",
                )
            account.in_flight += 1
            try:
                reply = await self._answer(request, merchant, account, handler)
            finally:
                account.in_flight -= 1
            if reply is None or reply.lost:
                return await lose_answer(request, merchant)
            return _response(reply)

        return web.route(method, path, serve)

    async def _answer(
        self, request: web.Request, merchant: MerchantAccount, account: CardAccount, handler: Handler
    ) -> Reply | None:
        text = await request.text() if request.method == "POST" else request.query_string
        params = Params.parse(text)
        call = Call(request, sandbox_of(request), merchant, account, params, self.protocol)
        key = request.headers.get("Idempotency-Key", "") if request.method == "POST" else ""
        if not key:
            return await handler(call)
        if len(key) > MAX_ID_CHARS:
            raise invalid(f"Idempotency-Key is longer than {MAX_ID_CHARS} characters")
        fingerprint = (request.method, request.path, params.fingerprint())
        stored = account.answers.get(key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise CardError(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                )
            return Reply(stored.status, stored.body, stored.content_type, replayed=True)
        if key in account.running:
            raise CardError(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key.",
                code="idempotency_key_in_use",
            )
        account.running.add(key)
        try:
            reply = await handler(call)
        finally:
            account.running.discard(key)
        if reply is not None:
            account.remember(key, StoredAnswer(fingerprint, reply.status, reply.body, reply.content_type))
        return reply


def _response(reply: Reply) -> web.Response:
    content_type, _, charset = reply.content_type.partition("; charset=")
    response = web.Response(
        status=reply.status, body=reply.body, content_type=content_type, charset=charset or None
    )
    if reply.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
