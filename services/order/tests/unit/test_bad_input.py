"""Every bad request is a field-level InvalidArgument raised before anything is
read, written or sent: the servicer here has no database and no payment-core,
and any use of them fails the test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from order_service.entrypoints.grpc_server import OrderServicer
from paykit.common.v1.money_pb2 import Money
from paykit.errors import InvalidArgument
from paykit.order.v1 import order_pb2


class Untouchable:
    """Stands for the database and payment-core: any use is a failure."""

    def __call__(self, *args: object, **kwargs: object) -> Any:
        raise AssertionError("a bad request reached the database or payment-core")

    def __getattr__(self, name: str) -> Any:
        return self


SERVICER = OrderServicer(Untouchable(), Untouchable())  # type: ignore[arg-type]
CNY_100 = Money(minor=100, currency="CNY")


def refund(**fields: Any) -> order_pb2.RefundOrderRequest:
    request = {"idempotency_key": "k-1", "order_id": "ord_1", "amount": CNY_100, "reason": "damaged"}
    request.update(fields)
    return order_pb2.RefundOrderRequest(**{k: v for k, v in request.items() if v is not None})


CASES: list[tuple[str, Callable[[], Awaitable[object]], str]] = [
    ("get without id", lambda: SERVICER.GetOrder(order_pb2.GetOrderRequest(), None), "order_id"),
    ("pay without id", lambda: SERVICER.PayOrder(order_pb2.PayOrderRequest(method="qr"), None), "order_id"),
    (
        "pay by an unknown method",
        lambda: SERVICER.PayOrder(order_pb2.PayOrderRequest(order_id="ord_1", method="gold"), None),
        "method",
    ),
    (
        "close without id",
        lambda: SERVICER.CloseOrder(order_pb2.CloseOrderRequest(reason="x"), None),
        "order_id",
    ),
    (
        "close with a reason too long",
        lambda: SERVICER.CloseOrder(order_pb2.CloseOrderRequest(order_id="ord_1", reason="x" * 257), None),
        "reason",
    ),
    (
        "refund without key",
        lambda: SERVICER.RefundOrder(refund(idempotency_key=None), None),
        "idempotency_key",
    ),
    (
        "refund key with a space",
        lambda: SERVICER.RefundOrder(refund(idempotency_key="a b"), None),
        "idempotency_key",
    ),
    (
        "refund key too long",
        lambda: SERVICER.RefundOrder(refund(idempotency_key="k" * 129), None),
        "idempotency_key",
    ),
    ("refund without order id", lambda: SERVICER.RefundOrder(refund(order_id=None), None), "order_id"),
    ("refund without amount", lambda: SERVICER.RefundOrder(refund(amount=None), None), "amount"),
    (
        "refund of zero",
        lambda: SERVICER.RefundOrder(refund(amount=Money(minor=0, currency="CNY")), None),
        "amount.minor",
    ),
    (
        "negative refund",
        lambda: SERVICER.RefundOrder(refund(amount=Money(minor=-5, currency="CNY")), None),
        "amount.minor",
    ),
    (
        "absurd refund",
        lambda: SERVICER.RefundOrder(refund(amount=Money(minor=10**16, currency="CNY")), None),
        "amount.minor",
    ),
    (
        "refund without currency",
        lambda: SERVICER.RefundOrder(refund(amount=Money(minor=5)), None),
        "amount.currency",
    ),
    (
        "refund in an unknown currency",
        lambda: SERVICER.RefundOrder(refund(amount=Money(minor=5, currency="XYZ")), None),
        "amount.currency",
    ),
    ("refund reason too long", lambda: SERVICER.RefundOrder(refund(reason="r" * 257), None), "reason"),
]


@pytest.mark.parametrize(("case", "call", "field"), CASES, ids=[case for case, _, _ in CASES])
def test_bad_request_is_invalid_argument_naming_the_field_and_touches_nothing(
    case: str, call: Callable[[], Awaitable[object]], field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        asyncio.run(call())  # type: ignore[arg-type]
    assert info.value.field == field, case
