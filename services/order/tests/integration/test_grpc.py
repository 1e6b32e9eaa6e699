"""OrderService's new calls over real gRPC and PostgreSQL: statuses, field-level
details, the new Order fields, and nothing written on a bad request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import pytest
from order_service.domain.order import Order, OrderStatus
from order_service.entrypoints.grpc_server import SERVICE_NAME, OrderServicer
from order_service.service_layer.services import UowFactory, now_utc
from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.contracts.convert import from_timestamp
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.grpckit.testing import in_process_caller, rpc_error, violated_field
from paykit.money import Money
from paykit.order.v1 import order_pb2, order_pb2_grpc

T = TypeVar("T")
Stub = order_pb2_grpc.OrderServiceStub


@pytest.fixture
def call(uow_factory: UowFactory, payment_core: Any) -> Callable[[Callable[[Stub], Awaitable[T]]], T]:
    """Run `use(stub)` against an OrderService on a free port, then stop it."""

    return in_process_caller(  # type: ignore[no-any-return]
        order_pb2_grpc.add_OrderServiceServicer_to_server,
        OrderServicer(uow_factory, payment_core),
        SERVICE_NAME,
        order_pb2_grpc.OrderServiceStub,
    )


def refund_request(order_id: str, **fields: Any) -> order_pb2.RefundOrderRequest:
    request: dict[str, Any] = {
        "idempotency_key": "k-1",
        "order_id": order_id,
        "amount": MoneyProto(minor=500, currency="CNY"),
        "reason": "returned",
    }
    request.update(fields)
    return order_pb2.RefundOrderRequest(**{k: v for k, v in request.items() if v is not None})


@pytest.fixture
def paid(make_order: Callable[..., Order]) -> Order:
    return make_order(
        status=OrderStatus.PAID, pay_attempts=1, pay_method="qr", payment_id="pay_1", paid_at=now_utc()
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"idempotency_key": None}, "idempotency_key"),
        ({"amount": None}, "amount"),
        ({"amount": MoneyProto(minor=0, currency="CNY")}, "amount.minor"),
        ({"amount": MoneyProto(minor=500, currency="usd")}, "amount.currency"),
        # Well formed, but not the order's currency: only known once the order is read.
        ({"amount": MoneyProto(minor=500, currency="USD")}, "amount.currency"),
    ],
)
def test_bad_refund_is_invalid_argument_naming_the_field_and_writes_nothing(
    call: Any,
    paid: Order,
    payment_core: Any,
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
    fields: dict[str, Any],
    field: str,
) -> None:
    error = rpc_error(call, lambda stub: stub.RefundOrder(refund_request(paid.order_id, **fields)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violated_field(error) == field
    assert get_order(paid.order_id) == paid
    assert published(paid.order_id) == []
    assert payment_core.calls == []


def test_close_without_order_id_is_invalid_argument(call: Any) -> None:
    error = rpc_error(call, lambda stub: stub.CloseOrder(order_pb2.CloseOrderRequest(reason="x")))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violated_field(error) == "order_id"


def test_refund_of_an_unpaid_order_is_failed_precondition(
    call: Any, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    error = rpc_error(call, lambda stub: stub.RefundOrder(refund_request(order.order_id)))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == f"order {order.order_id} is CREATED; only a paid order can be refunded"


def test_close_of_an_unknown_order_is_not_found(call: Any) -> None:
    error = rpc_error(call, lambda stub: stub.CloseOrder(order_pb2.CloseOrderRequest(order_id="ord_nope")))
    assert error.code() is grpc.StatusCode.NOT_FOUND


def test_refund_answers_with_the_refund_and_the_order(call: Any, paid: Order) -> None:
    response = call(lambda stub: stub.RefundOrder(refund_request(paid.order_id)))
    assert (response.refund_id, response.refund_status) == (f"rfd_{paid.order_id}:k-1", "PENDING")
    assert response.order.status == order_pb2.ORDER_STATUS_PAID


def test_close_answers_with_the_closed_order(call: Any, make_order: Callable[..., Order]) -> None:
    order = make_order()
    closed = call(
        lambda stub: stub.CloseOrder(order_pb2.CloseOrderRequest(order_id=order.order_id, reason="r"))
    )
    assert (closed.status, closed.close_reason) == (order_pb2.ORDER_STATUS_CLOSED, "r")
    assert closed.HasField("closed_at")


def test_get_order_shows_refunds_method_and_duplicates(
    call: Any, make_order: Callable[..., Order], uow_factory: UowFactory
) -> None:
    order = make_order(
        status=OrderStatus.PARTIALLY_REFUNDED,
        pay_attempts=2,
        pay_method="qr",
        payment_id="pay_1",
        paid_at=now_utc(),
        refunded=Money(700, "CNY"),
    )
    with uow_factory() as uow:
        uow.orders.record_duplicate_payment(order.order_id, f"pay_dup_{order.order_id}")
        uow.commit()
    shown = call(lambda stub: stub.GetOrder(order_pb2.GetOrderRequest(order_id=order.order_id)))
    assert shown.status == order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED
    assert (shown.refunded_amount.minor, shown.refunded_amount.currency) == (700, "CNY")
    assert shown.pay_method == "qr"
    assert list(shown.duplicate_payment_ids) == [f"pay_dup_{order.order_id}"]
    assert (shown.close_reason, shown.HasField("closed_at")) == ("", False)
    assert from_timestamp(shown.paid_at) == order.paid_at
