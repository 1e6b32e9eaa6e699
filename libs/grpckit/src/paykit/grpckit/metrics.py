"""Request metrics for every gRPC server (create_server installs the interceptor).

paykit_grpc_server_handling_seconds{grpc_service, grpc_method}         histogram
paykit_grpc_server_handled_total{grpc_service, grpc_method, grpc_code}  counter

Labels are `grpc_*`, not `service`/`method`: a Prometheus ServiceMonitor adds
its own `service` target label, which would rename ours to `exported_service`.
Only unary calls are measured (health Watch and reflection are streams).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

# Seconds; deadlines of the suite's calls are 10-30 s.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HANDLING_SECONDS = Histogram(
    "paykit_grpc_server_handling_seconds",
    "Time a gRPC server took to answer a unary call, by service and method.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS_S,
)
HANDLED = Counter(
    "paykit_grpc_server_handled_total",
    "Unary gRPC calls answered, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)


def split_method(full_method: str) -> tuple[str, str]:
    """ "/paykit.order.v1.OrderService/CreateOrder" -> ("paykit.order.v1.OrderService", "CreateOrder")."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


def _code_name(code: Any) -> str:
    """What context.code() holds (a StatusCode, or its int/tuple form) as e.g. "NOT_FOUND"."""
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    for status in grpc.StatusCode:
        if code in (status.value, status.value[0]):
            return str(status.name)
    return "UNKNOWN"


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Outermost interceptor: it sees the status the caller gets, after error mapping."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        service, method = split_method(details.method)
        latency = HANDLING_SECONDS.labels(service, method)
        inner = handler.unary_unary

        @functools.wraps(inner)
        async def measured(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "UNKNOWN"
            try:
                response = await inner(request, context)
                code = _code_name(context.code())
                return response
            except grpc.aio.AbortError:
                code = _code_name(context.code())
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED.name
                raise
            finally:
                latency.observe(time.perf_counter() - started)
                HANDLED.labels(service, method, code).inc()

        return grpc.unary_unary_rpc_method_handler(
            measured,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
