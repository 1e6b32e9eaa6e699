"""payment.events and refund.events applied to orders as the consumer loop applies them
(type filter, inbox and handler in one transaction), against real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.message import Message
from order_service.domain.order import Order, OrderStatus
from order_service.service_layer.services import now_utc
from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.contracts.convert import timestamp
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.events.v1.order_events_pb2 import OrderRefunded
from paykit.events.v1.payment_events_pb2 import PaymentSucceeded
from paykit.events.v1.refund_events_pb2 import RefundCreated, RefundFailed, RefundSucceeded
from paykit.messaging.envelope import OutgoingEvent, pack, unpack
from paykit.messaging.topics import PAYMENT_EVENTS, REFUND_EVENTS
from paykit.money import Money

Deliver = Callable[[OutgoingEvent], None]


def cny(minor: int) -> MoneyProto:
    return MoneyProto(minor=minor, currency="CNY")


def event(
    topic: str, event_type: str, order_id: str, payload: Message, event_id: str | None = None
) -> OutgoingEvent:
    """An event as payment-core publishes it (keyed by order id)."""
    return pack(
        topic=topic,
        key=order_id,
        event_type=event_type,
        aggregate_type=event_type.split(".")[0],
        aggregate_id=order_id,
        payload=payload,
        producer="payment-core",
        event_id=event_id,
    )


def refund_succeeded(order: Order, refund: str, minor: int, total_minor: int, **fields: Any) -> OutgoingEvent:
    """refund.succeeded for `refund`, a name made unique per order (refund ids are global)."""
    payload = RefundSucceeded(
        refund_id=f"{refund}_{order.order_id}",
        payment_id=fields.pop("payment_id", order.payment_id),
        order_id=order.order_id,
        merchant_id=order.merchant_id,
        amount=cny(minor),
        payment_refunded_total=cny(total_minor),
        succeeded_at=timestamp(now_utc()),
        **fields,
    )
    return event(REFUND_EVENTS, "refund.succeeded", order.order_id, payload)


def payment_succeeded(order: Order, payment_id: str, duplicate_reason: str = "") -> OutgoingEvent:
    payload = PaymentSucceeded(
        payment_id=payment_id,
        order_id=order.order_id,
        merchant_id=order.merchant_id,
        amount=cny(order.amount.minor),
        succeeded_at=timestamp(now_utc()),
        duplicate_reason=duplicate_reason,
        auto_refund_id="rfd_auto" if duplicate_reason else "",
    )
    return event(PAYMENT_EVENTS, "payment.succeeded", order.order_id, payload)


@pytest.fixture
def paid(make_order: Callable[..., Order]) -> Order:
    at = now_utc()
    return make_order(
        status=OrderStatus.PAID, pay_attempts=1, pay_method="qr", payment_id="pay_1", paid_at=at
    )


def refunded_events(published: Callable[[str], list[Envelope]], order_id: str) -> list[OrderRefunded]:
    return [unpack(e, OrderRefunded) for e in published(order_id) if e.event_type == "order.refunded"]


def test_refund_succeeded_delivered_twice_changes_the_order_once(
    paid: Order,
    deliver: Deliver,
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
) -> None:
    refund = refund_succeeded(paid, "rfd_1", 500, 500)
    deliver(refund)
    deliver(refund)
    after = get_order(paid.order_id)
    assert (after.status, after.refunded) == (OrderStatus.PARTIALLY_REFUNDED, Money(500, "CNY"))
    assert len(refunded_events(published, paid.order_id)) == 1


def test_the_same_refund_under_two_event_ids_is_counted_once(
    paid: Order, deliver: Deliver, get_order: Callable[[str], Order]
) -> None:
    deliver(refund_succeeded(paid, "rfd_1", 500, 500))
    deliver(refund_succeeded(paid, "rfd_1", 500, 500))  # republished with a fresh event id
    assert get_order(paid.order_id).refunded == Money(500, "CNY")


def test_partial_then_full_refund_publishes_order_refunded_each_time(
    paid: Order,
    deliver: Deliver,
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
) -> None:
    deliver(refund_succeeded(paid, "rfd_1", 500, 500))
    assert get_order(paid.order_id).status is OrderStatus.PARTIALLY_REFUNDED
    deliver(refund_succeeded(paid, "rfd_2", 1499, 1999))
    after = get_order(paid.order_id)
    assert (after.status, after.refunded) == (OrderStatus.REFUNDED, paid.amount)
    events = refunded_events(published, paid.order_id)
    assert [(e.refund_id, e.amount.minor, e.refunded_total.minor, e.status) for e in events] == [
        (f"rfd_1_{paid.order_id}", 500, 500, "PARTIALLY_REFUNDED"),
        (f"rfd_2_{paid.order_id}", 1499, 1999, "REFUNDED"),
    ]
    assert all(e.payment_id == "pay_1" for e in events)


def test_refund_of_another_payment_does_not_touch_the_order(
    paid: Order,
    deliver: Deliver,
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
) -> None:
    deliver(refund_succeeded(paid, "rfd_auto", 1999, 1999, payment_id="pay_dup", automatic=True))
    assert get_order(paid.order_id) == paid
    assert published(paid.order_id) == []


def test_refund_created_and_failed_do_not_move_the_order(
    paid: Order, deliver: Deliver, get_order: Callable[[str], Order]
) -> None:
    common = {"refund_id": "rfd_1", "payment_id": "pay_1", "order_id": paid.order_id, "amount": cny(500)}
    deliver(event(REFUND_EVENTS, "refund.created", paid.order_id, RefundCreated(**common)))
    deliver(event(REFUND_EVENTS, "refund.failed", paid.order_id, RefundFailed(**common, failure_code="X")))
    assert get_order(paid.order_id) == paid


def test_payment_flagged_duplicate_never_pays_a_paying_order(
    make_order: Callable[..., Order],
    deliver: Deliver,
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
) -> None:
    order = make_order(status=OrderStatus.PAYING, pay_attempts=1, pay_method="qr", payment_id="pay_1")
    deliver(payment_succeeded(order, "pay_1", duplicate_reason="order closed"))
    after = get_order(order.order_id)
    assert (after.status, after.duplicate_payment_ids) == (OrderStatus.PAYING, ("pay_1",))
    assert published(order.order_id) == []


def test_second_payment_on_a_paid_order_is_recorded_as_duplicate(
    paid: Order, deliver: Deliver, get_order: Callable[[str], Order]
) -> None:
    deliver(payment_succeeded(paid, "pay_2", duplicate_reason="order already paid"))
    after = get_order(paid.order_id)
    assert (after.status, after.payment_id, after.duplicate_payment_ids) == (
        OrderStatus.PAID,
        "pay_1",
        ("pay_2",),
    )


def test_payment_succeeded_marks_a_paying_order_paid(
    make_order: Callable[..., Order],
    deliver: Deliver,
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
) -> None:
    order = make_order(status=OrderStatus.PAYING, pay_attempts=1, pay_method="qr", payment_id="pay_1")
    deliver(payment_succeeded(order, "pay_1"))
    assert get_order(order.order_id).status is OrderStatus.PAID
    assert [e.event_type for e in published(order.order_id)] == ["order.paid"]
