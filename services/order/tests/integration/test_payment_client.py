"""The payment-core client over real gRPC, against a minimal stand-in of payment-core's
API served the way every service here serves (paykit.grpckit), so its errors
arrive with the same status codes and field details as payment-core's would."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
import pytest
from order_service.adapters.payment_client import ClosureOutcome, PaymentCoreClient
from order_service.domain.order import Order, OrderStatus
from paykit.contracts.convert import from_timestamp
from paykit.devstack.procs import free_port
from paykit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from paykit.grpckit import create_server
from paykit.money import Money
from paykit.payment.v1 import payment_pb2, payment_pb2_grpc

T = TypeVar("T")
SERVICE = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name


class PaymentCoreStandIn(payment_pb2_grpc.PaymentServiceServicer):
    """Records each request; answers with what the test put in `answer` (a message or an error)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.answer: Any = None

    async def _reply(self, request: Any) -> Any:
        self.requests.append(request)
        if isinstance(self.answer, DomainError):
            raise self.answer
        return self.answer

    async def CreatePayment(self, request: Any, context: Any) -> Any:
        return await self._reply(request)

    async def ClosePayment(self, request: Any, context: Any) -> Any:
        return await self._reply(request)

    async def RefundPayment(self, request: Any, context: Any) -> Any:
        return await self._reply(request)


def with_client(stand_in: PaymentCoreStandIn, use: Callable[[PaymentCoreClient], Awaitable[T]]) -> T:
    async def run() -> T:
        server, port = create_server(
            "127.0.0.1:0", [(payment_pb2_grpc.add_PaymentServiceServicer_to_server, stand_in, SERVICE)]
        )
        await server.start()
        client = PaymentCoreClient(f"127.0.0.1:{port}")
        try:
            return await use(client)
        finally:
            await client.close()
            await server.stop(None)

    return asyncio.run(run())


def order() -> Order:
    created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return Order(
        order_id="ord_1",
        merchant_id="mch_1",
        merchant_order_no="M-1",
        amount=Money(1999, "CNY"),
        subject="a book",
        status=OrderStatus.PAYING,
        created_at=created,
        expires_at=created + timedelta(minutes=15),
        pay_attempts=2,
        refunded=Money.zero("CNY"),
    )


def refund(client: PaymentCoreClient) -> Awaitable[Any]:
    return client.refund_payment("ord_1:k", "pay_1", Money(500, "CNY"), "returned")


def test_create_payment_sends_the_orders_expiry_and_attempt_key() -> None:
    stand_in = PaymentCoreStandIn()
    stand_in.answer = payment_pb2.Payment(payment_id="pay_1", status=payment_pb2.PAYMENT_STATUS_PROCESSING)
    view = with_client(stand_in, lambda client: client.create_payment(order(), "qr"))
    [request] = stand_in.requests
    assert from_timestamp(request.expires_at) == order().expires_at
    assert (request.idempotency_key, request.method) == ("ord_1/2", "qr")
    assert (view.payment_id, view.status) == ("pay_1", "PROCESSING")


@pytest.mark.parametrize(
    ("wire", "outcome"),
    [
        (payment_pb2.CLOSURE_OUTCOME_CLOSED, ClosureOutcome.CLOSED),
        (payment_pb2.CLOSURE_OUTCOME_PAID, ClosureOutcome.PAID),
        (payment_pb2.CLOSURE_OUTCOME_PENDING, ClosureOutcome.PENDING),
        # Unset is no confirmed close: it must never close the order.
        (payment_pb2.CLOSURE_OUTCOME_UNSPECIFIED, ClosureOutcome.PENDING),
    ],
)
def test_close_payment_outcomes(wire: int, outcome: ClosureOutcome) -> None:
    stand_in = PaymentCoreStandIn()
    stand_in.answer = payment_pb2.ClosePaymentResponse(outcome=wire)  # type: ignore[arg-type]
    result = with_client(stand_in, lambda client: client.close_payment("ord_1", "expired", force=True))
    assert result.outcome is outcome
    [request] = stand_in.requests
    assert (request.order_id, request.payment_id, request.reason, request.force) == (
        "ord_1",
        "",
        "expired",
        True,
    )


def test_refund_payment_returns_the_refund() -> None:
    stand_in = PaymentCoreStandIn()
    stand_in.answer = payment_pb2.Refund(refund_id="rfd_1", status=payment_pb2.REFUND_STATUS_PENDING)
    view = with_client(stand_in, refund)
    assert (view.refund_id, view.status) == ("rfd_1", "PENDING")
    [request] = stand_in.requests
    assert (request.idempotency_key, request.payment_id, request.amount.minor) == ("ord_1:k", "pay_1", 500)


@pytest.mark.parametrize(
    ("raised", "expected", "field"),
    [
        (FailedPrecondition("only 4.99 CNY is refundable"), FailedPrecondition, None),
        (InvalidArgument("amount.minor", "must be positive"), InvalidArgument, "amount.minor"),
        (InvalidArgument("reason", "too long"), InvalidArgument, "reason"),
        # Not the caller's input: the order service sent it, so it is a refusal.
        (InvalidArgument("payment_id", "malformed"), FailedPrecondition, None),
        (NotFound("payment pay_1 not found"), NotFound, None),
        (AlreadyExists("key ord_1:k was used for another refund"), AlreadyExists, None),
        (Unavailable("channel down"), Unavailable, None),
    ],
)
def test_refund_payment_errors_keep_their_meaning(
    raised: DomainError, expected: type[DomainError], field: str | None
) -> None:
    stand_in = PaymentCoreStandIn()
    stand_in.answer = raised
    with pytest.raises(expected) as info:
        with_client(stand_in, refund)
    assert raised.message.split(": ")[-1] in info.value.message
    if field is not None:
        assert isinstance(info.value, InvalidArgument) and info.value.field == field


def test_create_and_close_refusals_are_failed_precondition() -> None:
    stand_in = PaymentCoreStandIn()
    stand_in.answer = FailedPrecondition("order ord_1 is closed")
    with pytest.raises(FailedPrecondition, match="order ord_1 is closed"):
        with_client(stand_in, lambda client: client.create_payment(order(), "qr"))
    stand_in.answer = NotFound("order ord_1 has no payments")
    with pytest.raises(FailedPrecondition, match="no payments"):
        with_client(stand_in, lambda client: client.close_payment("ord_1", "expired"))


def test_payment_core_not_listening_is_unavailable() -> None:
    async def call() -> None:
        client = PaymentCoreClient(f"127.0.0.1:{free_port()}")
        try:
            await client.close_payment("ord_1", "expired")
        finally:
            await client.close()

    with pytest.raises(Unavailable, match="retry"):
        asyncio.run(call())


def test_status_codes_are_the_ones_payment_core_would_send() -> None:
    # Guards the stand-in itself: grpckit maps these errors as payment-core's server does.
    stand_in = PaymentCoreStandIn()
    stand_in.answer = FailedPrecondition("x")

    async def raw(client: PaymentCoreClient) -> grpc.StatusCode:
        try:
            await client._stub.ClosePayment(payment_pb2.ClosePaymentRequest(order_id="o"))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        raise AssertionError("no error")

    assert with_client(stand_in, raw) is grpc.StatusCode.FAILED_PRECONDITION
