"""Bad requests get a status with a field-level message and write nothing."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from paykit.common.v1.money_pb2 import Money
from paykit.devstack.suite import Suite
from paykit.order.v1 import order_pb2

from tests.e2e.helpers import new_order, orders, query


def _field_violation(err: grpc.RpcError) -> str:
    details = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    status = status_pb2.Status.FromString(details)
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return bad_request.field_violations[0].field


def _orders_with_number(suite: Suite, number: str) -> int:
    return query(suite, "order", "select count(*) from orders where merchant_order_no=:n", n=number)[0][0]


@pytest.mark.parametrize(
    ("minor", "currency", "field"),
    [
        (0, "CNY", "amount.minor"),
        (-100, "CNY", "amount.minor"),
        (10**16, "CNY", "amount.minor"),
        (100, "XYZ", "amount.currency"),
        (100, "", "amount.currency"),
        (100, "cny", "amount.currency"),
    ],
)
def test_bad_amount_is_invalid_argument_naming_the_field_and_writes_nothing(
    suite: Suite, minor: int, currency: str, field: str
) -> None:
    number = f"bad-{uuid.uuid4().hex[:10]}"
    with pytest.raises(grpc.RpcError) as info:
        orders(suite).CreateOrder(
            order_pb2.CreateOrderRequest(
                merchant_id="m-e2e",
                merchant_order_no=number,
                amount=Money(minor=minor, currency=currency),
            ),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field_violation(info.value) == field
    assert field in info.value.details()
    assert _orders_with_number(suite, number) == 0


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"merchant_id": "m-e2e"}, "merchant_order_no"),
        ({"merchant_order_no": "x-1"}, "merchant_id"),
        ({"merchant_id": "m-e2e", "merchant_order_no": "x-2", "no_amount": True}, "amount"),
    ],
)
def test_missing_fields_are_invalid_argument(
    suite: Suite, request_fields: dict[str, object], field: str
) -> None:
    request = order_pb2.CreateOrderRequest(
        merchant_id=str(request_fields.get("merchant_id", "")),
        merchant_order_no=str(request_fields.get("merchant_order_no", "")),
    )
    if not request_fields.get("no_amount"):
        request.amount.CopyFrom(Money(minor=100, currency="CNY"))
    with pytest.raises(grpc.RpcError) as info:
        orders(suite).CreateOrder(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field_violation(info.value) == field


def test_unknown_order_is_not_found_for_get_and_pay(suite: Suite) -> None:
    for call in (
        lambda: orders(suite).GetOrder(order_pb2.GetOrderRequest(order_id="ord_unknown"), timeout=10),
        lambda: orders(suite).PayOrder(
            order_pb2.PayOrderRequest(order_id="ord_unknown", method="qr"), timeout=10
        ),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert "ord_unknown" in info.value.details()


def test_reused_merchant_order_no_with_another_amount_is_already_exists_and_keeps_the_first(
    suite: Suite,
) -> None:
    first = new_order(suite, minor=1000)
    again = orders(suite).CreateOrder(
        order_pb2.CreateOrderRequest(
            merchant_id="m-e2e",
            merchant_order_no=first.merchant_order_no,
            amount=Money(minor=1000, currency="CNY"),
            subject="e2e",
        ),
        timeout=10,
    )
    assert again.order_id == first.order_id, "same key, same request: the first order"
    with pytest.raises(grpc.RpcError) as info:
        orders(suite).CreateOrder(
            order_pb2.CreateOrderRequest(
                merchant_id="m-e2e",
                merchant_order_no=first.merchant_order_no,
                amount=Money(minor=2000, currency="CNY"),
                subject="e2e",
            ),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert first.merchant_order_no in info.value.details()
    rows = query(
        suite,
        "order",
        "select amount_minor from orders where merchant_order_no=:n",
        n=first.merchant_order_no,
    )
    assert [r.amount_minor for r in rows] == [1000]


def test_unknown_payment_method_is_invalid_argument_and_order_stays_created(suite: Suite) -> None:
    order = new_order(suite)
    with pytest.raises(grpc.RpcError) as info:
        orders(suite).PayOrder(order_pb2.PayOrderRequest(order_id=order.order_id, method="cash"), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field_violation(info.value) == "method"
    rows = query(suite, "order", "select status from orders where order_id=:o", o=order.order_id)
    assert [r.status for r in rows] == ["CREATED"]
