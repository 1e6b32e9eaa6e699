"""Closing payments and orders: query once more, then close at the channel, so no late payment lands.

A payment is closed only when the channel confirms (or it never reached the
channel and the channel now refuses it): silence keeps it open and queried.
An order is closed at payment-core in two steps: CLOSING refuses new
payments while its open payments are closed; CLOSED is written only when all
are closed (or the caller forces it), under the same lock that decides
whether a success is a duplicate, so a late success is either seen as paying
the order or refunded, never both and never neither.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from paykit.db import run_blocking
from paykit.errors import FailedPrecondition, InvalidArgument, NotFound

from payment_core.adapters import events
from payment_core.adapters.gateway_client import CloseOutcome, QueryOutcome
from payment_core.adapters.metrics import count_outcome_on_commit
from payment_core.domain import payment as model
from payment_core.domain.payment import CLOSED_CODE, Payment, PaymentStatus
from payment_core.service_layer.context import PaymentCore, UowFactory, now_utc
from payment_core.service_layer.payments import CLOSED, CLOSING, apply_channel_result

log = logging.getLogger(__name__)


class Closure(enum.Enum):
    CLOSED = "CLOSED"
    PAID = "PAID"
    PENDING = "PENDING"


@dataclass(frozen=True)
class ClosureResult:
    outcome: Closure
    payments: list[Payment]
    message: str


def fail_closed(uow_factory: UowFactory, payment_id: str, code: str, reason: str) -> Payment:
    with uow_factory() as uow:
        payment = uow.payments.get(payment_id, for_update=True)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        if payment.status not in model.OPEN_STATES:
            return payment  # settled meanwhile; the caller looks at the status
        failed, change = model.fail(payment, code, reason, now_utc())
        uow.payments.save(failed, change)
        uow.publish(events.payment_failed(failed, reason))
        count_outcome_on_commit(uow.session, failed)
        uow.commit()
        return failed


def _load(uow_factory: UowFactory, payment_id: str) -> Payment:
    with uow_factory() as uow:
        payment = uow.payments.get(payment_id)
    if payment is None:
        raise NotFound(f"payment {payment_id} not found")
    return payment


def _outcome_of(payment: Payment) -> Closure:
    if payment.status in model.CAPTURED_STATES:
        return Closure.PAID
    if payment.status is PaymentStatus.FAILED:
        return Closure.CLOSED
    return Closure.PENDING


async def close_open_payment(core: PaymentCore, payment: Payment, reason: str) -> tuple[Closure, Payment]:
    """Query once more, then close at the channel. Never fails a payment on silence."""
    if payment.status not in model.OPEN_STATES:
        return _outcome_of(payment), payment
    answer = await core.gateway.query(payment)
    match answer.outcome:
        case QueryOutcome.SUCCEEDED if answer.result is not None:
            updated = await run_blocking(
                apply_channel_result, core.uow_factory, payment.payment_id, answer.result
            )
            return _outcome_of(updated), updated
        case QueryOutcome.NOT_PAYABLE:
            updated = await run_blocking(
                fail_closed,
                core.uow_factory,
                payment.payment_id,
                CLOSED_CODE,
                f"channel reports it can no longer be paid ({answer.detail}): {reason}",
            )
            return _outcome_of(updated), updated
        case _:
            pass
    closed, detail = await core.gateway.close(payment)
    match closed:
        case CloseOutcome.CLOSED:
            updated = await run_blocking(
                fail_closed,
                core.uow_factory,
                payment.payment_id,
                CLOSED_CODE,
                f"closed at {payment.channel}: {reason}",
            )
            return _outcome_of(updated), updated
        case CloseOutcome.ALREADY_PAID:
            # The payer was faster than the close: record the success the channel holds.
            again = await core.gateway.query(payment)
            if again.outcome is QueryOutcome.SUCCEEDED and again.result is not None:
                updated = await run_blocking(
                    apply_channel_result, core.uow_factory, payment.payment_id, again.result
                )
                return _outcome_of(updated), updated
            return Closure.PENDING, payment
        case CloseOutcome.NO_ANSWER:
            log.info("close not confirmed", extra={"payment_id": payment.payment_id, "detail": detail})
            return Closure.PENDING, payment


async def close_payment(core: PaymentCore, payment_id: str, reason: str) -> ClosureResult:
    payment = await run_blocking(_load, core.uow_factory, payment_id)
    if payment.status in model.CAPTURED_STATES:
        raise FailedPrecondition(
            f"payment {payment_id} is {payment.status.value}: it was paid; refund it instead of closing"
        )
    outcome, updated = await close_open_payment(core, payment, reason)
    if outcome is Closure.PAID:
        return ClosureResult(outcome, [updated], f"payment {payment_id} was paid before it could be closed")
    message = "closed" if outcome is Closure.CLOSED else "the channel did not confirm the close; ask again"
    return ClosureResult(outcome, [updated], message)


def _begin_order_close(
    uow_factory: UowFactory, order_id: str, reason: str
) -> tuple[str | None, list[Payment]]:
    with uow_factory() as uow:
        state = uow.payments.lock_order_and_read_closure(order_id)
        if state != CLOSED:
            uow.payments.set_closure(order_id, CLOSING, reason)
        payments = uow.payments.list_by_order(order_id)
        uow.commit()
    return state, payments


def _finish_order_close(uow_factory: UowFactory, order_id: str, reason: str) -> str | None:
    """Write CLOSED unless a payment paid the order meanwhile (then lift the closure and name it)."""
    with uow_factory() as uow:
        paid_by, _ = uow.payments.lock_order_and_read_paid_by(order_id, payment_id="")
        if paid_by is not None:
            uow.payments.clear_closure(order_id)
        else:
            uow.payments.set_closure(order_id, CLOSED, reason)
        uow.commit()
        return paid_by


async def close_order(core: PaymentCore, order_id: str, reason: str, force: bool) -> ClosureResult:
    if not order_id:
        raise InvalidArgument("order_id", "is required")
    state, payments = await run_blocking(_begin_order_close, core.uow_factory, order_id, reason)
    if state == CLOSED:
        return ClosureResult(Closure.CLOSED, payments, "order already closed")
    results: list[Payment] = []
    pending: list[str] = []
    for payment in payments:
        outcome, updated = await close_open_payment(core, payment, reason)
        results.append(updated)
        if outcome is Closure.PENDING:
            pending.append(payment.payment_id)
    if pending and not force:
        return ClosureResult(
            Closure.PENDING, results, f"channel did not confirm the close of {', '.join(pending)}; ask again"
        )
    paid_by = await run_blocking(_finish_order_close, core.uow_factory, order_id, reason)
    if paid_by is not None:
        return ClosureResult(Closure.PAID, results, f"order {order_id} was paid by {paid_by}")
    message = "closed"
    if pending:
        message = f"closed by force; {', '.join(pending)} stay queried and are refunded if they get paid"
    return ClosureResult(Closure.CLOSED, results, message)
