"""Posting against real PostgreSQL: replays, concurrent postings for one merchant,
refusals that leave nothing behind, and the consumer's handler for events it must refuse."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from accounting.domain import accounts as chart
from accounting.domain.fees import FeeSchedule
from accounting.domain.posting_rules import Captured, Refunded
from accounting.entrypoints.consumers import handler
from accounting.service_layer.ledger import Policy, post_capture, post_refund, release_payment
from accounting.service_layer.posting import PostingRefused
from accounting.service_layer.settlement import Settlements
from accounting.service_layer.unit_of_work import UowFactory
from paykit.errors import FailedPrecondition
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.money import Money, Rounding
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from services.accounting.tests.integration.support import (
    ScriptedPayouts,
    assert_ledger_sound,
    balance_of,
    fee_minor,
    footprint,
    payment_succeeded,
    refund_succeeded,
)

FEES = FeeSchedule(merchant_bps=60, channel_bps=38, rounding=Rounding.HALF_UP)
POLICY = Policy(FEES, timedelta(days=1))
THREADS = 8
CAPTURES_PER_THREAD = 12
# Each thread refunds this much of one payment all threads share, once per capture of its own.
SHARED_REFUND_MINOR = 97
WAIT_S = 120


def now() -> datetime:
    return datetime.now(UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def capture(
    uow_factory: UowFactory, merchant: str, payment: str, minor: int, channel: str = "simulator"
) -> Captured:
    fact = Captured(f"evt_{payment}", payment, merchant, channel, Money(minor, "CNY"), now())
    with uow_factory() as uow:
        assert post_capture(uow, fact, POLICY) is not None
        uow.commit()
    return fact


def refund_of(fact: Captured, minor: int, refund_id: str | None = None) -> Refunded:
    refund_id = refund_id or unique("rfd")
    return Refunded(
        f"evt_{refund_id}",
        refund_id,
        fact.payment_id,
        fact.merchant_id,
        fact.channel,
        Money(minor, fact.amount.currency),
        now(),
    )


def post(uow_factory: UowFactory, fact: Captured | Refunded) -> bool:
    with uow_factory() as uow:
        if isinstance(fact, Captured):
            posted = post_capture(uow, fact, POLICY)
        else:
            posted = post_refund(uow, fact, POLICY)
        uow.commit()
    return posted is not None


def test_posting_the_same_events_again_changes_nothing(
    uow_factory: UowFactory, ledger_engine: Engine
) -> None:
    merchant = unique("m-replay")
    paid = capture(uow_factory, merchant, unique("pay"), 10_000)
    refund = refund_of(paid, 2_500)
    assert post(uow_factory, refund)
    before = footprint(ledger_engine)

    for fact in (paid, refund):
        assert not post(uow_factory, fact)
        # Republished under a fresh event id: the payment or refund id still says it is posted.
        assert not post(uow_factory, replace(fact, event_id=unique("evt")))

    assert footprint(ledger_engine) == before
    assert_ledger_sound(ledger_engine)


def test_a_refund_beyond_what_is_left_of_its_payment_is_refused_though_the_merchant_could_pay(
    uow_factory: UowFactory, ledger_engine: Engine
) -> None:
    merchant = unique("m-over")
    small = capture(uow_factory, merchant, unique("pay"), 10_000)
    big = capture(uow_factory, merchant, unique("pay"), 1_000_000)
    with uow_factory() as uow:
        release_payment(uow, big.payment_id, now())
        uow.commit()
    assert post(uow_factory, refund_of(small, 6_000))
    before = footprint(ledger_engine)

    with pytest.raises(FailedPrecondition, match="exceeds what is left to refund"):
        post(uow_factory, refund_of(small, 4_001))

    assert footprint(ledger_engine) == before
    assert post(uow_factory, refund_of(small, 4_000))


@dataclass(frozen=True)
class ThreadPlan:
    captures: list[Captured]
    own_refunds: list[Refunded]
    shared_refunds: list[Refunded]


def test_eight_threads_posting_for_one_merchant_leave_exact_balances(
    uow_factory: UowFactory, ledger_engine: Engine
) -> None:
    merchant, channel = unique("m-busy"), unique("chan")
    fee_account = chart.fee_revenue("CNY").account_id
    with ledger_engine.connect() as conn:
        fees_before = balance_of(conn, fee_account)
    shared = capture(
        uow_factory, merchant, unique("pay"), THREADS * CAPTURES_PER_THREAD * SHARED_REFUND_MINOR
    )
    plans = []
    for t in range(THREADS):
        captures = [
            Captured(f"evt_{p}", p, merchant, channel, Money(5_000 + 137 * t + 11 * k, "CNY"), now())
            for k in range(CAPTURES_PER_THREAD)
            for p in [f"pay_{merchant}_{t}_{k}"]
        ]
        plans.append(
            ThreadPlan(
                captures,
                [refund_of(c, c.amount.minor // (k + 2)) for k, c in enumerate(captures)],
                [refund_of(shared, SHARED_REFUND_MINOR) for _ in captures],
            )
        )
    start = threading.Barrier(THREADS, timeout=WAIT_S)

    def work(plan: ThreadPlan) -> None:
        start.wait()
        for paid, own, of_shared in zip(plan.captures, plan.own_refunds, plan.shared_refunds, strict=True):
            assert post(uow_factory, paid)
            assert post(uow_factory, own)
            assert post(uow_factory, of_shared)

    with ThreadPoolExecutor(THREADS) as pool:
        for done in [pool.submit(work, plan) for plan in plans]:
            done.result(timeout=WAIT_S)  # a deadlock would surface here as an error or a timeout

    # The model: every refund of an own capture is its first, so it returns the fee on
    # its amount; the shared payment is refunded whole, so it nets to nothing.
    fee = lambda minor: fee_minor(minor, FEES.merchant_bps, FEES.rounding)  # noqa: E731
    own = [
        (c.amount.minor, r.amount.minor)
        for p in plans
        for c, r in zip(p.captures, p.own_refunds, strict=True)
    ]
    pending = sum(gross - fee(gross) - (refunded - fee(refunded)) for gross, refunded in own)
    fees_earned = sum(fee(gross) - fee(refunded) for gross, refunded in own)
    with ledger_engine.connect() as conn:
        assert balance_of(conn, chart.merchant_pending(merchant, "CNY").account_id) == pending
        assert balance_of(conn, chart.merchant_available(merchant, "CNY").account_id) == 0
        assert balance_of(conn, fee_account) - fees_before == fees_earned
        stored = conn.execute(
            text("SELECT refunded_minor, unreleased_minor FROM captures WHERE payment_id = :p"),
            {"p": shared.payment_id},
        ).one()
    assert (stored.refunded_minor, stored.unreleased_minor) == (shared.amount.minor, 0)
    assert_ledger_sound(ledger_engine)


def test_concurrent_refunds_of_one_payment_never_add_up_to_more_than_it(
    uow_factory: UowFactory, ledger_engine: Engine
) -> None:
    paid = capture(uow_factory, unique("m-race"), unique("pay"), 10_000)
    start = threading.Barrier(THREADS, timeout=WAIT_S)

    def refund_most() -> bool:
        start.wait()
        try:
            return post(uow_factory, refund_of(paid, 6_000))
        except FailedPrecondition:
            return False

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = [f.result(timeout=WAIT_S) for f in [pool.submit(refund_most) for _ in range(THREADS)]]

    assert outcomes.count(True) == 1
    assert_ledger_sound(ledger_engine)


@pytest.fixture
def drained(uow_factory: UowFactory) -> Captured:
    """A merchant whose payment was released, settled and paid out: nothing left to take."""
    merchant = unique("m-drained")
    paid = capture(uow_factory, merchant, unique("pay"), 10_000)
    with uow_factory() as uow:
        release_payment(uow, paid.payment_id, now())
        uow.commit()
    settlements = Settlements(uow_factory, ScriptedPayouts(), "simulator")
    settled = asyncio.run(settlements.run(unique("stl"), merchant, "CNY"))
    assert settled.status.value == "PAID_OUT"
    return paid


def test_a_refund_that_would_drive_the_merchant_negative_is_refused_and_leaves_nothing(
    uow_factory: UowFactory, ledger_engine: Engine, drained: Captured
) -> None:
    before = footprint(ledger_engine)

    with pytest.raises(PostingRefused, match="must not go negative"):
        post(uow_factory, refund_of(drained, 1_000))

    assert footprint(ledger_engine) == before


# --- the consumer's handler -----------------------------------------------------------------


@pytest.fixture
def deliver(sessions: sessionmaker[Session]) -> Callable[[Envelope], None]:
    """Hand an envelope to the handler inside a transaction, as ConsumerLoop does."""
    handle = handler(POLICY)

    def run(envelope: Envelope) -> None:
        with sessions() as session, session.begin():
            handle(session, envelope)

    return run


def failure_reason(engine: Engine, event_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT reason FROM posting_failures WHERE event_id = :e"), {"e": event_id}
        ).scalar_one_or_none()


def test_a_refund_read_before_its_capture_waits_and_is_posted_with_the_capture(
    ledger_engine: Engine, deliver: Callable[[Envelope], None]
) -> None:
    # payment.events and refund.events are separate topics: the refund may come first.
    payment, refund_id = unique("pay-late"), unique("rfd")
    refund = refund_succeeded(refund_id, payment, "m-1", "simulator", Money(500, "CNY"), now())
    before = footprint(ledger_engine)

    deliver(refund)
    waiting = footprint(ledger_engine)
    assert waiting == before  # no entry, line, balance, event or failure: it waits
    with ledger_engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM deferred_refunds WHERE payment_id = :p"), {"p": payment}
            ).scalar_one()
            == 1
        )

    deliver(payment_succeeded(payment, "m-1", "simulator", Money(10_000, "CNY"), now()))
    after = footprint(ledger_engine)
    assert after.entries == before.entries + 2 and after.failures == before.failures
    with ledger_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM deferred_refunds")).scalar_one() == 0
        kinds = (
            conn.execute(
                text("SELECT kind FROM journal_entries WHERE reference IN (:p, :r) ORDER BY created_at"),
                {"p": payment, "r": refund_id},
            )
            .scalars()
            .all()
        )
    assert sorted(kinds) == ["capture", "refund"]
    assert failure_reason(ledger_engine, refund.event_id) is None


def test_a_refund_the_merchant_cannot_cover_is_recorded_as_a_failure_not_dead_lettered(
    ledger_engine: Engine, deliver: Callable[[Envelope], None], drained: Captured
) -> None:
    envelope = refund_succeeded(
        unique("rfd"), drained.payment_id, drained.merchant_id, drained.channel, Money(1_000, "CNY"), now()
    )
    before = footprint(ledger_engine)

    deliver(envelope)  # raising here would roll the consumer's batch back and dead-letter the event

    after = footprint(ledger_engine)
    assert replace(after, failures=before.failures) == before
    assert "must not go negative" in (failure_reason(ledger_engine, envelope.event_id) or "")


def test_events_delivered_by_the_handler_post_once_whatever_their_event_ids(
    ledger_engine: Engine, deliver: Callable[[Envelope], None]
) -> None:
    merchant, payment, refund_id = unique("m-events"), unique("pay"), unique("rfd")
    paid = payment_succeeded(payment, merchant, "simulator", Money(8_800, "CNY"), now())
    refunded = refund_succeeded(refund_id, payment, merchant, "simulator", Money(800, "CNY"), now())
    deliver(paid)
    deliver(refunded)
    before = footprint(ledger_engine)

    deliver(paid)
    deliver(refunded)
    deliver(payment_succeeded(payment, merchant, "simulator", Money(8_800, "CNY"), now()))
    deliver(refund_succeeded(refund_id, payment, merchant, "simulator", Money(800, "CNY"), now()))

    assert footprint(ledger_engine) == before
    with ledger_engine.connect() as conn:
        pending = balance_of(conn, chart.merchant_pending(merchant, "CNY").account_id)
    fee = lambda minor: fee_minor(minor, FEES.merchant_bps, FEES.rounding)  # noqa: E731
    assert pending == (8_800 - fee(8_800)) - (800 - fee(800))
