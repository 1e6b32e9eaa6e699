"""Order use cases. Each runs in one unit of work; PayOrder, CloseOrder and
RefundOrder call payment-core between their units of work, never inside one,
so no row lock is held across a network call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, assert_never

from paykit.db import run_blocking
from paykit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    InvariantViolation,
    NotFound,
    Unavailable,
)
from paykit.ids import IdKind, new_id
from paykit.money import Money

from order_service.adapters import events
from order_service.adapters.payment_client import ClosureOutcome, ClosureResult, PaymentView, RefundView
from order_service.domain import order as model
from order_service.domain.order import Order, OrderStatus
from order_service.domain.validation import (
    DEFAULT_PAYMENT_METHODS,
    validate_close,
    validate_create,
    validate_method,
    validate_order_id,
    validate_refund,
)
from order_service.service_layer.unit_of_work import OrderTx, OrderUnitOfWork

log = logging.getLogger(__name__)

UowFactory = Callable[[], OrderUnitOfWork]


class PaymentPort(Protocol):
    """What the order service asks of payment-core."""

    async def create_payment(self, order: Order, method: str) -> PaymentView: ...

    async def close_payment(self, order_id: str, reason: str, *, force: bool = False) -> ClosureResult: ...

    async def refund_payment(
        self, idempotency_key: str, payment_id: str, amount: Money, reason: str
    ) -> RefundView: ...


@dataclass(frozen=True)
class CreateOrder:
    merchant_id: str
    merchant_order_no: str
    amount: Money
    subject: str
    expires_in_s: int


@dataclass(frozen=True)
class RefundOrder:
    idempotency_key: str
    order_id: str
    amount: Money
    reason: str


def now_utc() -> datetime:
    return datetime.now(UTC)


def create_order(uow_factory: UowFactory, command: CreateOrder) -> Order:
    expires_in_s = validate_create(
        command.merchant_id, command.merchant_order_no, command.subject, command.expires_in_s
    )
    created_at = now_utc()
    order = Order(
        order_id=new_id(IdKind.ORDER),
        merchant_id=command.merchant_id,
        merchant_order_no=command.merchant_order_no,
        amount=command.amount,
        subject=command.subject,
        status=OrderStatus.CREATED,
        created_at=created_at,
        expires_at=created_at + timedelta(seconds=expires_in_s),
        refunded=Money.zero(command.amount.currency),
    )
    with uow_factory() as uow:
        if uow.orders.add_if_absent(order):
            uow.publish(events.order_created(order))
            uow.commit()
            return order
        existing = uow.orders.get_by_merchant_order_no(command.merchant_id, command.merchant_order_no)
    if existing is None:  # deleted between the conflict and the read: cannot happen, orders are never deleted
        raise NotFound(f"order {command.merchant_order_no} vanished")
    if not existing.same_request(command.amount, command.subject):
        raise AlreadyExists(
            f"merchant_order_no {command.merchant_order_no!r} already used by order {existing.order_id} "
            f"with amount {existing.amount} and subject {existing.subject!r}"
        )
    return existing


def get_order(uow_factory: UowFactory, order_id: str) -> Order:
    with uow_factory() as uow:
        order = uow.orders.get(order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def _locked(uow: OrderTx, order_id: str) -> Order:
    order = uow.orders.get(order_id, for_update=True)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def change_locked(uow_factory: UowFactory, order_id: str, change: Callable[[Order], Order]) -> Order:
    """Apply `change` to the order under its row lock; commit only if it changed anything."""
    with uow_factory() as uow:
        order = _locked(uow, order_id)
        changed = change(order)
        if changed != order:
            uow.orders.save(changed)
            uow.commit()
        return changed


# -- PayOrder -------------------------------------------------------------------------


async def pay_order(
    uow_factory: UowFactory,
    payments: PaymentPort,
    order_id: str,
    method: str,
    methods: frozenset[str] = DEFAULT_PAYMENT_METHODS,
) -> tuple[Order, PaymentView]:
    """CREATED -> PAYING is committed before payment-core is called, so a crash
    in between leaves a PAYING order whose retry reuses the same idempotency key.

    payment-core refuses a payment for an order it has closed (CloseOrder or
    expiry ran first) with FAILED_PRECONDITION, which reaches the caller as is.
    """
    validate_order_id(order_id)
    validate_method(method, methods)
    paying = await run_blocking(
        change_locked, uow_factory, order_id, lambda order: model.start_paying(order, method, now_utc())
    )
    payment = await payments.create_payment(paying, method)
    order = await run_blocking(
        change_locked,
        uow_factory,
        order_id,
        lambda order: model.attach_payment(order, payment.payment_id, paying.pay_attempts),
    )
    return order, payment


# -- CloseOrder -----------------------------------------------------------------------


async def close_order(uow_factory: UowFactory, payments: PaymentPort, order_id: str, reason: str) -> Order:
    """Close an unpaid order. One that payment-core may hold a payment for is
    closed there first (its payments queried once more, then closed at the
    channel), and only then here, so no payment can land on a closed order."""
    reason = validate_close(order_id, reason)
    closed = await run_blocking(close_unless_payments_open, uow_factory, order_id, reason)
    if closed is not None:
        return closed
    result = await payments.close_payment(order_id, reason)
    match result.outcome:
        case ClosureOutcome.CLOSED:
            return await run_blocking(close_after_payments_closed, uow_factory, order_id, reason)
        case ClosureOutcome.PAID:
            # payment.succeeded is on its way and will mark the order paid.
            raise FailedPrecondition(f"order {order_id} was paid while closing")
        case ClosureOutcome.PENDING:
            raise Unavailable(f"order {order_id}: channel did not confirm the close; retry")
        case _ as unreachable:
            assert_never(unreachable)


def close_unless_payments_open(uow_factory: UowFactory, order_id: str, reason: str) -> Order | None:
    """Close the order at once if payment-core cannot hold a payment of it; None when it may."""
    with uow_factory() as uow:
        order = _locked(uow, order_id)
        if model.needs_payment_close(order):
            return None
        closed = close_locked_order(uow, order, reason, now_utc())
        uow.commit()
        return closed


def close_after_payments_closed(uow_factory: UowFactory, order_id: str, reason: str) -> Order:
    """payment-core confirmed no payment of the order can succeed any more: close it here.

    Re-checked under the row lock: a payment.succeeded applied since makes
    this a FailedPrecondition, never a closed paid order.
    """
    with uow_factory() as uow:
        closed = close_locked_order(uow, _locked(uow, order_id), reason, now_utc())
        uow.commit()
        return closed


def close_locked_order(uow: OrderTx, order: Order, reason: str, at: datetime) -> Order:
    """The close transition with its order.closed event, on an order the caller locked."""
    closed = model.close(order, reason, at)
    if closed != order:
        uow.orders.save(closed)
        uow.publish(events.order_closed(closed))
    return closed


# -- RefundOrder ----------------------------------------------------------------------


async def refund_order(
    uow_factory: UowFactory, payments: PaymentPort, command: RefundOrder
) -> tuple[Order, RefundView]:
    """Ask payment-core to refund part or all of the order's payment.

    The order changes only when refund.succeeded arrives. Our refundable
    amount counts succeeded refunds only, so it is never below payment-core's,
    whose check under its row lock (pending refunds included) is the real
    guard against concurrent refunds.
    """
    validate_refund(command.idempotency_key, command.order_id, command.amount, command.reason)
    order = await run_blocking(get_order, uow_factory, command.order_id)
    if command.amount.currency != order.amount.currency:
        raise InvalidArgument("amount.currency", f"must be {order.amount.currency}, the order's currency")
    check = model.check_refund(order, command.amount)
    # Asked even when above what is left by our count: a retried RefundOrder
    # whose refund already succeeded must get that refund back (same key, same
    # request), and anything new is refused there, its refundable being no more
    # than ours (it also counts the refunds still in flight).
    try:
        refund = await payments.refund_payment(
            # Scoped by order: the same merchant key on two orders is two refunds.
            f"{order.order_id}:{command.idempotency_key}",
            _paid_by(order),
            command.amount,
            command.reason,
        )
    except FailedPrecondition as exc:
        if check is model.RefundCheck.ABOVE_REFUNDABLE:
            raise FailedPrecondition(
                f"refund of {command.amount} exceeds the refundable {order.refundable} "
                f"of order {order.order_id} ({exc.message})"
            ) from exc
        raise
    return order, refund


def _paid_by(order: Order) -> str:
    if order.payment_id is None:
        # mark_paid records the payment on every order it marks paid: a bug if missing.
        raise InvariantViolation(f"order {order.order_id} is {order.status.value} but has no payment")
    return order.payment_id


# -- consumed events (run inside the consumer loop's transaction) ------------


def apply_payment_succeeded(
    uow: OrderTx, order_id: str, payment_id: str, succeeded_at: datetime, duplicate_reason: str = ""
) -> None:
    order = _locked(uow, order_id)
    paid, outcome = model.mark_paid(order, payment_id, succeeded_at, duplicate_reason)
    match outcome:
        case model.PaidOutcome.MARKED_PAID:
            uow.orders.save(paid)
            uow.publish(events.order_paid(paid))
        case model.PaidOutcome.ALREADY_PAID:
            pass
        case model.PaidOutcome.DUPLICATE_PAYMENT:
            _log_duplicate(order, payment_id, duplicate_reason)
            uow.orders.record_duplicate_payment(order_id, payment_id)


def _log_duplicate(order: Order, payment_id: str, duplicate_reason: str) -> None:
    extra = {"order_id": order.order_id, "payment_id": payment_id, "order_status": order.status.value}
    if duplicate_reason:
        log.warning("duplicate payment; payment-core refunds it", extra={**extra, "reason": duplicate_reason})
    else:
        # payment-core did not see it as a duplicate, so nothing refunds it by itself.
        log.error("duplicate payment not flagged by payment-core; needs a refund", extra=extra)


def apply_payment_failed(uow: OrderTx, order_id: str, payment_id: str) -> None:
    order = _locked(uow, order_id)
    reopened = model.payment_failed(order, payment_id)
    if reopened != order:
        uow.orders.save(reopened)


@dataclass(frozen=True)
class SucceededRefund:
    refund_id: str
    order_id: str
    payment_id: str
    amount: Money
    # All succeeded refunds of the payment, this one included (payment-core's count).
    payment_refunded_total: Money
    succeeded_at: datetime


def apply_refund_succeeded(uow: OrderTx, refund: SucceededRefund) -> None:
    order = _locked(uow, refund.order_id)
    if not model.counts_as_order_refund(order, refund.payment_id):
        log.info(
            "refund of a payment that did not pay the order; order unchanged",
            extra={
                "order_id": order.order_id,
                "refund_id": refund.refund_id,
                "payment_id": refund.payment_id,
            },
        )
        return
    # The refund id, not only the event id, decides: a refund reported twice
    # under two event ids is still counted once.
    if not uow.orders.record_refund(
        order.order_id, refund.refund_id, refund.payment_id, refund.amount, refund.succeeded_at
    ):
        return
    refunded, _ = model.apply_refund(order, refund.payment_id, refund.amount)
    uow.orders.save(refunded)
    uow.publish(events.order_refunded(refunded, refund.refund_id, refund.amount, refund.succeeded_at))
    if refunded.refunded != refund.payment_refunded_total:
        log.warning(
            "order's refunded total differs from payment-core's",
            extra={
                "order_id": order.order_id,
                "order_refunded": str(refunded.refunded),
                "payment_refunded_total": str(refund.payment_refunded_total),
            },
        )
