"""Building a grpc.aio server that every service starts the same way."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from paykit.errors import DomainError
from paykit.grpckit.errors import (
    STATUS_DETAILS_KEY,
    internal_status,
    status_code_of,
    status_details,
)
from paykit.grpckit.metrics import MetricsInterceptor
from paykit.telemetry import extract_context, tracer

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Server span from the caller's trace context, and domain errors mapped to status codes."""

    def __init__(self) -> None:
        self._tracer = tracer("paykit.grpckit.server")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method
        metadata = {k: v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        inner = handler.unary_unary

        @functools.wraps(inner)
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with self._tracer.start_as_current_span(
                method, context=extract_context(metadata), kind=trace.SpanKind.SERVER
            ) as span:
                try:
                    return await inner(request, context)
                except DomainError as exc:
                    code = status_code_of(exc)
                    span.set_attribute("rpc.grpc.status_code", code.name)
                    await context.abort(
                        code,
                        exc.message,
                        trailing_metadata=((STATUS_DETAILS_KEY, status_details(exc, code)),),
                    )
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception:
                    reference = format(span.get_span_context().trace_id, "032x")
                    log.exception("unhandled error in %s", method)
                    code, message = internal_status(reference)
                    await context.abort(code, message)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


Registrar = Callable[[Any, grpc.aio.Server], None]


def create_server(
    address: str,
    services: Sequence[tuple[Registrar, Any, str]],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, int]:
    """A started-later aio server bound to `address` ("127.0.0.1:0" picks a free port).

    `services` are (add_XServicer_to_server, servicer, full service name);
    health (each service SERVING) and reflection are added for all of them.
    `interceptors` run inside the tracing/error-mapping one, so a DomainError
    they raise becomes a status like any other.
    Every server is measured (paykit.grpckit.metrics).
    """
    server = grpc.aio.server(
        # Metrics outermost: they count the status the caller gets, after error mapping.
        interceptors=[MetricsInterceptor(), ServerInterceptor(), *interceptors],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [health.SERVICE_NAME, reflection.SERVICE_NAME]
    for register, servicer, name in services:
        register(servicer, server)
        names.append(name)
    reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot bind gRPC server to {address}")
    server._paykit_health = health_servicer
    server._paykit_names = [name for _, _, name in services]
    return server, port


async def mark_serving(server: grpc.aio.Server) -> None:
    """Report SERVING for the whole server and each service once dependencies are ready."""
    health_servicer = server._paykit_health
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    for name in server._paykit_names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
