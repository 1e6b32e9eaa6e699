"""Every gRPC server's request metrics, measured over a real loopback call per status."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from paykit.errors import NotFound
from paykit.grpckit.metrics import split_method
from paykit.grpckit.server import create_server
from prometheus_client import REGISTRY

SERVICE = "paykit.test.v1.Probe"
Behaviour = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


async def ok(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def not_found(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise NotFound("no such probe")


async def crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("a bug")


async def abort(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")
    return b""


async def set_code(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.UNAVAILABLE)
    context.set_details("try later")
    return b""


METHODS: dict[str, Behaviour] = {
    "Ok": ok,
    "NotFound": not_found,
    "Crash": crash,
    "Abort": abort,
    "SetCode": set_code,
}


def register(_servicer: Any, server: grpc.aio.Server) -> None:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn, request_deserializer=None, response_serializer=None)
        for name, fn in METHODS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def handled(method: str, code: str) -> float:
    labels = {"grpc_service": SERVICE, "grpc_method": method, "grpc_code": code}
    return REGISTRY.get_sample_value("paykit_grpc_server_handled_total", labels) or 0.0


def latency_count(method: str) -> float:
    labels = {"grpc_service": SERVICE, "grpc_method": method}
    return REGISTRY.get_sample_value("paykit_grpc_server_handling_seconds_count", labels) or 0.0


def call(method: str, times: int = 1) -> list[grpc.StatusCode]:
    async def run() -> list[grpc.StatusCode]:
        server, port = create_server("127.0.0.1:0", [(register, None, SERVICE)])
        await server.start()
        codes = []
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = channel.unary_unary(f"/{SERVICE}/{method}")
                for _ in range(times):
                    try:
                        await stub(b"ping", timeout=5)
                        codes.append(grpc.StatusCode.OK)
                    except grpc.aio.AioRpcError as exc:
                        codes.append(exc.code())
        finally:
            await server.stop(None)
        return codes

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("Ok", "OK"),
        ("NotFound", "NOT_FOUND"),  # a domain error, mapped by the error interceptor inside
        ("Crash", "INTERNAL"),  # an unexpected error: INTERNAL with a reference
        ("Abort", "PERMISSION_DENIED"),  # the servicer aborts itself
        ("SetCode", "UNAVAILABLE"),  # the servicer sets a code and returns
    ],
)
def test_each_call_is_counted_under_the_status_the_caller_received(method: str, code: str) -> None:
    before, timed_before = handled(method, code), latency_count(method)

    codes = call(method, times=3)

    assert [c.name for c in codes] == [code] * 3
    assert handled(method, code) - before == 3
    assert latency_count(method) - timed_before == 3
    print(f"\ngrpc metrics: 3 x {method} -> paykit_grpc_server_handled_total{{grpc_code={code!r}}} +3")


def test_latency_lands_in_the_histogram_buckets() -> None:
    labels = {"grpc_service": SERVICE, "grpc_method": "Ok"}
    before_sum = REGISTRY.get_sample_value("paykit_grpc_server_handling_seconds_sum", labels) or 0.0
    call("Ok")
    after_sum = REGISTRY.get_sample_value("paykit_grpc_server_handling_seconds_sum", labels) or 0.0
    slowest = REGISTRY.get_sample_value(
        "paykit_grpc_server_handling_seconds_bucket", {**labels, "le": "+Inf"}
    )
    assert 0 < after_sum - before_sum < 5
    assert slowest is not None and slowest >= 1


def test_health_checks_are_measured_like_any_unary_call() -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    labels = {"grpc_service": "grpc.health.v1.Health", "grpc_method": "Check", "grpc_code": "OK"}
    before = REGISTRY.get_sample_value("paykit_grpc_server_handled_total", labels) or 0.0

    async def run() -> None:
        server, port = create_server("127.0.0.1:0", [(register, None, SERVICE)])
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        finally:
            await server.stop(None)

    asyncio.run(run())
    assert (REGISTRY.get_sample_value("paykit_grpc_server_handled_total", labels) or 0.0) - before == 1


@pytest.mark.parametrize(
    ("full", "parts"),
    [
        ("/paykit.order.v1.OrderService/CreateOrder", ("paykit.order.v1.OrderService", "CreateOrder")),
        ("/grpc.health.v1.Health/Check", ("grpc.health.v1.Health", "Check")),
        ("garbage", ("unknown", "garbage")),
    ],
)
def test_method_names_split_into_service_and_method(full: str, parts: tuple[str, str]) -> None:
    assert split_method(full) == parts
