"""PayOrder, CloseOrder and RefundOrder against real PostgreSQL, with payment-core's
answers chosen by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from order_service.adapters.payment_client import ClosureOutcome
from order_service.domain.order import Order, OrderStatus
from order_service.service_layer import services
from order_service.service_layer.services import UowFactory, now_utc
from paykit.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.money import Money

Make = Callable[..., Order]
Get = Callable[[str], Order]
Published = Callable[[str], list[Envelope]]


def close(uow_factory: UowFactory, payment_core: Any, order_id: str, reason: str = "") -> Order:
    return asyncio.run(services.close_order(uow_factory, payment_core, order_id, reason))


def refund(uow_factory: UowFactory, payment_core: Any, order_id: str, minor: int, **fields: Any) -> Any:
    command = services.RefundOrder(
        idempotency_key=fields.get("key", "r-1"),
        order_id=order_id,
        amount=Money(minor, fields.get("currency", "CNY")),
        reason=fields.get("reason", "returned"),
    )
    return asyncio.run(services.refund_order(uow_factory, payment_core, command))


def paying(**changes: Any) -> dict[str, Any]:
    return {
        "status": OrderStatus.PAYING,
        "pay_attempts": 1,
        "pay_method": "qr",
        "payment_id": "pay_1",
        **changes,
    }


def paid(**changes: Any) -> dict[str, Any]:
    return paying(**{"status": OrderStatus.PAID, "paid_at": now_utc(), **changes})


# --- PayOrder ---------------------------------------------------------------------------


def test_pay_order_sends_the_order_with_its_expiry_and_attaches_the_payment(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    order = make_order()
    paying_order, payment = asyncio.run(services.pay_order(uow_factory, payment_core, order.order_id, "qr"))
    [(sent, method)] = payment_core.calls_for("create_payment")
    assert (sent.expires_at, sent.payment_idempotency_key, method) == (
        order.expires_at,
        f"{order.order_id}/1",
        "qr",
    )
    assert (paying_order.status, paying_order.payment_id, paying_order.pay_method) == (
        OrderStatus.PAYING,
        payment.payment_id,
        "qr",
    )


def test_switching_method_while_paying_creates_a_new_payment_with_a_new_key(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    order = make_order()
    methods = frozenset({"qr", "card"})
    for method in ("qr", "qr", "card"):  # the second is a retry
        switched, payment = asyncio.run(
            services.pay_order(uow_factory, payment_core, order.order_id, method, methods)
        )
    keys = [sent.payment_idempotency_key for sent, _ in payment_core.calls_for("create_payment")]
    assert keys == [f"{order.order_id}/1", f"{order.order_id}/1", f"{order.order_id}/2"]
    assert (switched.pay_attempts, switched.pay_method, switched.payment_id) == (
        2,
        "card",
        payment.payment_id,
    )


def test_pay_order_refused_by_payment_core_because_it_closed_the_order_is_failed_precondition(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    order = make_order()
    payment_core.create_error = FailedPrecondition("payment refused: order is closed")
    with pytest.raises(FailedPrecondition, match="closed"):
        asyncio.run(services.pay_order(uow_factory, payment_core, order.order_id, "qr"))


# --- CloseOrder -------------------------------------------------------------------------


def test_close_a_created_order_at_once_with_the_default_reason(
    uow_factory: UowFactory, payment_core: Any, make_order: Make, published: Published
) -> None:
    order = make_order()
    closed = close(uow_factory, payment_core, order.order_id)
    assert (closed.status, closed.close_reason) == (OrderStatus.CLOSED, "cancelled")
    assert payment_core.calls == []
    assert [e.event_type for e in published(order.order_id)] == ["order.closed"]


def test_closing_twice_returns_the_closed_order_and_publishes_once(
    uow_factory: UowFactory, payment_core: Any, make_order: Make, published: Published
) -> None:
    order = make_order(**paying())
    first = close(uow_factory, payment_core, order.order_id, "buyer left")
    again = close(uow_factory, payment_core, order.order_id, "other reason")
    assert again == first
    assert again.close_reason == "buyer left"
    assert [e.event_type for e in published(order.order_id)] == ["order.closed"]


def test_close_a_paying_order_asks_payment_core_first(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    order = make_order(**paying())
    closed = close(uow_factory, payment_core, order.order_id, "buyer left")
    assert payment_core.calls_for("close_payment") == [(order.order_id, "buyer left", False)]
    assert (closed.status, closed.close_reason) == (OrderStatus.CLOSED, "buyer left")


def test_close_refused_when_payment_core_finds_the_order_paid(
    uow_factory: UowFactory, payment_core: Any, make_order: Make, get_order: Get
) -> None:
    order = make_order(**paying())
    payment_core.closure[order.order_id] = ClosureOutcome.PAID
    with pytest.raises(FailedPrecondition, match=f"order {order.order_id} was paid while closing"):
        close(uow_factory, payment_core, order.order_id)
    assert get_order(order.order_id) == order


@pytest.mark.parametrize(
    "answer",
    [ClosureOutcome.PENDING, Unavailable("payment service did not answer ClosePayment (UNAVAILABLE); retry")],
)
def test_close_unconfirmed_by_the_channel_is_unavailable_and_changes_nothing(
    uow_factory: UowFactory, payment_core: Any, make_order: Make, get_order: Get, answer: object
) -> None:
    order = make_order(**paying())
    payment_core.closure[order.order_id] = answer
    with pytest.raises(Unavailable, match="retry"):
        close(uow_factory, payment_core, order.order_id)
    assert get_order(order.order_id) == order


def test_close_a_paid_order_is_refused_without_asking_payment_core(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    order = make_order(**paid())
    with pytest.raises(FailedPrecondition, match="is paid; refund it instead"):
        close(uow_factory, payment_core, order.order_id)
    assert payment_core.calls == []


def test_close_an_unknown_order_is_not_found(uow_factory: UowFactory, payment_core: Any) -> None:
    with pytest.raises(NotFound, match="ord_unknown"):
        close(uow_factory, payment_core, "ord_unknown")


# --- RefundOrder ------------------------------------------------------------------------


def test_refund_asks_payment_core_with_a_key_scoped_by_the_order(
    uow_factory: UowFactory, payment_core: Any, make_order: Make, get_order: Get
) -> None:
    order = make_order(**paid())
    returned, refund_view = refund(uow_factory, payment_core, order.order_id, 500, key="m-42")
    assert payment_core.calls_for("refund_payment") == [
        (f"{order.order_id}:m-42", "pay_1", Money(500, "CNY"), "returned")
    ]
    assert (refund_view.refund_id, refund_view.status) == (f"rfd_{order.order_id}:m-42", "PENDING")
    # The order changes when refund.succeeded arrives, not before.
    assert returned == get_order(order.order_id) == order


def test_refund_in_another_currency_is_invalid_argument(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    order = make_order(**paid())
    with pytest.raises(InvalidArgument) as info:
        refund(uow_factory, payment_core, order.order_id, 500, currency="USD")
    assert info.value.field == "amount.currency"
    assert payment_core.calls == []


@pytest.mark.parametrize("status", [OrderStatus.CREATED, OrderStatus.PAYING, OrderStatus.CLOSED])
def test_refund_of_an_unpaid_order_is_failed_precondition(
    uow_factory: UowFactory, payment_core: Any, make_order: Make, status: OrderStatus
) -> None:
    order = make_order(status=status)
    expected = f"order {order.order_id} is {status.value}; only a paid order can be refunded"
    with pytest.raises(FailedPrecondition, match=expected):
        refund(uow_factory, payment_core, order.order_id, 500)
    assert payment_core.calls == []


def test_refund_above_the_order_amount_is_refused_here(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    order = make_order(**paid())
    with pytest.raises(FailedPrecondition, match=r"refundable: 19\.99 CNY"):
        refund(uow_factory, payment_core, order.order_id, 2000)
    assert payment_core.calls == []


def test_refund_above_what_is_left_is_refused_with_the_refundable_amount(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    order = make_order(**paid(status=OrderStatus.PARTIALLY_REFUNDED, refunded=Money(1500, "CNY")))
    payment_core.refund_error = FailedPrecondition("payment refused: refundable is 4.99 CNY")
    with pytest.raises(FailedPrecondition, match=r"exceeds the refundable 4\.99 CNY"):
        refund(uow_factory, payment_core, order.order_id, 500)


def test_retried_refund_after_it_succeeded_gets_payment_cores_first_answer(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    # The first RefundOrder with this key refunded everything; its answer was lost.
    order = make_order(**paid(status=OrderStatus.REFUNDED, refunded=Money(1999, "CNY")))
    _, refund_view = refund(uow_factory, payment_core, order.order_id, 1999, key="m-1")
    assert refund_view.refund_id == f"rfd_{order.order_id}:m-1"


def test_payment_core_invalid_argument_reaches_the_caller_as_is(
    uow_factory: UowFactory, payment_core: Any, make_order: Make
) -> None:
    order = make_order(**paid())
    payment_core.refund_error = InvalidArgument("amount", "below the channel's minimum refund")
    with pytest.raises(InvalidArgument) as info:
        refund(uow_factory, payment_core, order.order_id, 1)
    assert info.value.field == "amount"


def test_refund_of_an_unknown_order_is_not_found(uow_factory: UowFactory, payment_core: Any) -> None:
    with pytest.raises(NotFound):
        refund(uow_factory, payment_core, "ord_unknown", 100)
