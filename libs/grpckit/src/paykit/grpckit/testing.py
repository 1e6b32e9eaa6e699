"""Calling a servicer over real gRPC inside a test: a server on a free loopback port per call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from paykit.grpckit.server import Registrar, create_server

S = TypeVar("S")
T = TypeVar("T")
Caller = Callable[[Callable[[S], Awaitable[T]]], T]


def in_process_caller(
    register: Registrar,
    servicer: Any,
    service_name: str,
    stub_type: Callable[[grpc.aio.Channel], S],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> Callable[[Callable[[S], Awaitable[Any]]], Any]:
    """`run(use)`: serve `servicer` on 127.0.0.1:0 (with the services' own interceptors),
    await `use(stub)`, stop the server, return what `use` returned."""

    def run(use: Callable[[S], Awaitable[Any]]) -> Any:
        async def serve_and_use() -> Any:
            server, port = create_server("127.0.0.1:0", [(register, servicer, service_name)], interceptors)
            await server.start()
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            try:
                return await use(stub_type(channel))
            finally:
                await channel.close()
                await server.stop(None)

        return asyncio.run(serve_and_use())

    return run


def rpc_error(run: Callable[[Callable[[S], Awaitable[Any]]], Any], use: Callable[[S], Awaitable[Any]]) -> Any:
    """The AioRpcError `use(stub)` ends with; fails the test when the call succeeds."""

    async def expect_error(stub: S) -> grpc.aio.AioRpcError:
        try:
            await use(stub)
        except grpc.aio.AioRpcError as exc:
            return exc
        raise AssertionError("the call succeeded")

    return run(expect_error)


def violated_field(error: grpc.aio.AioRpcError) -> str:
    """The field named by the google.rpc.BadRequest detail of an error."""
    details = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    bad_request = error_details_pb2.BadRequest()
    assert status_pb2.Status.FromString(details).details[0].Unpack(bad_request)
    return str(bad_request.field_violations[0].field)
