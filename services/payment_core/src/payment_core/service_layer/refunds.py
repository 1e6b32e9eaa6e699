"""Refunds: accept (reserve under the payment's row lock), submit to the channel, apply its word."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from paykit.db import run_blocking
from paykit.errors import AlreadyExists, InvalidArgument, NotFound
from paykit.ids import IdKind, new_id
from paykit.money import Money

from payment_core.adapters import events
from payment_core.domain import payment as payment_model
from payment_core.domain import refund as model
from payment_core.domain.refund import Refund, RefundChange, RefundOutcome, RefundResult, RefundStatus
from payment_core.domain.schedule import delay_for
from payment_core.service_layer.context import PaymentCore, UowFactory, now_utc
from payment_core.service_layer.payments import IDEMPOTENCY_KEY_MAX_CHARS
from payment_core.service_layer.unit_of_work import PaymentTx

log = logging.getLogger(__name__)

REASON_MAX_CHARS = 256
DEFAULT_QUERY_AFTER = timedelta(seconds=2)


@dataclass(frozen=True)
class RequestRefund:
    idempotency_key: str
    payment_id: str
    amount: Money
    reason: str


@dataclass(frozen=True)
class RefundView:
    refund: Refund
    history: list[RefundChange]


def _validate(command: RequestRefund) -> None:
    if not command.idempotency_key or len(command.idempotency_key) > IDEMPOTENCY_KEY_MAX_CHARS:
        raise InvalidArgument(
            "idempotency_key", f"is required, at most {IDEMPOTENCY_KEY_MAX_CHARS} characters"
        )
    if not command.payment_id:
        raise InvalidArgument("payment_id", "is required")
    if not command.amount.is_positive:
        raise InvalidArgument("amount.minor", f"must be positive, got {command.amount.minor}")
    if len(command.reason) > REASON_MAX_CHARS:
        raise InvalidArgument("reason", f"at most {REASON_MAX_CHARS} characters")


def _existing(uow: PaymentTx, command: RequestRefund) -> Refund | None:
    existing = uow.refunds.get_by_idempotency_key(command.idempotency_key)
    if existing is not None and not existing.same_request(command.payment_id, command.amount):
        raise AlreadyExists(
            f"idempotency_key {command.idempotency_key!r} was used for refund {existing.refund_id} "
            f"of {existing.amount} on payment {existing.payment_id}"
        )
    return existing


def _accept(core: PaymentCore, command: RequestRefund) -> tuple[Refund, bool]:
    """Store the refund PENDING with its amount reserved, or return the first one for this key.

    The payment's row lock serialises concurrent refunds of one payment: each
    sees the others' reservations, so together they never exceed the capture.
    """
    at = now_utc()
    with core.uow_factory() as uow:
        existing = _existing(uow, command)
        if existing is not None:
            return existing, False
        payment = uow.payments.get(command.payment_id, for_update=True)
        if payment is None:
            raise NotFound(f"payment {command.payment_id} not found")
        reserved = payment_model.reserve_refund(payment, command.amount)
        refund = Refund(
            refund_id=new_id(IdKind.REFUND),
            idempotency_key=command.idempotency_key,
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            merchant_id=payment.merchant_id,
            amount=command.amount,
            reason=command.reason,
            channel=payment.channel,
            status=RefundStatus.PENDING,
            created_at=at,
            # Submitted right after this commit; the worker takes over only if that never finishes.
            next_attempt_at=at + core.lifecycle.lease,
        )
        if not uow.refunds.add_if_absent(refund):
            uow.rollback()
            with core.uow_factory() as again:
                first = _existing(again, command)
            if first is None:
                raise NotFound(f"refund for key {command.idempotency_key} vanished")
            return first, False
        uow.payments.save(reserved)
        uow.publish(events.refund_created(refund))
        uow.commit()
        return refund, True


async def request_refund(core: PaymentCore, command: RequestRefund) -> Refund:
    _validate(command)
    refund, created = await run_blocking(_accept, core, command)
    if not created or refund.status is not RefundStatus.PENDING:
        return refund
    return await submit(core, refund)


async def submit(core: PaymentCore, refund: Refund) -> Refund:
    """Ask the channel to refund; the channel is idempotent on the refund id."""
    payment = await run_blocking(_payment_of, core.uow_factory, refund.payment_id)
    result = await core.gateway.refund(refund, payment)
    if result is None:
        return await run_blocking(_reschedule, core, refund.refund_id, "submit")
    return await run_blocking(apply_in_tx, core, refund.refund_id, result)


async def query(core: PaymentCore, refund: Refund) -> Refund:
    result = await core.gateway.query_refund(refund)
    if result is None:
        return await run_blocking(_reschedule, core, refund.refund_id, "query")
    if result.answer is model.RefundAnswer.NOT_FOUND and refund.status is RefundStatus.PENDING:
        return await submit(core, refund)  # the submit never reached the channel: send it again
    return await run_blocking(apply_in_tx, core, refund.refund_id, result)


def _payment_of(uow_factory: UowFactory, payment_id: str) -> payment_model.Payment:
    with uow_factory() as uow:
        payment = uow.payments.get(payment_id)
    if payment is None:
        raise NotFound(f"payment {payment_id} not found")
    return payment


def _reschedule(core: PaymentCore, refund_id: str, what: str) -> Refund:
    with core.uow_factory() as uow:
        refund = uow.refunds.get(refund_id, for_update=True)
        if refund is None:
            raise NotFound(f"refund {refund_id} not found")
        if refund.status not in model.OPEN_STATES:
            return refund
        at = now_utc()
        later = replace(
            refund,
            attempts=refund.attempts + 1,
            next_attempt_at=at + delay_for(refund.attempts, core.lifecycle.refund_retry_schedule),
        )
        log.info("refund %s got no answer; trying again", what, extra={"refund_id": refund_id})
        uow.refunds.save(later)
        uow.commit()
        return later


def apply_in_tx(core: PaymentCore, refund_id: str, result: RefundResult) -> Refund:
    with core.uow_factory() as uow:
        query_after = delay_for(0, core.lifecycle.refund_retry_schedule)
        refund = apply_result(uow, refund_id, result, notification_id="", query_after=query_after)
        uow.commit()
        return refund


def apply_result(
    uow: PaymentTx,
    refund_id: str,
    result: RefundResult,
    notification_id: str,
    query_after: timedelta = DEFAULT_QUERY_AFTER,
) -> Refund:
    """Apply the channel's word about a refund; payment row first, then refund row (one lock order)."""
    peek = uow.refunds.get(refund_id)
    if peek is None:
        raise NotFound(f"refund {refund_id} not found")
    payment = uow.payments.get(peek.payment_id, for_update=True)
    refund = uow.refunds.get(refund_id, for_update=True)
    if payment is None or refund is None:
        raise NotFound(f"refund {refund_id} or its payment {peek.payment_id} not found")
    at = now_utc()
    updated, changes, outcome = model.apply_refund_result(refund, result, at)
    match outcome:
        case RefundOutcome.SUCCEEDED:
            refunded, payment_change = payment_model.record_refund(payment, refund.amount, refund_id, at)
            uow.payments.save(refunded, payment_change)
            uow.refunds.save(updated, changes)
            uow.publish(events.refund_succeeded(updated, refunded.refunded))
        case RefundOutcome.FAILED:
            uow.payments.save(payment_model.release_refund(payment, refund.amount))
            uow.refunds.save(updated, changes)
            uow.publish(events.refund_failed(updated))
        case RefundOutcome.ACCEPTED:
            # Accepted: the outcome comes by notification; query in case it is lost.
            uow.refunds.save(replace(updated, next_attempt_at=at + query_after), changes)
        case RefundOutcome.FLAGGED_AMOUNT_MISMATCH:
            detail = f"channel reported refund {refund_id} of {result.amount}; refund is {refund.amount}"
            log.warning("refund result flagged", extra={"refund_id": refund_id})
            uow.payments.flag(payment.payment_id, outcome.value, detail, notification_id or None)
        case RefundOutcome.NO_CHANGE:
            pass
    return updated


def get_refund(uow_factory: UowFactory, refund_id: str) -> RefundView:
    with uow_factory() as uow:
        refund = uow.refunds.get(refund_id)
        if refund is None:
            raise NotFound(f"refund {refund_id} not found")
        return RefundView(refund, uow.refunds.history(refund_id))


def list_refunds(uow_factory: UowFactory, *, payment_id: str = "", order_id: str = "") -> list[RefundView]:
    with uow_factory() as uow:
        found = uow.refunds.list_by(payment_id=payment_id, order_id=order_id)
        return [RefundView(r, uow.refunds.history(r.refund_id)) for r in found]
