"""A gRPC server interceptor that makes mutating calls idempotent by a caller-chosen key.

Same key, same request: the handler runs once and every caller gets the
first response, byte for byte. Same key, another request: ALREADY_EXISTS.
A failed call stores nothing, so its retry runs the handler again.

It runs inside paykit.grpckit's tracing/error-mapping interceptor (pass it
via `create_server(..., interceptors=[...])` or `ServiceParts.interceptors`),
so the DomainErrors raised here become status codes like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, assert_never

import grpc
from opentelemetry import trace
from paykit.db import run_blocking
from paykit.errors import AlreadyExists, Unavailable
from paykit.idempotency.claims import Busy, Claimed, Conflict, Replay
from paykit.idempotency.keys import KeyRule, key_of, request_hash
from paykit.idempotency.settings import IdempotencySettings
from paykit.idempotency.store import Database, IdempotencyStore

log = logging.getLogger(__name__)

# How often a duplicate of a running call looks again whether it finished.
POLL_INTERVAL_S = 0.05
# Set on the server span, so a trace shows whether a call ran or was replayed.
OUTCOME_ATTRIBUTE = "paykit.idempotency.outcome"

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Serializer = Callable[[Any], bytes]


class IdempotencyInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Idempotency keys for the unary-unary methods in `methods` (full names,
    '/package.Service/Method'; see `full_method`). Other methods pass through untouched.

    `ttl_s`: how long a completed key answers repeats. `in_progress_timeout_s`:
    how long a claim protects a running call; past it the claimant is taken
    to be dead and a repeat runs the handler itself. Services' operations are
    idempotent underneath (STYLE rule 2), so that second run is safe; the
    timeout only has to outlast a normal call (statement timeouts are 15 s).
    """

    def __init__(
        self,
        database: Database,
        methods: Mapping[str, KeyRule],
        *,
        ttl_s: float,
        in_progress_timeout_s: float,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        for name, value in (
            ("ttl_s", ttl_s),
            ("in_progress_timeout_s", in_progress_timeout_s),
            ("poll_interval_s", poll_interval_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for method in methods:
            if not (method.startswith("/") and method.count("/") == 2):
                raise ValueError(f"{method!r} is not a full method name like '/package.Service/Method'")
        self._store = IdempotencyStore(database)
        self._methods = dict(methods)
        self._ttl_s = ttl_s
        self._in_progress_timeout_s = in_progress_timeout_s
        self._poll_interval_s = poll_interval_s

    @classmethod
    def from_settings(
        cls, database: Database, methods: Mapping[str, KeyRule], settings: IdempotencySettings
    ) -> IdempotencyInterceptor:
        return cls(
            database,
            methods,
            ttl_s=settings.ttl_s,
            in_progress_timeout_s=settings.in_progress_timeout_s,
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        rule = self._methods.get(details.method)
        if rule is None or handler is None:
            return handler
        if handler.unary_unary is None:
            # A streaming response cannot be replayed as one stored message.
            raise TypeError(f"idempotency keys support unary-unary methods only, not {details.method}")
        scope: str = details.method
        inner: Handler = handler.unary_unary
        serialize: Serializer = handler.response_serializer or _identity
        metadata = tuple(details.invocation_metadata or ())

        async def idempotent(request: Any, context: grpc.aio.ServicerContext) -> Any:
            key = key_of(rule, request, metadata)
            if key is None:  # optional key not sent: an ordinary call
                return await inner(request, context)
            return await self._once(scope, key, rule.field, request, context, inner, serialize)

        return grpc.unary_unary_rpc_method_handler(
            idempotent,
            request_deserializer=handler.request_deserializer,
            response_serializer=_passing_bytes(serialize),
        )

    async def _once(
        self,
        scope: str,
        key: str,
        field: str,
        request: Any,
        context: grpc.aio.ServicerContext,
        inner: Handler,
        serialize: Serializer,
    ) -> Any:
        digest = request_hash(request)
        claim = await self._claim(scope, key, field, digest, context)
        if isinstance(claim, Replay):
            _record_outcome("replayed")
            return claim.response
        _record_outcome("taken_over" if claim.taken_over else "claimed")
        if claim.taken_over:
            log.warning("took over a stale idempotency claim", extra={"scope": scope, "idempotency_key": key})
        try:
            response = await inner(request, context)
            if _failed_without_raising(context):
                # The handler set an error status and returned: nothing to keep.
                await run_blocking(self._store.release, scope, key, claim.token)
                return response
            body = serialize(response)
            # Answer with the stored bytes themselves, so the first caller and
            # every repeat see exactly the same wire message.
            return await run_blocking(
                self._store.complete, scope, key, claim.token, digest, body, self._ttl_s
            )
        except BaseException:
            # DomainError, abort, cancellation, a failed store: forget the claim
            # so the caller can retry, and let the error go on unchanged.
            await self._release_quietly(scope, key, claim.token)
            raise

    async def _claim(
        self, scope: str, key: str, field: str, digest: bytes, context: grpc.aio.ServicerContext
    ) -> Claimed | Replay:
        """Claim the key, or wait for the same request running elsewhere and replay its answer.

        A live claim ends within in_progress_timeout_s (it completes, is
        released, or goes stale and is taken over here), so the wait is
        bounded by that and by the call's own deadline.
        """
        loop = asyncio.get_running_loop()
        wait_s = self._in_progress_timeout_s + self._poll_interval_s
        remaining_s = context.time_remaining()
        if remaining_s is not None:
            wait_s = min(wait_s, remaining_s)
        give_up_at = loop.time() + wait_s
        while True:
            outcome = await run_blocking(
                self._store.claim, scope, key, digest, self._ttl_s, self._in_progress_timeout_s
            )
            match outcome:
                case Claimed() | Replay():
                    return outcome
                case Conflict():
                    raise AlreadyExists(
                        f"{field} {key!r} was already used for a different request to {scope}; "
                        "repeat the first request unchanged to get its response, or use a new key",
                        field=field,
                    )
                case Busy():
                    if loop.time() + self._poll_interval_s > give_up_at:
                        raise Unavailable(
                            f"{field} {key!r}: the first request with this key is still "
                            "in progress; retry later with the same key"
                        )
                    await asyncio.sleep(self._poll_interval_s)
                case _:
                    assert_never(outcome)

    async def _release_quietly(self, scope: str, key: str, token: str) -> None:
        try:
            await run_blocking(self._store.release, scope, key, token)
        except Exception:
            # The caller gets the handler's own error, not this one; the claim
            # goes stale after in_progress_timeout_s and a retry takes it over.
            log.exception("could not release an idempotency claim", extra={"scope": scope})


def _identity(response: Any) -> bytes:
    if not isinstance(response, bytes):
        raise TypeError(f"a method without a response serializer returned {type(response).__name__}")
    return response


def _passing_bytes(serialize: Serializer) -> Serializer:
    """The method's serializer, except that bytes (a stored response) go out unchanged."""

    def serializer(response: Any) -> bytes:
        return response if isinstance(response, bytes) else serialize(response)

    return serializer


def _failed_without_raising(context: grpc.aio.ServicerContext) -> bool:
    code = context.code()
    return code is not None and code != grpc.StatusCode.OK


def _record_outcome(outcome: str) -> None:
    trace.get_current_span().set_attribute(OUTCOME_ATTRIBUTE, outcome)
