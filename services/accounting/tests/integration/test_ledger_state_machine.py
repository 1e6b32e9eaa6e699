"""Random sequences of everything the ledger does, against real PostgreSQL, checked after
every step against a model the test keeps itself.

Steps: captures (several merchants, two channels, CNY and USD, some duplicates),
refunds (some beyond what is left of the payment, which must be refused), replays
of posted events (under their own event id and under a fresh one), releases one by
one and all due at once, operator adjustments to suspense and their reversals, and
settlements through a stand-in for channel-gateway answering PAID, FAILED or
nothing, asked again by key or by the retry worker.

After every step, in SQL: the trial balance is zero per currency, every balance is
the sum of its lines, no must-not-go-negative account is negative, the entry count
is what the model expects (refused steps leave nothing), and each merchant's
pending, available, in transit and paid out are the model's, adding up to the net
it captured less what refunds took from it plus its adjustments.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from accounting.adapters.gateway_client import PayoutOutcome
from accounting.domain import accounts as chart
from accounting.domain.accounts import Side
from accounting.domain.fees import FeeSchedule, RefundFee
from accounting.domain.posting_rules import Captured, Refunded
from accounting.domain.settlement import SettlementStatus
from accounting.service_layer import adjustments
from accounting.service_layer.adjustments import RequestedLine
from accounting.service_layer.ledger import Policy, post_capture, post_refund, release_due, release_payment
from accounting.service_layer.posting import PostingRefused
from accounting.service_layer.settlement import Settlements
from accounting.service_layer.unit_of_work import UowFactory
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from paykit.errors import AlreadyExists, FailedPrecondition
from paykit.money import Money, Rounding
from sqlalchemy import Engine, text

from services.accounting.tests.integration.support import (
    ScriptedPayouts,
    entry_count,
    fee_minor,
    footprint,
    ledger_problems,
)

CURRENCIES = ("CNY", "USD")
CHANNELS = ("simulator", "simulator_b")
MERCHANTS_PER_RUN = 3
RELEASE_AFTER = timedelta(days=1)
RETRY_CLOCK_STEP = timedelta(hours=1)
MAX_CAPTURE_MINOR = 10**7
PAYOUT_CHANNEL = "simulator"

# Passing takes seconds; a failing run shrinks against the database and can take minutes,
# so the default 300 s would cut it off before it reports the smallest failing sequence.
pytestmark = pytest.mark.timeout(900)


@dataclass
class Buckets:
    """A merchant's money in one currency, as the model expects it."""

    pending: int = 0
    available: int = 0
    in_transit: int = 0
    paid_out: int = 0
    # Kept apart from the buckets: net captured - what refunds took + adjustments.
    owed: int = 0


@dataclass
class ModelCapture:
    fact: Captured
    net: int
    unreleased: int
    refunded: int = 0


@dataclass
class ModelAdjustment:
    key: str
    entry_id: str
    merchant: str | None
    currency: str
    to_merchant: int  # what it added to the merchant's available (negative: took)
    reversed_by: str = ""


@dataclass
class OpenSettlement:
    merchant: str
    currency: str
    amount: int


def test_random_postings_keep_the_ledger_balanced_and_every_merchant_whole(
    uow_factory: UowFactory, ledger_engine: Engine
) -> None:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.run = secrets.token_hex(4)
            self.merchants = [f"m{i}-{self.run}" for i in range(MERCHANTS_PER_RUN)]
            self.now = datetime.now(UTC)
            self.counter = 0
            self.fees = FeeSchedule()
            self.policy = Policy(self.fees, RELEASE_AFTER)
            self.captures: dict[str, ModelCapture] = {}
            self.refunds: list[Refunded] = []
            self.buckets: dict[tuple[str, str], Buckets] = defaultdict(Buckets)
            self.adjustments: list[ModelAdjustment] = []
            self.open_settlements: dict[str, OpenSettlement] = {}
            with ledger_engine.connect() as conn:
                self.entries = entry_count(conn)

        def next_id(self, prefix: str) -> str:
            self.counter += 1
            return f"{prefix}_{self.run}_{self.counter}"

        def merchant_bps(self, merchant: str) -> int:
            return self.fees.terms(merchant).merchant_bps

        # -- fees: drawn once per run, then a capture for every merchant ------------------
        @initialize(
            merchant_bps=st.sampled_from([0, 60, 250, 10_000]) | st.integers(0, 10_000),
            channel_bps=st.sampled_from([0, 38]) | st.integers(0, 10_000),
            rounding=st.sampled_from(Rounding),
            special_bps=st.integers(0, 10_000),
            special_keeps_fee=st.booleans(),
            opening=st.lists(
                st.tuples(
                    st.sampled_from(CHANNELS),
                    st.sampled_from(CURRENCIES),
                    st.integers(1, MAX_CAPTURE_MINOR) | st.integers(1, 300),
                ),
                min_size=MERCHANTS_PER_RUN,
                max_size=MERCHANTS_PER_RUN,
            ),
        )
        def open_the_books(
            self,
            merchant_bps: int,
            channel_bps: int,
            rounding: Rounding,
            special_bps: int,
            special_keeps_fee: bool,
            opening: list[tuple[str, str, int]],
        ) -> None:
            special = {"merchant_bps": special_bps, "refund_fee": "keep" if special_keeps_fee else "return"}
            self.fees = FeeSchedule(
                merchant_bps=merchant_bps,
                channel_bps=channel_bps,
                rounding=rounding,
                refund_fee=RefundFee.RETURN,
                merchants={self.merchants[1]: special},
                channels={"simulator_b": {"channel_bps": 0}},
            )
            self.policy = Policy(self.fees, RELEASE_AFTER)
            for merchant, (channel, currency, amount) in enumerate(opening):
                self.capture(merchant, channel, currency, amount, duplicate=False)

        # -- captures and refunds ------------------------------------------------------
        @rule(
            merchant=st.integers(0, MERCHANTS_PER_RUN - 1),
            channel=st.sampled_from(CHANNELS),
            currency=st.sampled_from(CURRENCIES),
            amount=st.integers(1, MAX_CAPTURE_MINOR) | st.integers(1, 300),
            duplicate=st.booleans(),
        )
        def capture(self, merchant: int, channel: str, currency: str, amount: int, duplicate: bool) -> None:
            payment = self.next_id("pay")
            owner = self.merchants[merchant]
            fact = Captured(
                f"evt_{payment}", payment, owner, channel, Money(amount, currency), self.now, duplicate
            )
            with uow_factory() as uow:
                entry = post_capture(uow, fact, self.policy)
                uow.commit()
            assert entry is not None
            net = 0 if duplicate else amount - fee_minor(amount, self.merchant_bps(owner), self.fees.rounding)
            self.captures[payment] = ModelCapture(fact, net, net)
            self.buckets[owner, currency].pending += net
            self.buckets[owner, currency].owed += net
            self.entries += 1

        def fee_returned(self, c: ModelCapture, amount: int) -> int:
            merchant = c.fact.merchant_id
            if self.fees.terms(merchant).refund_fee is RefundFee.KEEP:
                return 0
            charged = c.fact.amount.minor - c.net
            bps, rounding = self.merchant_bps(merchant), self.fees.rounding
            before = min(fee_minor(c.refunded, bps, rounding), charged)
            return min(fee_minor(c.refunded + amount, bps, rounding), charged) - before

        @precondition(lambda self: self.captures)
        @rule(data=st.data(), beyond_what_is_left=st.booleans())
        def refund(self, data: st.DataObject, beyond_what_is_left: bool) -> None:
            c = self.captures[data.draw(st.sampled_from(sorted(self.captures)), label="payment")]
            gross, left = c.fact.amount.minor, c.fact.amount.minor - c.refunded
            if beyond_what_is_left:
                amount = left + data.draw(st.integers(1, gross), label="over by")
            elif left == 0:
                return
            else:
                amount = data.draw(st.just(left) | st.integers(1, left), label="amount")
            refund_id = self.next_id("rfd")
            cur = c.fact.amount.currency
            fact = Refunded(
                f"evt_{refund_id}",
                refund_id,
                c.fact.payment_id,
                c.fact.merchant_id,
                c.fact.channel,
                Money(amount, cur),
                self.now,
                automatic=c.fact.duplicate,
            )
            bucket = self.buckets[c.fact.merchant_id, cur]
            from_pending = from_available = 0
            refusal: type[Exception] | None = None
            if beyond_what_is_left:
                refusal = FailedPrecondition
            elif not c.fact.duplicate:
                from_merchant = amount - self.fee_returned(c, amount)
                from_pending = min(c.unreleased, from_merchant)
                from_available = from_merchant - from_pending
                if from_available > bucket.available:
                    refusal = PostingRefused
            try:
                with uow_factory() as uow:
                    entry = post_refund(uow, fact, self.policy)
                    uow.commit()
            except FailedPrecondition as exc:
                assert type(exc) is refusal, f"{exc!r}, expected {refusal}"
                event(f"refund refused: {type(exc).__name__}")
                return
            assert refusal is None, f"refund of {amount} posted, expected {refusal.__name__}"
            assert entry is not None
            c.refunded += amount
            c.unreleased -= from_pending
            bucket.pending -= from_pending
            bucket.available -= from_available
            bucket.owed -= from_pending + from_available
            self.refunds.append(fact)
            self.entries += 1
            event("refund posted" + (" (whole rest)" if c.refunded == gross else ""))

        @precondition(lambda self: self.captures)
        @rule(data=st.data(), fresh_event_id=st.booleans())
        def replay(self, data: st.DataObject, fresh_event_id: bool) -> None:
            facts: list[Captured | Refunded] = [c.fact for c in self.captures.values()]
            fact = data.draw(st.sampled_from([*facts, *self.refunds]), label="event")
            if fresh_event_id:  # republished: the natural key (payment, refund id) still holds
                fact = replace(fact, event_id=self.next_id("evt"))
            before = footprint(ledger_engine)
            with uow_factory() as uow:
                if isinstance(fact, Captured):
                    posted = post_capture(uow, fact, self.policy)
                else:
                    posted = post_refund(uow, fact, self.policy)
                uow.commit()
            assert posted is None
            assert footprint(ledger_engine) == before

        # -- releases --------------------------------------------------------------------
        def released(self, c: ModelCapture) -> None:
            bucket = self.buckets[c.fact.merchant_id, c.fact.amount.currency]
            bucket.pending -= c.unreleased
            bucket.available += c.unreleased
            c.unreleased = 0

        @precondition(lambda self: self.captures)
        @rule(data=st.data())
        def release(self, data: st.DataObject) -> None:
            c = self.captures[data.draw(st.sampled_from(sorted(self.captures)), label="payment")]
            with uow_factory() as uow:
                entry = release_payment(uow, c.fact.payment_id, self.now)
                uow.commit()
            assert (entry is not None) == (c.unreleased > 0)
            if entry is not None:
                self.released(c)
                self.entries += 1

        @rule()
        def release_everything_due(self) -> None:
            later = self.now + RELEASE_AFTER
            while True:
                with uow_factory() as uow:
                    count = release_due(uow, later, 100)
                    uow.commit()
                if count == 0:
                    break
                self.entries += count
            for c in self.captures.values():
                if c.unreleased:
                    self.released(c)

        # -- adjustments and reversals ---------------------------------------------------
        @rule(
            merchant=st.integers(0, MERCHANTS_PER_RUN - 1),
            channel=st.sampled_from(CHANNELS),
            currency=st.sampled_from(CURRENCIES),
            amount=st.integers(1, 10**6),
            kind=st.sampled_from(["clearing_over", "clearing_short", "merchant_owed", "merchant_overpaid"]),
        )
        def adjust(self, merchant: int, channel: str, currency: str, amount: int, kind: str) -> None:
            owner = self.merchants[merchant]
            suspense = chart.suspense(currency).account_id
            money = Money(amount, currency)
            other, to_merchant = {
                "clearing_over": (chart.channel_clearing(channel, currency).account_id, 0),
                "clearing_short": (chart.channel_clearing(channel, currency).account_id, 0),
                "merchant_owed": (chart.merchant_available(owner, currency).account_id, amount),
                "merchant_overpaid": (chart.merchant_available(owner, currency).account_id, -amount),
            }[kind]
            # The suspense side takes whatever the other side's difference is.
            other_side = Side.DEBIT if kind in ("clearing_over", "merchant_overpaid") else Side.CREDIT
            lines = [
                RequestedLine(other, other_side, money),
                RequestedLine(suspense, other_side.opposite, money),
            ]
            key = self.next_id("adj")
            bucket = self.buckets[owner, currency]
            refused = -to_merchant > bucket.available
            try:
                entry = adjustments.post_adjustment(
                    uow_factory, key, lines, "statement difference", "ops", ""
                )
            except PostingRefused:
                assert refused
                event("adjustment refused: merchant would go negative")
                return
            assert not refused
            event("adjustment posted")
            bucket.available += to_merchant
            bucket.owed += to_merchant
            self.entries += 1
            self.adjustments.append(
                ModelAdjustment(key, entry.entry_id, owner if to_merchant else None, currency, to_merchant)
            )
            # The same request again is the same entry; the same key with other lines is refused.
            again = adjustments.post_adjustment(uow_factory, key, lines, "statement difference", "ops", "")
            assert again.entry_id == entry.entry_id
            turned = [
                RequestedLine(
                    line.account_id, other_side.opposite if line.account_id == other else other_side, money
                )
                for line in lines
            ]
            with pytest.raises(AlreadyExists):
                adjustments.post_adjustment(uow_factory, key, turned, "other", "ops", "")

        @precondition(lambda self: self.adjustments)
        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            adj = data.draw(st.sampled_from(self.adjustments), label="adjustment")
            key = self.next_id("rev")
            if adj.reversed_by:
                with pytest.raises(FailedPrecondition, match="already reversed"):
                    adjustments.reverse(uow_factory, key, adj.entry_id, "again", "ops")
                with pytest.raises(FailedPrecondition, match="is a reversal"):
                    adjustments.reverse(uow_factory, key, adj.reversed_by, "undo the undo", "ops")
                return
            bucket = self.buckets[adj.merchant, adj.currency] if adj.merchant else Buckets()
            refused = adj.to_merchant > bucket.available
            try:
                reversal = adjustments.reverse(uow_factory, key, adj.entry_id, "posted in error", "ops")
            except PostingRefused:
                assert refused
                event("reversal refused: merchant would go negative")
                return
            assert not refused
            event("reversal posted")
            adj.reversed_by = reversal.entry_id
            bucket.available -= adj.to_merchant
            bucket.owed -= adj.to_merchant
            self.entries += 1
            replayed = adjustments.reverse(uow_factory, key, adj.entry_id, "posted in error", "ops")
            assert replayed.entry_id == reversal.entry_id

        # -- settlements -----------------------------------------------------------------
        def settlements(self, outcome: PayoutOutcome) -> Settlements:
            return Settlements(uow_factory, ScriptedPayouts(outcome), PAYOUT_CHANNEL, clock=lambda: self.now)

        def answered(self, key: str, status: SettlementStatus, outcome: PayoutOutcome) -> None:
            opened = self.open_settlements[key]
            bucket = self.buckets[opened.merchant, opened.currency]
            match outcome:
                case PayoutOutcome.PAID:
                    assert status is SettlementStatus.PAID_OUT
                    bucket.in_transit -= opened.amount
                    bucket.paid_out += opened.amount
                case PayoutOutcome.FAILED:
                    assert status is SettlementStatus.FAILED
                    bucket.in_transit -= opened.amount
                    bucket.available += opened.amount
                case PayoutOutcome.NO_ANSWER:
                    assert status is SettlementStatus.PENDING
                    return
            del self.open_settlements[key]
            self.entries += 1
            event(f"settlement {status.value}")

        @rule(
            merchant=st.integers(0, MERCHANTS_PER_RUN - 1),
            currency=st.sampled_from(CURRENCIES),
            outcome=st.sampled_from(PayoutOutcome),
        )
        def settle(self, merchant: int, currency: str, outcome: PayoutOutcome) -> None:
            owner = self.merchants[merchant]
            bucket = self.buckets[owner, currency]
            key = self.next_id("stl")
            if bucket.available <= 0:
                with pytest.raises(FailedPrecondition, match="nothing available"):
                    asyncio.run(self.settlements(outcome).run(key, owner, currency))
                return
            settlement = asyncio.run(self.settlements(outcome).run(key, owner, currency))
            assert settlement.amount == Money(bucket.available, currency)
            self.open_settlements[key] = OpenSettlement(owner, currency, bucket.available)
            bucket.in_transit += bucket.available
            bucket.available = 0
            self.entries += 1
            self.answered(key, settlement.status, outcome)

        @precondition(lambda self: self.open_settlements)
        @rule(data=st.data(), outcome=st.sampled_from(PayoutOutcome))
        def ask_again_by_key(self, data: st.DataObject, outcome: PayoutOutcome) -> None:
            key = data.draw(st.sampled_from(sorted(self.open_settlements)), label="settlement")
            opened = self.open_settlements[key]
            settlement = asyncio.run(self.settlements(outcome).run(key, opened.merchant, opened.currency))
            self.answered(key, settlement.status, outcome)

        @rule(outcome=st.sampled_from(PayoutOutcome))
        def retry_worker(self, outcome: PayoutOutcome) -> None:
            # Later than every retry delay: all that is open is due. Open settlements of
            # earlier runs were answered in their teardown, so only this run's are claimed.
            self.now += RETRY_CLOCK_STEP
            worker = self.settlements(outcome)
            while asyncio.run(worker.retry_due()):
                pass
            with ledger_engine.connect() as conn:
                statuses = dict(
                    conn.execute(
                        text(
                            "SELECT idempotency_key, status FROM settlements WHERE idempotency_key = ANY(:k)"
                        ),
                        {"k": list(self.open_settlements)},
                    ).all()
                )
            for key in list(self.open_settlements):
                self.answered(key, SettlementStatus(statuses[key]), outcome)

        def teardown(self) -> None:
            for key, opened in list(self.open_settlements.items()):
                asyncio.run(self.settlements(PayoutOutcome.PAID).run(key, opened.merchant, opened.currency))

        # -- what must hold after every step ---------------------------------------------
        @invariant()
        def ledger_is_sound_and_matches_the_model(self) -> None:
            with ledger_engine.connect() as conn:
                assert ledger_problems(conn) == []
                assert entry_count(conn) == self.entries
                balances = dict(
                    conn.execute(
                        text("SELECT account_id, balance_minor FROM accounts WHERE owner = ANY(:m)"),
                        {"m": self.merchants},
                    ).all()
                )
                paid = {
                    (r.merchant_id, r.currency): int(r.total)
                    for r in conn.execute(
                        text(
                            "SELECT merchant_id, currency, sum(amount_minor) AS total FROM settlements"
                            " WHERE merchant_id = ANY(:m) AND status = 'PAID_OUT'"
                            " GROUP BY merchant_id, currency"
                        ),
                        {"m": self.merchants},
                    )
                }
                stored = {
                    r.payment_id: (r.unreleased_minor, r.refunded_minor)
                    for r in conn.execute(
                        text(
                            "SELECT payment_id, unreleased_minor, refunded_minor FROM captures"
                            " WHERE payment_id LIKE :p"
                        ),
                        {"p": f"pay_{self.run}_%"},
                    )
                }
            for (merchant, cur), expected in self.buckets.items():
                actual = Buckets(
                    pending=balances.get(chart.merchant_pending(merchant, cur).account_id, 0),
                    available=balances.get(chart.merchant_available(merchant, cur).account_id, 0),
                    in_transit=balances.get(chart.merchant_in_transit(merchant, cur).account_id, 0),
                    paid_out=paid.get((merchant, cur), 0),
                    owed=expected.owed,
                )
                assert actual == expected, f"{merchant} {cur}"
                assert (
                    actual.pending + actual.available + actual.in_transit + actual.paid_out == expected.owed
                )
            assert stored == {p: (c.unreleased, c.refunded) for p, c in self.captures.items()}

    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(max_examples=60, stateful_step_count=30, deadline=None),
    )
