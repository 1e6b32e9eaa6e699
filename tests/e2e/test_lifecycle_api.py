"""The lifecycle's API edges through the real suite: bad input gets a clear status with the
field and writes nothing; idempotency keys replay the first response byte for byte; a
double click creates one payment; operators and errors steer routing away from a channel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from paykit.common.v1.money_pb2 import Money
from paykit.devstack.suite import Suite
from paykit.order.v1 import order_pb2
from paykit.payment.v1 import payment_pb2

from tests.e2e.helpers import (
    DEFAULT_BEHAVIOUR,
    configure_channel,
    eventually,
    get_payment,
    new_order,
    order_status,
    orders,
    pay,
    payments,
    payments_of,
    query,
    refund_order,
    rpc_error,
    status_name,
    wait_order_status,
)


def violations(error: grpc.RpcError) -> dict[str, str]:
    """Field -> description from the google.rpc.BadRequest detail in the trailers."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return {v.field: v.description for v in bad.field_violations}
    return {}


def table_counts(suite: Suite) -> tuple[int, int, int]:
    rows = query(
        suite,
        "payment_core",
        "select (select count(*) from payments), (select count(*) from refunds), "
        "(select count(*) from outbox)",
    )
    return tuple(rows[0])  # type: ignore[return-value]


@pytest.fixture
def paid(suite: Suite) -> tuple[str, str]:
    order = new_order(suite, minor=10_000)
    reply = pay(suite, order.order_id)
    wait_order_status(suite, order.order_id, "PAID")
    return order.order_id, reply.payment_id


def test_refund_bad_input_is_refused_with_the_field_and_writes_nothing(
    suite: Suite, paid: tuple[str, str]
) -> None:
    order_id, payment_id = paid
    before = table_counts(suite)

    too_much = rpc_error(lambda: refund_order(suite, order_id, 10_001, "big"))
    assert too_much.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "100.00" in (too_much.details() or "")

    unpaid = new_order(suite)
    not_paid = rpc_error(lambda: refund_order(suite, unpaid.order_id, 100, "unpaid"))
    assert not_paid.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "paid" in (not_paid.details() or "")

    no_key = rpc_error(lambda: refund_order(suite, order_id, 100, ""))
    assert no_key.code() == grpc.StatusCode.INVALID_ARGUMENT and "idempotency_key" in violations(no_key)

    currency = rpc_error(lambda: refund_order(suite, order_id, 100, "usd", currency="USD"))
    assert currency.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "amount.currency" in violations(currency)

    negative = rpc_error(lambda: refund_order(suite, order_id, -5, "neg"))
    assert negative.code() == grpc.StatusCode.INVALID_ARGUMENT

    unknown = rpc_error(lambda: refund_order(suite, "ord_0000000000000000000000000", 100, "unknown"))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND

    direct = rpc_error(
        lambda: payments(suite).RefundPayment(
            payment_pb2.RefundRequest(
                idempotency_key="direct-1", payment_id=payment_id, amount=Money(minor=10_001, currency="CNY")
            ),
            timeout=10,
        )
    )
    assert direct.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert table_counts(suite) == before


def test_close_of_a_paid_order_and_unknown_ids_are_refused(suite: Suite, paid: tuple[str, str]) -> None:
    order_id, payment_id = paid
    closing = rpc_error(
        lambda: orders(suite).CloseOrder(order_pb2.CloseOrderRequest(order_id=order_id), timeout=10)
    )
    assert closing.code() == grpc.StatusCode.FAILED_PRECONDITION and "refund" in (closing.details() or "")
    close_payment = rpc_error(
        lambda: payments(suite).ClosePayment(
            payment_pb2.ClosePaymentRequest(payment_id=payment_id), timeout=10
        )
    )
    assert close_payment.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert order_status(suite, order_id) == "PAID"
    for call in (
        lambda: payments(suite).GetPayment(payment_pb2.GetPaymentRequest(payment_id="pay_nope"), timeout=10),
        lambda: payments(suite).GetRefund(payment_pb2.GetRefundRequest(refund_id="rfd_nope"), timeout=10),
        lambda: orders(suite).CloseOrder(order_pb2.CloseOrderRequest(order_id="ord_nope"), timeout=10),
    ):
        assert rpc_error(call).code() == grpc.StatusCode.NOT_FOUND
    both = rpc_error(
        lambda: payments(suite).ClosePayment(
            payment_pb2.ClosePaymentRequest(payment_id=payment_id, order_id=order_id), timeout=10
        )
    )
    assert both.code() == grpc.StatusCode.INVALID_ARGUMENT and "payment_id" in violations(both)


def test_cancelled_unpaid_order_is_closed_and_takes_no_payment(suite: Suite) -> None:
    order = new_order(suite, subject="tea sim:no_pay")
    reply = pay(suite, order.order_id)
    closed = orders(suite).CloseOrder(
        order_pb2.CloseOrderRequest(order_id=order.order_id, reason="customer cancelled"), timeout=30
    )
    assert order_pb2.OrderStatus.Name(closed.status) == "ORDER_STATUS_CLOSED"
    assert closed.close_reason == "customer cancelled"
    assert status_name(get_payment(suite, reply.payment_id)) == "FAILED"
    again = rpc_error(lambda: pay(suite, order.order_id))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    # payment-core itself refuses a new payment for the closed order.
    refused = rpc_error(
        lambda: payments(suite).CreatePayment(
            payment_pb2.CreatePaymentRequest(
                idempotency_key=f"{order.order_id}/99",
                order_id=order.order_id,
                merchant_id="m-e2e",
                amount=Money(minor=1999, currency="CNY"),
                method="qr",
            ),
            timeout=10,
        )
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION


def raw_call(suite: Suite, target: str, method: str, request: bytes, metadata: Any = None) -> bytes:
    """The response's bytes exactly as they came over the wire."""
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        return call(request, timeout=30, metadata=metadata)  # type: ignore[no-any-return]


def test_same_idempotency_key_replays_the_first_response_byte_for_byte(
    suite: Suite, paid: tuple[str, str]
) -> None:
    order_id, _ = paid
    request = order_pb2.RefundOrderRequest(
        idempotency_key="replay-1", order_id=order_id, amount=Money(minor=1_000, currency="CNY")
    ).SerializeToString()
    target = suite.grpc_target("order")
    first = raw_call(suite, target, "/paykit.order.v1.OrderService/RefundOrder", request)
    # By now the refund has moved on (PROCESSING -> SUCCEEDED); the replay is still the first answer.
    eventually(lambda: order_status(suite, order_id) == "PARTIALLY_REFUNDED", "refund settled")
    second = raw_call(suite, target, "/paykit.order.v1.OrderService/RefundOrder", request)
    assert second == first
    refunds = query(suite, "payment_core", "select count(*) from refunds where order_id = :o", o=order_id)
    assert refunds[0][0] == 1

    other = order_pb2.RefundOrderRequest(
        idempotency_key="replay-1", order_id=order_id, amount=Money(minor=2_000, currency="CNY")
    ).SerializeToString()
    reused = rpc_error(lambda: raw_call(suite, target, "/paykit.order.v1.OrderService/RefundOrder", other))
    assert reused.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "replay-1" in (reused.details() or "") and "idempotency_key" in violations(reused)

    create = order_pb2.CreateOrderRequest(
        merchant_id="m-e2e", merchant_order_no="idem-create-1", amount=Money(minor=500, currency="CNY")
    ).SerializeToString()
    key = (("idempotency-key", "create-1"),)
    created = raw_call(suite, target, "/paykit.order.v1.OrderService/CreateOrder", create, key)
    assert raw_call(suite, target, "/paykit.order.v1.OrderService/CreateOrder", create, key) == created


def test_double_click_on_pay_creates_one_payment(suite: Suite) -> None:
    order = new_order(suite)
    key = (("idempotency-key", f"click-{order.order_id}"),)
    request = order_pb2.PayOrderRequest(order_id=order.order_id, method="qr").SerializeToString()
    target = suite.grpc_target("order")
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(
                lambda _: raw_call(suite, target, "/paykit.order.v1.OrderService/PayOrder", request, key),
                range(4),
            )
        )
    assert len(set(answers)) == 1
    # Without a key the natural key (the order's attempt) still yields one payment.
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(lambda _: pay(suite, order.order_id), range(4)))
    assert len({r.payment_id for r in replies}) == 1
    assert len(payments_of(suite, order.order_id)) == 1
    wait_order_status(suite, order.order_id, "PAID")


@pytest.fixture
def healthy_channels(suite: Suite) -> Iterator[None]:
    yield
    configure_channel(suite, **DEFAULT_BEHAVIOUR)
    payments(suite).SetChannelHealth(
        payment_pb2.SetChannelHealthRequest(channel="simulator", disabled=False, actor="e2e"), timeout=10
    )


def channel_health(suite: Suite, channel: str) -> payment_pb2.ChannelHealth:
    listed = payments(suite).ListChannelHealth(payment_pb2.ListChannelHealthRequest(), timeout=10)
    return next(c for c in listed.channels if c.channel == channel)


def test_operator_disabled_channel_is_skipped(suite: Suite, healthy_channels: None) -> None:
    missing = rpc_error(
        lambda: payments(suite).SetChannelHealth(
            payment_pb2.SetChannelHealthRequest(channel="simulator", disabled=True, actor="ops"), timeout=10
        )
    )
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in violations(missing)
    payments(suite).SetChannelHealth(
        payment_pb2.SetChannelHealthRequest(
            channel="simulator", disabled=True, reason="maintenance", actor="ops"
        ),
        timeout=10,
    )
    health = channel_health(suite, "simulator")
    assert not health.healthy and health.operator_disabled and health.actor == "ops"
    time.sleep(1.2)  # routing reads health through a one-second snapshot
    replies = [pay(suite, new_order(suite).order_id) for _ in range(6)]
    assert {get_payment(suite, r.payment_id).channel for r in replies} == {"simulator_b"}


def test_consecutive_unanswered_charges_open_the_circuit_without_failing_over(
    suite: Suite, healthy_channels: None
) -> None:
    # Start from a closed circuit whatever earlier tests (the chaos run) left behind.
    payments(suite).SetChannelHealth(
        payment_pb2.SetChannelHealthRequest(channel="simulator", disabled=False, actor="e2e"), timeout=10
    )
    configure_channel(suite, "SIM-MERCHANT-1", unavailable=True)
    at_simulator: list[tuple[str, order_pb2.PayOrderResponse]] = []
    for _ in range(40):
        if len(at_simulator) == 3:
            break
        order = new_order(suite, expires_in_s=8)
        reply = pay(suite, order.order_id)
        if get_payment(suite, reply.payment_id).channel == "simulator":
            at_simulator.append((order.order_id, reply))
    # A channel that did not answer may have the money: never retried elsewhere, left UNKNOWN.
    assert len(at_simulator) == 3 and all(r.payment_status == "UNKNOWN" for _, r in at_simulator)
    health = channel_health(suite, "simulator")
    assert not health.healthy and health.consecutive_errors == 3 and "consecutive errors" in health.reason
    # While the circuit is open, routing skips the channel.
    for _ in range(4):
        reply = pay(suite, new_order(suite).order_id)
        assert get_payment(suite, reply.payment_id).channel == "simulator_b"
    configure_channel(suite, "SIM-MERCHANT-1", unavailable=False)
    # Back up: the channel has no such trades, so at their deadline they are closed, never paid.
    for order_id, _ in at_simulator:
        eventually(
            lambda o=order_id: order_status(suite, o) == "CLOSED", "unknown payment's order closed", 60
        )
    for _, reply in at_simulator:
        assert status_name(get_payment(suite, reply.payment_id)) == "FAILED"
