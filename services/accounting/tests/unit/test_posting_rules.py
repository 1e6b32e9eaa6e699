"""Posting rules under any amount, rate and rounding (no I/O).

Every entry below is built by a JournalEntry, which refuses unbalanced lines:
a rule that ever produced one would raise UnbalancedEntry here. Expected fees
are computed with fractions, independently of paykit.money.allocate_fee.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from accounting.domain import accounts as chart
from accounting.domain import posting_rules as rules
from accounting.domain.accounts import Side
from accounting.domain.entries import EntryKind, JournalEntry, Line, UnbalancedEntry
from accounting.domain.fees import FeeSchedule, RefundFee
from accounting.domain.posting_rules import Captured, CaptureRecord, Refunded
from hypothesis import given, settings
from hypothesis import strategies as st
from paykit.errors import FailedPrecondition
from paykit.money import BPS_PER_UNIT, Money, Rounding

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
MERCHANT = "m-1"
CHANNEL = "simulator"
MAX_AMOUNT_MINOR = 10**9

amounts = st.integers(1, MAX_AMOUNT_MINOR)
rates_bps = st.integers(0, BPS_PER_UNIT)
roundings = st.sampled_from(Rounding)
currencies = st.sampled_from(["CNY", "USD", "JPY"])


@st.composite
def schedules(draw: st.DrawFn) -> FeeSchedule:
    return FeeSchedule(
        merchant_bps=draw(rates_bps),
        channel_bps=draw(rates_bps),
        rounding=draw(roundings),
        refund_fee=draw(st.sampled_from(RefundFee)),
    )


def expected_fee(amount_minor: int, bps: int, rounding: Rounding) -> int:
    exact = Fraction(amount_minor * bps, BPS_PER_UNIT)
    down = math.floor(exact)
    rest = exact - down
    match rounding:
        case Rounding.DOWN:
            return down
        case Rounding.UP:
            return math.ceil(exact)
        case Rounding.HALF_UP:
            return down + (rest >= Fraction(1, 2))
        case Rounding.HALF_EVEN:
            return down + (rest > Fraction(1, 2) or (rest == Fraction(1, 2) and down % 2 == 1))


def captured(amount: Money, *, duplicate: bool = False, payment: str = "pay_1") -> Captured:
    return Captured(f"evt_{payment}", payment, MERCHANT, CHANNEL, amount, AT, duplicate)


def refunded(record: CaptureRecord, minor: int, n: int) -> Refunded:
    amount = Money(minor, record.gross.currency)
    return Refunded(
        f"evt_r{n}", f"rfd_{n}", record.payment_id, MERCHANT, CHANNEL, amount, AT, record.duplicate
    )


def deltas(entry: JournalEntry) -> dict[str, int]:
    return defaultdict(int, entry.deltas())


def check_balanced(entry: JournalEntry) -> None:
    """What JournalEntry already refused to break, said once more in plain sums."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in entry.lines:
        assert line.amount.is_positive
        totals[line.amount.currency][line.side is Side.CREDIT] += line.amount.minor
    assert len(entry.lines) >= 2
    assert all(debits == credits for debits, credits in totals.values())


@given(amount=amounts, fees=schedules(), currency=currencies)
def test_any_capture_is_balanced_and_its_fees_split_the_amount(
    amount: int, fees: FeeSchedule, currency: str
) -> None:
    entry, record = rules.capture(captured(Money(amount, currency)), fees, "jnl_1")

    check_balanced(entry)
    merchant_fee = expected_fee(amount, fees.merchant_bps, fees.rounding)
    channel_fee = expected_fee(amount, fees.channel_bps, fees.rounding)
    assert 0 <= merchant_fee <= amount and 0 <= channel_fee <= amount
    assert record.net.minor + merchant_fee == amount
    assert (record.gross, record.unreleased, record.refunded) == (
        Money(amount, currency),
        record.net,
        Money.zero(currency),
    )
    moved = deltas(entry)
    assert moved[chart.merchant_pending(MERCHANT, currency).account_id] == amount - merchant_fee
    assert moved[chart.fee_revenue(currency).account_id] == merchant_fee
    assert moved[chart.channel_fee_expense(CHANNEL, currency).account_id] == channel_fee
    assert moved[chart.channel_clearing(CHANNEL, currency).account_id] == amount - channel_fee


@given(amount=amounts, fees=schedules(), currency=currencies)
def test_a_duplicate_capture_never_touches_merchant_accounts_nor_fees(
    amount: int, fees: FeeSchedule, currency: str
) -> None:
    entry, record = rules.capture(captured(Money(amount, currency), duplicate=True), fees, "jnl_1")

    check_balanced(entry)
    assert entry.kind is EntryKind.DUPLICATE_CAPTURE
    assert {a.account_id for a in entry.accounts} == {
        chart.channel_clearing(CHANNEL, currency).account_id,
        chart.refunds_payable(currency).account_id,
    }
    assert (record.net, record.unreleased, record.duplicate) == (Money.zero(currency),) * 2 + (True,)
    # Its automatic refund goes back through refunds payable, never the merchant.
    back, after = rules.refund(refunded(record, amount, 1), record, fees, "jnl_2")
    check_balanced(back)
    assert not any(a.owner == MERCHANT for a in back.accounts)
    assert after.refundable.is_zero


@st.composite
def refund_plans(draw: st.DrawFn) -> tuple[int, FeeSchedule, list[int], int | None, bool]:
    """A capture, refunds that never exceed it (the last often takes what is left), and
    where among them the release to available happens (None: never)."""
    amount = draw(st.integers(1, MAX_AMOUNT_MINOR))
    fees = draw(schedules())
    refunds: list[int] = []
    left = amount
    for _ in range(draw(st.integers(0, 6))):
        if left == 0:
            break
        piece = draw(st.one_of(st.integers(1, left), st.integers(1, min(left, 100)), st.just(left)))
        refunds.append(piece)
        left -= piece
    release_at = draw(st.none() | st.integers(0, len(refunds)))
    return amount, fees, refunds, release_at, draw(st.booleans())


@given(plan=refund_plans())
@settings(max_examples=300)
def test_refunds_within_the_capture_take_from_pending_first_and_return_the_fee_exactly(
    plan: tuple[int, FeeSchedule, list[int], int | None, bool],
) -> None:
    amount, fees, refunds, release_at, _ = plan
    cur = "CNY"
    _, record = rules.capture(captured(Money(amount, cur)), fees, "jnl_c")
    charged = amount - record.net.minor
    pending_id = chart.merchant_pending(MERCHANT, cur).account_id
    available_id = chart.merchant_available(MERCHANT, cur).account_id
    fee_id = chart.fee_revenue(cur).account_id
    taken_from_merchant = fee_returned = 0
    for n, piece in enumerate(refunds):
        if n == release_at:
            released = rules.release(record, "rel", "jnl_rel", AT)
            assert released is not None or record.unreleased.is_zero
            if released is not None:
                check_balanced(released)
                assert deltas(released)[pending_id] == -record.unreleased.minor
            record = CaptureRecord(**{**record.__dict__, "unreleased": Money.zero(cur)})
        back, after = rules.refund(refunded(record, piece, n), record, fees, f"jnl_{n}")
        check_balanced(back)
        moved = deltas(back)
        fee_back = -moved[fee_id]
        from_merchant = piece - fee_back
        assert 0 <= fee_back <= piece
        # Pending part of this payment first, the rest from available.
        assert -moved[pending_id] == min(record.unreleased.minor, from_merchant)
        assert -moved[available_id] == from_merchant - min(record.unreleased.minor, from_merchant)
        assert after.unreleased.minor == record.unreleased.minor + moved[pending_id] >= 0
        assert after.refunded.minor == record.refunded.minor + piece
        taken_from_merchant += from_merchant
        fee_returned += fee_back
        record = after
    total = sum(refunds)
    if fees.refund_fee is RefundFee.RETURN:
        # The fee of everything refunded, as if refunded at once: never more than charged.
        assert fee_returned == expected_fee(total, fees.merchant_bps, fees.rounding) <= charged
    else:
        assert fee_returned == 0
    assert taken_from_merchant == total - fee_returned
    if total == amount and fees.refund_fee is RefundFee.RETURN:
        assert (fee_returned, taken_from_merchant) == (charged, record.net.minor)


@given(plan=refund_plans(), over=st.integers(1, MAX_AMOUNT_MINOR))
def test_a_refund_beyond_what_is_left_of_the_payment_is_refused(
    plan: tuple[int, FeeSchedule, list[int], int | None, bool], over: int
) -> None:
    amount, fees, refunds, _, duplicate = plan
    _, record = rules.capture(captured(Money(amount, "CNY"), duplicate=duplicate), fees, "jnl_c")
    for n, piece in enumerate(refunds):
        _, record = rules.refund(refunded(record, piece, n), record, fees, f"jnl_{n}")
    with pytest.raises(FailedPrecondition, match="exceeds what is left to refund"):
        rules.refund(refunded(record, amount - sum(refunds) + over, 99), record, fees, "jnl_over")


def test_a_payment_refunded_unit_by_unit_takes_its_whole_net_back_from_the_merchant() -> None:
    # UP rounding makes every 1-unit refund's own fee 1: rounded piece by piece, the fee
    # revenue would pay these refunds and the merchant would keep the payment's 99.
    fees = FeeSchedule(merchant_bps=60, channel_bps=0, rounding=Rounding.UP)
    _, record = rules.capture(captured(Money(100, "CNY")), fees, "jnl_c")
    assert record.net == Money(99, "CNY")
    pending = chart.merchant_pending(MERCHANT, "CNY").account_id
    taken = 0
    for n in range(100):
        back, record = rules.refund(refunded(record, 1, n), record, fees, f"jnl_{n}")
        taken -= back.deltas().get(pending, 0)
    assert taken == 99


def test_a_refund_naming_another_merchant_currency_or_channel_is_refused() -> None:
    fees = FeeSchedule()
    _, record = rules.capture(captured(Money(1000, "CNY")), fees, "jnl_c")
    good = refunded(record, 100, 1)
    for wrong in (
        Refunded(**{**good.__dict__, "merchant_id": "m-2"}),
        Refunded(**{**good.__dict__, "channel": "simulator_b"}),
        Refunded(**{**good.__dict__, "amount": Money(100, "USD")}),
    ):
        with pytest.raises(FailedPrecondition):
            rules.refund(wrong, record, fees, "jnl_r")


@given(amount=amounts, currency=currencies)
def test_settlement_then_payout_or_failed_payout_are_balanced_and_net_out(amount: int, currency: str) -> None:
    money = Money(amount, currency)
    settled = rules.settlement("stl_1", MERCHANT, money, "jnl_1", AT)
    paid = rules.payout("stl_1", MERCHANT, money, "jnl_2", AT)
    failed = rules.payout_failed("stl_1", MERCHANT, money, "jnl_3", AT)
    for entry in (settled, paid, failed):
        check_balanced(entry)
    available = chart.merchant_available(MERCHANT, currency).account_id
    in_transit = chart.merchant_in_transit(MERCHANT, currency).account_id
    bank = chart.settlement_bank(currency).account_id
    after_paid = defaultdict(int)
    after_failed = defaultdict(int)
    for entry in (settled, paid):
        for account, delta in entry.deltas().items():
            after_paid[account] += delta
    for entry in (settled, failed):
        for account, delta in entry.deltas().items():
            after_failed[account] += delta
    assert (after_paid[available], after_paid[in_transit], after_paid[bank]) == (-amount, 0, -amount)
    assert (after_failed[available], after_failed[in_transit]) == (0, 0)


@given(amount=amounts, fees=schedules())
def test_a_reversal_undoes_its_entry_and_is_not_reversed_itself(amount: int, fees: FeeSchedule) -> None:
    entry, _ = rules.capture(captured(Money(amount, "USD")), fees, "jnl_1")
    reversal = rules.reversal(entry, "key-1", "jnl_2", AT, "wrong merchant", "ops")
    check_balanced(reversal)
    assert all(entry.deltas()[a] + d == 0 for a, d in reversal.deltas().items())
    assert (reversal.event_id, reversal.reverses_entry_id) == ("rev:key-1", "jnl_1")
    with pytest.raises(FailedPrecondition):
        rules.reversal(reversal, "key-2", "jnl_3", AT, "undo", "ops")


def test_unbalanced_or_malformed_lines_never_make_an_entry() -> None:
    clearing = chart.channel_clearing(CHANNEL, "CNY")
    pending = chart.merchant_pending(MERCHANT, "CNY")
    cases = [
        (Line(clearing, Side.DEBIT, Money(100, "CNY")),),
        (Line(clearing, Side.DEBIT, Money(100, "CNY")), Line(pending, Side.CREDIT, Money(99, "CNY"))),
        (Line(clearing, Side.DEBIT, Money(0, "CNY")), Line(pending, Side.CREDIT, Money(0, "CNY"))),
        (Line(clearing, Side.DEBIT, Money(-5, "CNY")), Line(pending, Side.CREDIT, Money(-5, "CNY"))),
        (Line(clearing, Side.DEBIT, Money(100, "USD")), Line(pending, Side.CREDIT, Money(100, "USD"))),
    ]
    for lines in cases:
        with pytest.raises(UnbalancedEntry):
            JournalEntry("jnl_1", "evt_1", EntryKind.ADJUSTMENT, "ref", lines, AT)
