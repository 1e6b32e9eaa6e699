"""A real PostgreSQL database holding idempotency_keys, and a real gRPC server to call.

Postgres comes from paykit.devstack (PAYKIT_POSTGRES_URL, a container, or a
private cluster under `<repo>/.run/test-shared`); nothing is mocked or
skipped. The table is made by the shipped migration function, so the tests
exercise exactly what a service's Alembic history creates.

The subject service is the generated OrderService with a small servicer that
counts its calls and answers with a fresh id and timestamp each time, so "ran
once" and "same bytes" are both observable from outside.

Fixture names carry an `idem_` prefix so they cannot clash with other conftests.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import grpc
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from google.protobuf.timestamp_pb2 import Timestamp
from paykit.db import create_engine_for
from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer
from paykit.errors import FailedPrecondition
from paykit.grpckit.server import create_server
from paykit.idempotency import IdempotencyInterceptor, KeyRule, create_idempotency_table_v1, full_method
from paykit.order.v1 import order_pb2, order_pb2_grpc
from sqlalchemy import Engine, text

DATABASE_PREFIX = "idemtest_"
SERVICE = order_pb2.DESCRIPTOR.services_by_name["OrderService"]
# Each caller's blocking DB work holds one connection at a time; the largest
# test has 10 concurrent callers.
ENGINE_POOL_SIZE = 15

# The rules a service would configure: CreateOrder requires a metadata key,
# PayOrder and CloseOrder accept one, RefundOrder carries it in the request.
# GetOrder is not listed: reads pass through untouched.
METHODS: dict[str, KeyRule] = {
    full_method(SERVICE, "CreateOrder"): KeyRule(required=True),
    full_method(SERVICE, "PayOrder"): KeyRule(),
    full_method(SERVICE, "CloseOrder"): KeyRule(),
    full_method(SERVICE, "RefundOrder"): KeyRule(request_field="idempotency_key", required=True),
}


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


class CountingOrderService(order_pb2_grpc.OrderServiceServicer):
    """Counts calls per method; each answer carries a fresh id, so a rerun is visible in the bytes."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.delay_s = 0.0
        self.failures_left = 0
        # CloseOrder then sets an error status and returns instead of raising.
        self.close_sets_error_status = False
        # PayOrder aborts (context.abort) this many times before answering.
        self.pay_aborts_left = 0

    async def _enter(self, method: str) -> None:
        self.calls[method] += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.failures_left > 0:
            self.failures_left -= 1
            raise FailedPrecondition("the channel refused this attempt")

    async def CreateOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._enter("CreateOrder")
        return order_pb2.Order(
            order_id=uuid.uuid4().hex,
            merchant_id=request.merchant_id,
            merchant_order_no=request.merchant_order_no,
            amount=request.amount,
            subject=request.subject,
            status=order_pb2.ORDER_STATUS_CREATED,
            created_at=_now(),
        )

    async def GetOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._enter("GetOrder")
        return order_pb2.Order(order_id=request.order_id, subject=uuid.uuid4().hex)

    async def PayOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._enter("PayOrder")
        if self.pay_aborts_left > 0:
            self.pay_aborts_left -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "channel outage")
        return order_pb2.PayOrderResponse(payment_id=uuid.uuid4().hex, payment_status="PENDING")

    async def CloseOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._enter("CloseOrder")
        if self.close_sets_error_status:
            context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
            context.set_details("order is paid")
            return order_pb2.Order()
        return order_pb2.Order(order_id=request.order_id, close_reason=request.reason, closed_at=_now())

    async def RefundOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._enter("RefundOrder")
        return order_pb2.RefundOrderResponse(refund_id=uuid.uuid4().hex, refund_status="PENDING")


@contextlib.asynccontextmanager
async def _serving(
    engine: Engine,
    servicer: CountingOrderService,
    methods: Mapping[str, KeyRule],
    ttl_s: float,
    in_progress_timeout_s: float,
) -> AsyncIterator[grpc.aio.Channel]:
    interceptor = IdempotencyInterceptor(
        engine, methods, ttl_s=ttl_s, in_progress_timeout_s=in_progress_timeout_s
    )
    server, port = create_server(
        "127.0.0.1:0",
        [(order_pb2_grpc.add_OrderServiceServicer_to_server, servicer, SERVICE.full_name)],
        interceptors=[interceptor],
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


Serve = Callable[..., contextlib.AbstractAsyncContextManager[grpc.aio.Channel]]


@pytest.fixture
def idem_servicer() -> CountingOrderService:
    return CountingOrderService()


@pytest.fixture
def idem_serve(idem_engine: Engine, idem_clean_table: None) -> Serve:
    """`async with idem_serve(servicer, ttl_s=..., in_progress_timeout_s=...) as channel:`:
    the order service with the interceptor, on a free port, on a clean table."""

    def serve(
        servicer: CountingOrderService,
        *,
        methods: Mapping[str, KeyRule] = METHODS,
        ttl_s: float = 60.0,
        in_progress_timeout_s: float = 10.0,
    ) -> contextlib.AbstractAsyncContextManager[grpc.aio.Channel]:
        return _serving(idem_engine, servicer, methods, ttl_s, in_progress_timeout_s)

    return serve


@pytest.fixture(scope="session")
def idem_postgres_server(shared_postgres: PostgresServer) -> PostgresServer:
    return shared_postgres


@pytest.fixture(scope="session")
def idem_database_url(idem_postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh `idemtest_<random>` database, its table made by the migration function."""
    name, url = create_fresh_database(idem_postgres_server, DATABASE_PREFIX)
    engine = create_engine_for(url, application_name="idemtest-setup", pool_size=1)
    try:
        with engine.begin() as conn:
            create_idempotency_table_v1(Operations(MigrationContext.configure(conn)))
    finally:
        engine.dispose()
    try:
        yield url
    finally:
        drop_database(idem_postgres_server, name)


@pytest.fixture(scope="session")
def idem_engine(idem_database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(idem_database_url, application_name="idemtest", pool_size=ENGINE_POOL_SIZE)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def idem_clean_table(idem_engine: Engine) -> None:
    with idem_engine.begin() as conn:
        conn.execute(text("TRUNCATE idempotency_keys"))
