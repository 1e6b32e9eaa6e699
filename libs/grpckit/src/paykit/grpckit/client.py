"""Client channels that carry the trace context and default deadlines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from paykit.telemetry import inject_carrier

# Every call has a deadline; a callee that hangs must not hang its caller.
DEFAULT_DEADLINE_S = 10.0


class _TraceClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        metadata = list(details.metadata or ())
        metadata.extend(inject_carrier().items())
        timeout = details.timeout if details.timeout is not None else DEFAULT_DEADLINE_S
        new_details = grpc.aio.ClientCallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready
        )
        return await continuation(new_details, request)


def open_channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target, interceptors=[_TraceClientInterceptor()])
