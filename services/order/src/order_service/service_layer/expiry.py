"""Closing expired orders: the expiry scheduler's tick.

Every state it works from lives in the orders table (expires_at,
next_close_at, close_attempts), so a restart or a second replica loses and
repeats nothing: a tick claims a batch under SKIP LOCKED row locks, closes at
once what payment-core cannot hold a payment for, and defers the rest by a
lease while payment-core closes their payments outside any transaction.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import assert_never

from paykit.db import run_blocking
from paykit.errors import DomainError, FailedPrecondition

from order_service.adapters.payment_client import CLOSE_PAYMENT_DEADLINE_S, ClosureOutcome
from order_service.domain import order as model
from order_service.domain.order import Order
from order_service.service_layer import services
from order_service.service_layer.services import PaymentPort, UowFactory

log = logging.getLogger(__name__)

EXPIRED_REASON = "expired"
EXPIRY_BATCH_SIZE = 100
# ClosePayment calls in flight at once per tick: bounded so an expiry wave
# does not flood payment-core (and the channels behind it).
CLOSE_CONCURRENCY = 10
# A claimed order is deferred this long while payment-core is asked, so other
# scans skip it; twice the worst case of one batch, so it never lapses while
# its tick still runs. After a crash the order is retried once it lapses.
CLOSE_LEASE_S = 2 * math.ceil(EXPIRY_BATCH_SIZE / CLOSE_CONCURRENCY) * CLOSE_PAYMENT_DEADLINE_S

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ExpiryPolicy:
    # Delay before asking payment-core again, per failed attempt; the last repeats.
    retry_schedule_s: tuple[float, ...]
    # After this many unconfirmed closes, ask payment-core to close regardless
    # (a payment landing later is refunded automatically there); 0 never does.
    force_after_attempts: int


async def close_expired_orders(
    uow_factory: UowFactory, payments: PaymentPort, policy: ExpiryPolicy, clock: Clock = services.now_utc
) -> int:
    """One tick: returns how many orders it handled (0 lets the scheduler sleep)."""
    to_ask, closed_count = await run_blocking(_claim_due, uow_factory, clock())
    if to_ask:
        await _close_at_payment_core(uow_factory, payments, policy, clock, to_ask)
    return closed_count + len(to_ask)


def _claim_due(uow_factory: UowFactory, now: datetime) -> tuple[list[Order], int]:
    """Close the due orders that need nobody else; lease the others. One transaction."""
    lease_until = now + timedelta(seconds=CLOSE_LEASE_S)
    to_ask: list[Order] = []
    closed_count = 0
    with uow_factory() as uow:
        for order in uow.orders.lock_due_for_close(now, EXPIRY_BATCH_SIZE):
            if model.needs_payment_close(order):
                leased = model.defer_close(order, lease_until)
                uow.orders.save(leased)
                to_ask.append(leased)
            else:
                services.close_locked_order(uow, order, EXPIRED_REASON, now)
                closed_count += 1
        uow.commit()
    return to_ask, closed_count


async def _close_at_payment_core(
    uow_factory: UowFactory,
    payments: PaymentPort,
    policy: ExpiryPolicy,
    clock: Clock,
    orders: Sequence[Order],
) -> None:
    slots = asyncio.Semaphore(CLOSE_CONCURRENCY)

    async def close_one(order: Order) -> None:
        async with slots:
            await _close_expired(uow_factory, payments, policy, clock, order)

    results = await asyncio.gather(*(close_one(order) for order in orders), return_exceptions=True)
    for order, result in zip(orders, results, strict=True):
        if isinstance(result, Exception):
            # Its lease lapses and a later tick tries again; the others went on.
            log.error("closing an expired order failed", extra={"order_id": order.order_id}, exc_info=result)


async def _close_expired(
    uow_factory: UowFactory, payments: PaymentPort, policy: ExpiryPolicy, clock: Clock, order: Order
) -> None:
    force = 0 < policy.force_after_attempts <= order.close_attempts
    try:
        outcome = (await payments.close_payment(order.order_id, EXPIRED_REASON, force=force)).outcome
    except DomainError as exc:
        # An outage, or a refusal nothing here can fix at once: ask again later.
        log.warning("payment-core did not close", extra={"order_id": order.order_id, "error": exc.message})
        outcome = ClosureOutcome.PENDING
    match outcome:
        case ClosureOutcome.CLOSED:
            await _close_confirmed(uow_factory, order.order_id)
        case ClosureOutcome.PAID | ClosureOutcome.PENDING:
            # PAID: payment.succeeded will mark the order paid, which ends the
            # retries; they continue only while that event has not arrived.
            await run_blocking(
                services.change_locked,
                uow_factory,
                order.order_id,
                lambda locked: model.postpone_close(locked, clock(), policy.retry_schedule_s),
            )
        case _ as unreachable:
            assert_never(unreachable)


async def _close_confirmed(uow_factory: UowFactory, order_id: str) -> None:
    try:
        await run_blocking(services.close_after_payments_closed, uow_factory, order_id, EXPIRED_REASON)
    except FailedPrecondition as exc:
        # Paid between the claim and now: the payment wins, the order stays paid.
        log.info("expired order was paid before it closed", extra={"order_id": order_id, "why": exc.message})
