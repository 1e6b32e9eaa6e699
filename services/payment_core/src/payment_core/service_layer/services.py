"""payment-core use cases."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from paykit.db import run_blocking
from paykit.errors import AlreadyExists, InvalidArgument, NotFound
from paykit.ids import IdKind, new_id
from paykit.money import Money

from payment_core.adapters import events
from payment_core.adapters.gateway_client import ChargeAnswer, ChargeOutcome
from payment_core.domain import payment as model
from payment_core.domain.payment import ChannelResult, Payment, PaymentStatus, ResultOutcome
from payment_core.domain.routing import choose_channel
from payment_core.service_layer.unit_of_work import PaymentTx, PaymentUnitOfWork

log = logging.getLogger(__name__)

UowFactory = Callable[[], PaymentUnitOfWork]
IDEMPOTENCY_KEY_MAX_CHARS = 128


class GatewayPort(Protocol):
    async def charge(self, payment: Payment) -> ChargeAnswer: ...


@dataclass(frozen=True)
class CreatePayment:
    idempotency_key: str
    order_id: str
    merchant_id: str
    amount: Money
    method: str
    subject: str


def now_utc() -> datetime:
    return datetime.now(UTC)


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


def _store_processing(uow_factory: UowFactory, command: CreatePayment, channel: str) -> tuple[Payment, bool]:
    """Store the payment PROCESSING (with its history and event) before any channel call.

    Returns the stored payment and whether it was created now (False: a
    repeat of the same idempotency key, answered with the first payment).
    """
    at = now_utc()
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
    )
    # The transition is applied before the insert, so one INSERT stores the
    # payment already PROCESSING; its history still records INIT -> PROCESSING.
    processing, change = model.start_processing(payment, at)
    with uow_factory() as uow:
        if not uow.payments.add_if_absent(processing):
            existing = uow.payments.get_by_idempotency_key(command.idempotency_key)
            if existing is None:
                raise NotFound(f"payment for key {command.idempotency_key} vanished")
            if not existing.same_request(
                command.order_id, command.merchant_id, command.amount, command.method
            ):
                raise AlreadyExists(
                    f"idempotency_key {command.idempotency_key!r} was used for payment "
                    f"{existing.payment_id} with a different request"
                )
            return existing, False
        uow.payments.record_change(change)
        uow.publish(events.payment_created(processing))
        uow.commit()
        return processing, True


def _record_charge_answer(uow_factory: UowFactory, payment_id: str, answer: ChargeAnswer) -> Payment:
    with uow_factory() as uow:
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
                updated, _ = _apply_result(uow, payment, result, notification_id="")
            case ChargeOutcome.DECLINED | ChargeOutcome.REJECTED:
                updated, change = model.fail(payment, answer.code or answer.outcome.value, answer.message, at)
                uow.payments.save(updated, change)
                uow.publish(events.payment_failed(updated, answer.message))
            case ChargeOutcome.NO_ANSWER:
                # Never FAILED on silence: the channel may have the money.
                if payment.status is PaymentStatus.PROCESSING:
                    updated, change = model.mark_unknown(
                        payment, f"no answer from channel: {answer.code}", at
                    )
                    uow.payments.save(updated, change)
        uow.commit()
        return updated


async def create_payment(
    uow_factory: UowFactory, gateway: GatewayPort, routes: Mapping[str, str], command: CreatePayment
) -> Payment:
    _validate(command)
    channel = choose_channel(command.method, command.amount, routes)
    payment, created = await run_blocking(_store_processing, uow_factory, command, channel)
    if not created:
        return payment
    answer = await gateway.charge(payment)
    return await run_blocking(_record_charge_answer, uow_factory, payment.payment_id, answer)


def get_payment(uow_factory: UowFactory, payment_id: str) -> Payment:
    with uow_factory() as uow:
        payment = uow.payments.get(payment_id)
    if payment is None:
        raise NotFound(f"payment {payment_id} not found")
    return payment


# -- channel results (notifications now; queries in the lifecycle work) -----


def _apply_result(
    uow: PaymentTx, payment: Payment, result: ChannelResult, notification_id: str
) -> tuple[Payment, ResultOutcome]:
    """Apply and persist a channel's word; returns the payment as it now stands and what happened."""
    updated, change, outcome = model.apply_channel_result(payment, result, now_utc())
    match outcome:
        case ResultOutcome.SUCCEEDED:
            uow.payments.save(updated, change)
            uow.publish(events.payment_succeeded(updated))
        case ResultOutcome.FAILED:
            uow.payments.save(updated, change)
            uow.publish(events.payment_failed(updated, "channel reported failure"))
        case ResultOutcome.FLAGGED_AMOUNT_MISMATCH | ResultOutcome.FLAGGED_SUCCESS_AFTER_FAILURE:
            detail = (
                f"channel reported {result.amount} (succeeded={result.succeeded}); "
                f"payment is {payment.amount}"
            )
            log.warning(
                "channel result flagged",
                extra={"payment_id": payment.payment_id, "reason": outcome.value},
            )
            uow.payments.flag(payment.payment_id, outcome.value, detail, notification_id or None)
            uow.publish(events.payment_flagged(payment, outcome.value, result.amount, notification_id))
        case ResultOutcome.NO_CHANGE:
            pass
    return updated, outcome


def apply_notification(
    uow: PaymentTx, payment_id: str, result: ChannelResult, notification_id: str
) -> ResultOutcome:
    payment = uow.payments.get(payment_id, for_update=True)
    if payment is None:
        raise NotFound(f"notification {notification_id} names unknown payment {payment_id}")
    _, outcome = _apply_result(uow, payment, result, notification_id)
    return outcome
