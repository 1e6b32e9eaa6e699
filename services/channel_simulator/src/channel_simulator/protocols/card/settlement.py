"""The card acquirer's settlement: batches, fees, and the daily settlement statement.

Batches. Each capture is put in a settlement batch the first time the acquirer shows it
captured (its answer, its webhook, or the statement, whichever comes first): per account,
UTC day of the capture and currency, a new batch every BATCH_MAX_CAPTURES captures, id
B<yyyymmdd>-<account number>-<nnn> (nnn counts the day's batches of the account). A refund
that succeeded joins the open batch of its own day and currency (a new one if there is none).
The batch id is kept in Trade.extra / Refund.extra["batch_id"] and shown as the expanded
charge's `settlement_batch`.

Fees. A sale costs FEE_RATE_BPS (2.9 %) of its amount, rounded half up to the minor unit,
plus 0.30 of the currency (rounded half up to its minor unit: 0 in zero-decimal currencies),
never more than the sale itself. A refund costs nothing and gives no fee back.

The statement of a day, one currency, in the format the reconciliation service parses
(reconciliation/statements/card.py, "card-settlement-csv"):

    # settlement,merchant=<acct id>,date=<yyyy-mm-dd>
    record_type,batch_id,line_ref,type,count,gross,fees,net,currency,settled_at
    BATCH,<batch>,1,SALE,<n>,<gross>,<fees>,<gross - fees>,<CUR>,<yyyy-mm-ddThh:mm:ssZ>
    BATCH,<batch>,2,REFUND,<n>,<gross>,0.00,-<gross>,<CUR>,<...>
    TRAILER,,,,<sum count>,<sum gross>,<sum fees>,<sum net>,<CUR>,

Batches in id order; lines of a batch numbered from 1. Every second batch of the file with
two captures or more reports its sales in two SALE lines (first half, second half, in
capture order), so a batch is not always one line: matching is many-to-many by batch. A
REFUND line follows when the batch had refunds. settled_at is the time of the batch's latest
capture or refund. Amounts are decimal strings in the currency's major unit.

Planted lines (POST /v1/admin/statement-extras, protocol "card"; statement_extras.py): each is
one more BATCH line (count 1; a PAYMENT is a SALE with the fee rule's fee, a REFUND costs
nothing) at the end of the batch of the intent (or refund) its out_trade_no (out_refund_no)
names, or of a batch the acquirer invents, B<yyyymmdd>-<account number>-P<nn>, when it names
none. settled_at is its occurred_at, else noon UTC of the day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Final

from paykit.money import Money, Rounding, allocate_fee, exponent

from channel_simulator.accounts import (
    MerchantAccount,
    Refund,
    RefundStatus,
    StatementExtra,
    StatementLineKind,
    Trade,
    TradeStatus,
)
from channel_simulator.protocols.card.accounts import Batches, batch_of

FORMAT: Final = "card-settlement-csv"
FEE_RATE_BPS: Final = 290
# The fixed part of a sale's fee, in hundredths of the currency's major unit (0.30).
FEE_FIXED_HUNDREDTHS: Final = 30
HEADER: Final = "record_type,batch_id,line_ref,type,count,gross,fees,net,currency,settled_at"
_HUNDREDTHS: Final = 100


class AmbiguousCurrency(ValueError):
    """The day settled in several currencies: a statement file holds one, so one must be named."""

    def __init__(self, currencies: Sequence[str]) -> None:
        super().__init__(f"the day settled in several currencies ({', '.join(currencies)}): name one")
        self.currencies = tuple(currencies)


def fixed_fee(currency: str) -> Money:
    """0.30 of `currency`, rounded half up to its minor unit."""
    quotient, remainder = divmod(FEE_FIXED_HUNDREDTHS * 10 ** exponent(currency), _HUNDREDTHS)
    return Money(quotient + (1 if 2 * remainder >= _HUNDREDTHS else 0), currency)


def sale_fee(amount: Money) -> Money:
    fee = allocate_fee(amount, FEE_RATE_BPS, Rounding.HALF_UP) + fixed_fee(amount.currency)
    return min(fee, amount)


# -- batches ------------------------------------------------------------------------------


def batch_capture(batches: Batches, trade: Trade) -> None:
    """Put a captured trade in its batch, once; nothing for a trade not captured."""
    if trade.status is not TradeStatus.SUCCESS or trade.paid_at is None or trade.amount is None:
        return
    if batch_of(trade) is None:
        trade.extra["batch_id"] = batches.for_capture(trade.paid_at.date(), trade.amount.currency)


def batch_refund(batches: Batches, refund: Refund) -> None:
    """Put a succeeded refund in its day's open batch, once."""
    if refund.status is not RefundStatus.SUCCESS or refund.refunded_at is None:
        return
    if batch_of(refund) is None:
        refund.extra["batch_id"] = batches.for_refund(refund.refunded_at.date(), refund.amount.currency)


# -- the statement ------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One capture or refund in a batch."""

    batch_id: str
    sale: bool
    amount: Money
    at: datetime


@dataclass(frozen=True)
class Line:
    batch_id: str
    line_ref: int
    sale: bool
    count: int
    gross: Money
    fees: Money
    settled_at: datetime

    @property
    def net(self) -> Money:
        return self.gross - self.fees if self.sale else self.gross.negate() - self.fees

    def row(self) -> str:
        kind = "SALE" if self.sale else "REFUND"
        return (
            f"BATCH,{self.batch_id},{self.line_ref},{kind},{self.count},{self.gross.format()},"
            f"{self.fees.format()},{self.net.format()},{self.gross.currency},{_stamp(self.settled_at)}"
        )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_items(merchant: MerchantAccount, protocol: str, batches: Batches, day: date) -> list[Item]:
    """The day's captures and succeeded refunds through `protocol`, batched (any not yet batched
    are put in batches now, in the order they happened)."""
    captured = sorted(
        (
            t
            for t in merchant.trades_of(protocol)
            if t.status is TradeStatus.SUCCESS and t.paid_at is not None and t.paid_at.date() == day
        ),
        key=lambda t: (t.paid_at, t.trade_no),
    )
    refunded = sorted(
        (
            r
            for r in merchant.refunds.values()
            if r.protocol == protocol
            and r.status is RefundStatus.SUCCESS
            and r.refunded_at is not None
            and r.refunded_at.date() == day
        ),
        key=lambda r: (r.refunded_at, r.refund_no),
    )
    items = []
    for trade in captured:
        batch_capture(batches, trade)
        if trade.amount is not None and trade.paid_at is not None:
            items.append(Item(batch_of(trade) or "", True, trade.amount, trade.paid_at))
    for refund in refunded:
        batch_refund(batches, refund)
        if refund.refunded_at is not None:
            items.append(Item(batch_of(refund) or "", False, refund.amount, refund.refunded_at))
    return items


def _sum(amounts: Iterable[Money], currency: str) -> Money:
    return sum(amounts, Money.zero(currency))


def _batch_lines(batch_id: str, items: Sequence[Item], split: bool, currency: str) -> list[Line]:
    sales = [i for i in items if i.sale]
    refunds = [i for i in items if not i.sale]
    latest = max(i.at for i in items)
    halves = [sales[: len(sales) // 2], sales[len(sales) // 2 :]] if split and len(sales) >= 2 else [sales]
    groups = [(True, group) for group in halves if group]
    if refunds:
        groups.append((False, refunds))
    lines = []
    for line_ref, (sale, group) in enumerate(groups, start=1):
        fees = _sum((sale_fee(i.amount) for i in group), currency) if sale else Money.zero(currency)
        gross = _sum((i.amount for i in group), currency)
        lines.append(Line(batch_id, line_ref, sale, len(group), gross, fees, latest))
    return lines


def statement_lines(items: Sequence[Item], currency: str) -> list[Line]:
    """The BATCH lines of `items` in `currency`."""
    by_batch: dict[str, list[Item]] = {}
    for item in items:
        if item.amount.currency == currency:
            by_batch.setdefault(item.batch_id, []).append(item)
    lines: list[Line] = []
    # Longer ids last: a day's 1000th batch sorts after its 999th.
    for position, batch_id in enumerate(sorted(by_batch, key=lambda b: (len(b), b))):
        lines.extend(_batch_lines(batch_id, by_batch[batch_id], position % 2 == 1, currency))
    return lines


def planted_lines(
    lines: Sequence[Line],
    extras: Sequence[StatementExtra],
    currency: str,
    batch_for: Callable[[StatementExtra], str],
) -> list[Line]:
    """`lines` with the planted ones in `currency` added, each batch's lines together."""
    next_ref: dict[str, int] = {}
    for line in lines:
        next_ref[line.batch_id] = max(next_ref.get(line.batch_id, 1), line.line_ref + 1)
    planted = []
    for extra in extras:
        if extra.amount.currency != currency:
            continue
        batch_id = batch_for(extra)
        line_ref = next_ref.get(batch_id, 1)
        next_ref[batch_id] = line_ref + 1
        sale = extra.kind is StatementLineKind.PAYMENT
        fees = sale_fee(extra.amount) if sale else Money.zero(currency)
        at = extra.occurred_at or datetime.combine(extra.day, time(12), UTC)
        planted.append(Line(batch_id, line_ref, sale, 1, extra.amount, fees, at))
    return sorted([*lines, *planted], key=lambda line: (len(line.batch_id), line.batch_id, line.line_ref))


def planted_batch(account_number: int, day: date, position: int) -> str:
    """The batch the acquirer invents for a planted line that names no record of its own."""
    return f"B{day:%Y%m%d}-{account_number:02d}-P{position:02d}"


def currency_of_day(
    items: Sequence[Item], wanted: str | None, extras: Sequence[StatementExtra] = ()
) -> str | None:
    """The statement's currency: the one asked for, else the day's only one; None: nothing settled."""
    currencies = sorted({i.amount.currency for i in items} | {e.amount.currency for e in extras})
    if wanted is not None:
        return wanted if wanted in currencies else None
    if len(currencies) > 1:
        raise AmbiguousCurrency(currencies)
    return currencies[0] if currencies else None


def render(account: str, day: date, lines: Sequence[Line], currency: str) -> bytes:
    """The statement file; `lines` must not be empty (the trailer's count is positive)."""
    if not lines:
        raise ValueError("a settlement statement has at least one batch line")
    count = sum(line.count for line in lines)
    gross = _sum((line.gross for line in lines), currency)
    fees = _sum((line.fees for line in lines), currency)
    net = _sum((line.net for line in lines), currency)
    rows = [
        f"# settlement,merchant={account},date={day.isoformat()}",
        HEADER,
        *(line.row() for line in lines),
        f"TRAILER,,,,{count},{gross.format()},{fees.format()},{net.format()},{currency},",
    ]
    return ("\n".join(rows) + "\n").encode()
