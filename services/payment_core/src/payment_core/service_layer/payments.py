"""Payments: create (route, store PROCESSING, charge, fail over), read, and apply the channel's word."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from paykit.db import run_blocking
from paykit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from paykit.ids import IdKind, new_id
from paykit.money import Money

from payment_core.adapters import events
from payment_core.adapters.gateway_client import ChargeAnswer, ChargeOutcome
from payment_core.adapters.metrics import count_outcome_on_commit
from payment_core.domain import payment as model
from payment_core.domain.payment import (
    FLAGGED_OUTCOMES,
    ChannelResult,
    Payment,
    PaymentStatus,
    ResultOutcome,
    StateChange,
)
from payment_core.domain.refund import DUPLICATE_PAYMENT_REASON, Refund, RefundStatus
from payment_core.domain.routing import choose_channels, draw
from payment_core.domain.schedule import delay_for
from payment_core.service_layer.context import PaymentCore, UowFactory, now_utc
from payment_core.service_layer.unit_of_work import PaymentTx

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_MAX_CHARS = 128
# Order closure states (order_closures.state).
CLOSING = "CLOSING"
CLOSED = "CLOSED"


@dataclass(frozen=True)
class CreatePayment:
    idempotency_key: str
    order_id: str
    merchant_id: str
    amount: Money
    method: str
    subject: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PaymentView:
    payment: Payment
    history: list[StateChange]


def _validate(command: CreatePayment) -> None:
    if not command.idempotency_key or len(command.idempotency_key) > IDEMPOTENCY_KEY_MAX_CHARS:
        raise InvalidArgument(
            "idempotency_key", f"is required, at most {IDEMPOTENCY_KEY_MAX_CHARS} characters"
        )
    if not command.order_id:
        raise InvalidArgument("order_id", "is required")
    if not command.merchant_id:
        raise InvalidArgument("merchant_id", "is required")
    if not command.amount.is_positive:
        raise InvalidArgument("amount.minor", f"must be positive, got {command.amount.minor}")


def _existing_for_key(uow: PaymentTx, command: CreatePayment) -> Payment | None:
    existing = uow.payments.get_by_idempotency_key(command.idempotency_key)
    if existing is not None and not existing.same_request(
        command.order_id, command.merchant_id, command.amount, command.method
    ):
        raise AlreadyExists(
            f"idempotency_key {command.idempotency_key!r} was used for payment "
            f"{existing.payment_id} with a different request"
        )
    return existing


def _store_processing(core: PaymentCore, command: CreatePayment, channel: str) -> tuple[Payment, bool]:
    """Store the payment PROCESSING (with its history and event) before any channel call.

    Returns the stored payment and whether it was created now (False: a
    repeat of the same idempotency key, answered with the first payment).
    """
    at = now_utc()
    lifecycle = core.lifecycle
    payment = Payment(
        payment_id=new_id(IdKind.PAYMENT),
        idempotency_key=command.idempotency_key,
        order_id=command.order_id,
        merchant_id=command.merchant_id,
        amount=command.amount,
        method=command.method,
        channel=channel,
        subject=command.subject,
        status=PaymentStatus.INIT,
        created_at=at,
        expires_at=command.expires_at or at + lifecycle.default_expiry,
        # Order-loss prevention starts now: if no answer or notification settles
        # the payment by then, the channel is asked.
        next_query_at=at + delay_for(0, lifecycle.query_schedule),
    )
    # The transition is applied before the insert, so one INSERT stores the
    # payment already PROCESSING; its history still records INIT -> PROCESSING.
    processing, change = model.start_processing(payment, at)
    with core.uow_factory() as uow:
        if uow.payments.lock_order_and_read_closure(command.order_id) is not None:
            existing = _existing_for_key(uow, command)
            if existing is not None:
                return existing, False
            raise FailedPrecondition(
                f"order {command.order_id} was closed at payment-core; it takes no new payment"
            )
        if not uow.payments.add_if_absent(processing):
            existing = _existing_for_key(uow, command)
            if existing is None:
                raise NotFound(f"payment for key {command.idempotency_key} vanished")
            return existing, False
        uow.payments.record_change(change)
        uow.publish(events.payment_created(processing))
        uow.commit()
        return processing, True


def _fail_over(uow_factory: UowFactory, payment_id: str, to_channel: str, answer: ChargeAnswer) -> Payment:
    with uow_factory() as uow:
        payment = uow.payments.get(payment_id, for_update=True)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        reason = (
            f"{answer.outcome.value.lower()} at {payment.channel} ({answer.code or 'no code'}"
            f"{': ' + answer.message if answer.message else ''}); failing over to {to_channel}"
        )
        moved, change = model.fail_over(payment, to_channel, reason, now_utc())
        uow.payments.save(moved, change)
        uow.commit()
        return moved


def _record_charge_answer(core: PaymentCore, payment_id: str, answer: ChargeAnswer) -> Payment:
    with core.uow_factory() as uow:
        payment = uow.payments.get(payment_id, for_update=True)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        if payment.status not in model.OPEN_STATES:
            return payment  # a notification already settled it while we waited
        at = now_utc()
        updated = payment
        match answer.outcome:
            case ChargeOutcome.PENDING:
                updated = model.record_channel_acceptance(payment, answer.channel_trade_no, answer.pay_url)
                uow.payments.save(updated)
            case ChargeOutcome.SUCCEEDED:
                result = ChannelResult(True, payment.amount, answer.channel_trade_no, at)
                updated, _ = apply_result(uow, payment, result, notification_id="")
            case ChargeOutcome.DECLINED | ChargeOutcome.REJECTED:
                reason = f"{answer.outcome.value.lower()} at {payment.channel}: {answer.message}".strip()
                updated, change = model.fail(payment, answer.code or answer.outcome.value, reason, at)
                uow.payments.save(updated, change)
                uow.publish(events.payment_failed(updated, answer.message))
                count_outcome_on_commit(uow.session, updated)
            case ChargeOutcome.NO_ANSWER:
                # Never FAILED on silence: the channel may have the money. Ask it soon.
                if payment.status is PaymentStatus.PROCESSING:
                    updated, change = model.mark_unknown(
                        payment, f"no answer from channel {payment.channel}: {answer.code}", at
                    )
                    updated = replace(updated, next_query_at=at + delay_for(0, core.lifecycle.query_schedule))
                    uow.payments.save(updated, change)
                    count_outcome_on_commit(uow.session, updated)
        uow.commit()
        return updated


async def create_payment(core: PaymentCore, command: CreatePayment) -> Payment:
    _validate(command)
    await core.health.refresh_if_stale()
    # Drawn from the idempotency key: a retried request routes the same way.
    channels = choose_channels(
        core.rules, command.method, command.amount, core.health.is_healthy, draw(command.idempotency_key)
    )
    payment, created = await run_blocking(_store_processing, core, command, channels[0])
    if not created:
        if payment.status is PaymentStatus.PROCESSING and not payment.channel_trade_no:
            # Stored, but the charge never got an answer (the process died in between,
            # or the first call is still running): charge again. The gateway and the
            # channel are idempotent on the payment id, so this cannot take money twice.
            channels = [payment.channel]
        else:
            return payment
    for position, channel in enumerate(channels):
        answer = await core.gateway.charge(payment)
        await core.health.record_charge(channel, answer)
        refused = answer.outcome in (ChargeOutcome.DECLINED, ChargeOutcome.REJECTED)
        if refused and position + 1 < len(channels):
            # Safe only because the channel is known not to have taken money;
            # after a timeout (NO_ANSWER) we never try elsewhere.
            payment = await run_blocking(
                _fail_over, core.uow_factory, payment.payment_id, channels[position + 1], answer
            )
            continue
        return await run_blocking(_record_charge_answer, core, payment.payment_id, answer)
    raise AssertionError("unreachable: the last channel's answer is always recorded")


def get_payment(uow_factory: UowFactory, payment_id: str) -> PaymentView:
    with uow_factory() as uow:
        payment = uow.payments.get(payment_id)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        return PaymentView(payment, uow.payments.history(payment_id))


def list_payments(uow_factory: UowFactory, order_id: str) -> list[PaymentView]:
    with uow_factory() as uow:
        return [
            PaymentView(p, uow.payments.history(p.payment_id)) for p in uow.payments.list_by_order(order_id)
        ]


# -- the channel's word: answers, notifications, queries -----------------------


def _duplicate_reason(uow: PaymentTx, payment: Payment) -> str | None:
    """Why this success must be given back, if it must: the order was paid or closed already."""
    paid_by, closure = uow.payments.lock_order_and_read_paid_by(payment.order_id, payment.payment_id)
    if paid_by is not None:
        return f"ORDER_ALREADY_PAID by {paid_by}"
    if closure == CLOSED:
        return "ORDER_CLOSED"
    return None


def _duplicate_refund(payment: Payment, at: datetime) -> Refund:
    """An automatic refund of the whole amount; the refund worker submits it."""
    return Refund(
        refund_id=new_id(IdKind.REFUND),
        idempotency_key=f"auto:{payment.payment_id}",
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        merchant_id=payment.merchant_id,
        amount=payment.amount,
        reason=f"{DUPLICATE_PAYMENT_REASON}: {payment.duplicate_reason}",
        channel=payment.channel,
        status=RefundStatus.PENDING,
        created_at=at,
        automatic=True,
        next_attempt_at=at,
    )


def apply_result(
    uow: PaymentTx, payment: Payment, result: ChannelResult, notification_id: str
) -> tuple[Payment, ResultOutcome]:
    """Apply and persist a channel's word; returns the payment as it now stands and what happened."""
    at = now_utc()
    updated, change, outcome = model.apply_channel_result(payment, result, at)
    match outcome:
        case ResultOutcome.SUCCEEDED:
            duplicate = _duplicate_reason(uow, updated)
            refund = None
            if duplicate is not None:
                log.warning(
                    "duplicate payment, refunding",
                    extra={
                        "payment_id": payment.payment_id,
                        "order_id": payment.order_id,
                        "reason": duplicate,
                    },
                )
                refund = _duplicate_refund(replace(updated, duplicate_reason=duplicate), at)
                # The whole amount is reserved at once, so no merchant refund can race it.
                updated = model.reserve_refund(
                    model.mark_duplicate(updated, duplicate, refund.refund_id), updated.amount
                )
            uow.payments.save(updated, change)
            uow.publish(events.payment_succeeded(updated))
            if refund is not None:
                uow.refunds.add_if_absent(refund)
                uow.publish(events.refund_created(refund))
        case ResultOutcome.FAILED:
            uow.payments.save(updated, change)
            uow.publish(events.payment_failed(updated, "channel reported failure"))
        case _ if outcome in FLAGGED_OUTCOMES:
            detail = (
                f"channel {result.channel or payment.channel} reported {result.amount} "
                f"(succeeded={result.succeeded}); payment is {payment.amount} at {payment.channel}, "
                f"{payment.status.value}"
            )
            log.warning(
                "channel result flagged",
                extra={"payment_id": payment.payment_id, "reason": outcome.value},
            )
            uow.payments.flag(payment.payment_id, outcome.value, detail, notification_id or None)
            uow.publish(events.payment_flagged(payment, outcome.value, result.amount, notification_id))
        case _:
            pass
    if updated.status is not payment.status:
        count_outcome_on_commit(uow.session, updated)
    return updated, outcome


def apply_notification(
    uow: PaymentTx, payment_id: str, result: ChannelResult, notification_id: str
) -> ResultOutcome:
    payment = uow.payments.get(payment_id, for_update=True)
    if payment is None:
        raise NotFound(f"notification {notification_id} names unknown payment {payment_id}")
    _, outcome = apply_result(uow, payment, result, notification_id)
    return outcome


def apply_channel_result(uow_factory: UowFactory, payment_id: str, result: ChannelResult) -> Payment:
    """A query's answer, in its own transaction."""
    with uow_factory() as uow:
        payment = uow.payments.get(payment_id, for_update=True)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        updated, _ = apply_result(uow, payment, result, notification_id="")
        uow.commit()
        return updated
