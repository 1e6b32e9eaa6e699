"""Order-loss prevention: open payments and refunds are asked about on a persisted schedule.

A payment PROCESSING or UNKNOWN whose next query is due is queried at its
channel; the answer moves it, and no answer only moves the next query on
(capped backoff). Past its deadline it is closed at the channel instead
(after one more query), so no late payment lands. Refunds not yet accepted
are submitted again; accepted ones are queried in case the notification is
lost. Everything due is claimed with a lease in the database, so two
replicas never ask twice at once and a killed process resumes after restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from paykit.db import run_blocking
from paykit.telemetry import extract_context, tracer

from payment_core.adapters.gateway_client import QueryOutcome
from payment_core.domain import payment as model
from payment_core.domain.payment import CLOSED_CODE, Payment
from payment_core.domain.refund import Refund, RefundStatus
from payment_core.domain.schedule import delay_for
from payment_core.service_layer import refunds
from payment_core.service_layer.closing import Closure, close_open_payment, fail_closed
from payment_core.service_layer.context import PaymentCore, now_utc
from payment_core.service_layer.payments import PaymentView, apply_channel_result, get_payment

log = logging.getLogger(__name__)

T = TypeVar("T")
_tracer = tracer("payment_core.order_loss")
BATCH = 50
# Channel calls in flight at once per tick: enough to drain a backlog, not to flood a channel.
CONCURRENCY = 16


Traced = tuple[T, dict[str, str]]


def _claim_payments(core: PaymentCore) -> list[Traced[Payment]]:
    with core.uow_factory() as uow:
        claimed = uow.payments.claim_due(now_utc(), BATCH, core.lifecycle.lease)
        uow.commit()
        return claimed


def _claim_refunds(core: PaymentCore) -> list[Traced[Refund]]:
    with core.uow_factory() as uow:
        claimed = uow.refunds.claim_due(now_utc(), BATCH, core.lifecycle.lease)
        uow.commit()
        return claimed


def next_query_at(payment: Payment, now: datetime, schedule: Sequence[float]) -> datetime:
    """The next step of the backoff, but not past the deadline: expiry must close promptly."""
    step = now + delay_for(payment.query_attempts, schedule)
    if payment.expires_at is not None and now < payment.expires_at < step:
        return payment.expires_at
    return step


def _reschedule(core: PaymentCore, payment_id: str, why: str) -> None:
    with core.uow_factory() as uow:
        payment = uow.payments.get(payment_id, for_update=True)
        if payment is None or payment.status not in model.OPEN_STATES:
            return
        now = now_utc()
        later = replace(
            payment,
            query_attempts=payment.query_attempts + 1,
            next_query_at=next_query_at(payment, now, core.lifecycle.query_schedule),
        )
        uow.payments.save(later)
        uow.commit()
    log.info("payment still open: %s", why, extra={"payment_id": payment_id})


async def resolve_payment(core: PaymentCore, payment: Payment) -> None:
    if payment.expires_at is not None and now_utc() >= payment.expires_at:
        outcome, _ = await close_open_payment(core, payment, "expired")
        if outcome is Closure.PENDING:
            await run_blocking(_reschedule, core, payment.payment_id, "expired, close not confirmed")
        return
    answer = await core.gateway.query(payment)
    match answer.outcome:
        case QueryOutcome.SUCCEEDED if answer.result is not None:
            await run_blocking(apply_channel_result, core.uow_factory, payment.payment_id, answer.result)
        case QueryOutcome.NOT_PAYABLE:
            await run_blocking(
                fail_closed,
                core.uow_factory,
                payment.payment_id,
                CLOSED_CODE,
                f"channel reports it can no longer be paid ({answer.detail})",
            )
        case _:
            await run_blocking(
                _reschedule, core, payment.payment_id, f"query said {answer.outcome.value} {answer.detail}"
            )


async def sync_payment(core: PaymentCore, payment_id: str) -> PaymentView:
    """Order-loss prevention for one payment, now rather than on its schedule (reconciliation
    found it on the channel's statement): an open payment gets the scheduler's query-and-apply
    (resolve_payment), so a success lands with the usual rules, a duplicate refund included.
    A payment no longer open is returned as it stands."""
    view = await run_blocking(get_payment, core.uow_factory, payment_id)
    if view.payment.status in model.OPEN_STATES:
        await resolve_payment(core, view.payment)
        view = await run_blocking(get_payment, core.uow_factory, payment_id)
    return view


async def resolve_refund(core: PaymentCore, refund: Refund) -> None:
    if refund.status is RefundStatus.PENDING:
        await refunds.submit(core, refund)
    else:
        await refunds.query(core, refund)


async def _each(items: Sequence[Traced[T]], what: str, work: Callable[[T], Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(traced: Traced[T]) -> None:
        item, carrier = traced
        async with gate:
            try:
                # In the trace of the request that created the payment or refund, so
                # one trace shows a payment from CreateOrder to its late resolution.
                with _tracer.start_as_current_span(what, context=extract_context(carrier)):
                    await work(item)
            except Exception:
                # One bad item must not stop the batch; its lease ends and it is tried again.
                log.exception("order-loss work failed", extra={"item": repr(item)[:200]})

    await asyncio.gather(*(one(item) for item in items))


async def tick(core: PaymentCore) -> int:
    """One pass: everything due now. Returns how many items were handled (0: idle)."""
    payments = await run_blocking(_claim_payments, core)
    refund_batch = await run_blocking(_claim_refunds, core)
    await _each(payments, "order-loss payment check", lambda p: resolve_payment(core, p))
    await _each(refund_batch, "order-loss refund check", lambda r: resolve_refund(core, r))
    return len(payments) + len(refund_batch)
