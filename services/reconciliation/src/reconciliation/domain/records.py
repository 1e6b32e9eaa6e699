"""The two sides of a reconciliation: statement lines (the channel's) and internal records (ours).

Each side is defined once, as an Arrow schema (what a Parquet file or Arrow table handed to
the matcher must hold) and as a small frozen dataclass (for parsers, the capture writer and
tests that build a handful of rows; bulk paths never build these objects).

Contract for every writer (the three statement parsers, the capture writer, the generator):

* Column names and Arrow types exactly as in :data:`STATEMENT_LINE_SCHEMA` /
  :data:`INTERNAL_RECORD_SCHEMA`; extra columns are refused. Nullability is documented per
  field below (Parquet files written by other engines mark every column optional, so it is
  not part of the type check).
* Money is an ``int64`` count of the currency's minor units plus an ISO 4217 code
  (:mod:`paykit.money`): convert the channel's decimal text with ``Money.parse`` at the parser,
  never through a float. ``amount_minor`` is always positive; the direction is ``kind``
  (a refund is a positive amount of kind REFUND), so that sums over a group are signed by kind.
* ``occurred_at`` is a UTC instant (``timestamp[us, tz=UTC]``): parsers convert the channel's
  local wall time (Alipay and WeChat Pay bills are Beijing time, UTC+8) at the edge.
* ``business_day`` is the statement day the record belongs to: for a line, the day of the
  statement file it came from; for an internal record, the day the capture writer assigned
  from ``occurred_at`` and the channel's cut-off (the same rule as the channel's, or as near as
  we know it; a record near the cut-off that lands on the other day is what suspense is for).
* Identifiers that are not known are ``null`` or the empty string; both mean "not known" and
  never match anything.
* Statuses are :class:`RecordStatus` values (parsers map the channel's words, e.g. Alipay's
  "交易成功" or WeChat Pay's "SUCCESS" to SUCCEEDED, "REFUND" lines to kind REFUND / SUCCEEDED).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import pyarrow as pa
from paykit.errors import invariant
from paykit.money import Money, exponent


class Side(enum.StrEnum):
    """Which side of the reconciliation a record is on."""

    CHANNEL = "CHANNEL"  # a statement line
    INTERNAL = "INTERNAL"  # an internal record


class RecordKind(enum.StrEnum):
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"


class RecordStatus(enum.StrEnum):
    """One vocabulary for both sides. Parsers map the channel's statuses onto it."""

    SUCCEEDED = "SUCCEEDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    PENDING = "PENDING"
    FAILED = "FAILED"
    CLOSED = "CLOSED"


MONEY_MOVED_STATUSES: Final[frozenset[RecordStatus]] = frozenset(
    {RecordStatus.SUCCEEDED, RecordStatus.PARTIALLY_REFUNDED, RecordStatus.REFUNDED}
)
"""Statuses that say the money of the record moved. A payment we later refunded is REFUNDED
on our side but still a successful trade line on the channel's bill, so the status comparison
folds these three into SUCCEEDED (:func:`comparable_status`); every other status compares as
itself (the channel saying FAILED while we wait in PENDING is a status mismatch)."""


def comparable_status(status: str) -> str:
    """The status as compared between the two sides (see :data:`MONEY_MOVED_STATUSES`)."""
    return RecordStatus.SUCCEEDED.value if status in MONEY_MOVED_STATUSES else status


UTC_MICROS: Final = pa.timestamp("us", tz="UTC")

STATEMENT_LINE_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("channel", pa.string(), nullable=False),  # channel name, as channel-gateway names it
        pa.field("business_day", pa.date32(), nullable=False),  # the statement file's day
        pa.field("line_no", pa.int64(), nullable=False),  # unique within (channel, business_day)
        pa.field("kind", pa.string(), nullable=False),  # RecordKind
        # The channel's trade number (Alipay trade_no, WeChat transaction_id) or refund number
        # (refund_id); for a card acquirer's batch line, its settlement reference. May be empty.
        pa.field("channel_txn_id", pa.string()),
        # Our id as the channel echoes it (out_trade_no / out_refund_no). May be empty (batch lines).
        pa.field("our_id", pa.string()),
        # The payment id the line belongs to (for a refund line: the refunded payment's id, from
        # out_trade_no on the refund line). May be empty (batch lines).
        pa.field("reference", pa.string()),
        # The acquirer's settlement batch this line settles, when it settles a whole batch.
        pa.field("batch_id", pa.string()),
        pa.field("amount_minor", pa.int64(), nullable=False),  # > 0
        pa.field("currency", pa.string(), nullable=False),  # ISO 4217
        pa.field("fee_minor", pa.int64()),  # what the channel charged; null when the format has none
        pa.field("status", pa.string(), nullable=False),  # RecordStatus
        pa.field("occurred_at", UTC_MICROS, nullable=False),  # the channel's time of the trade/refund
    ]
)
"""One line of a channel's daily statement, one row per line the parser read."""

INTERNAL_RECORD_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("channel", pa.string(), nullable=False),
        pa.field("business_day", pa.date32(), nullable=False),  # the statement day it should be on
        pa.field("kind", pa.string(), nullable=False),  # RecordKind
        # payment_id for a PAYMENT, refund_id for a REFUND; unique across the whole input.
        pa.field("our_id", pa.string(), nullable=False),
        # The payment_id, for a payment and for each of its refunds: the one-to-many key.
        pa.field("reference", pa.string(), nullable=False),
        # The channel's trade / refund number, when our record learned it (may be empty).
        pa.field("channel_txn_id", pa.string()),
        pa.field("amount_minor", pa.int64(), nullable=False),  # > 0
        pa.field("currency", pa.string(), nullable=False),
        pa.field("fee_minor", pa.int64()),  # the fee we expect the channel to charge; null if unknown
        pa.field("status", pa.string(), nullable=False),  # RecordStatus (latest known)
        pa.field("occurred_at", UTC_MICROS, nullable=False),  # when the money moved, per our events
        pa.field("batch_key", pa.string()),  # the settlement batch id, when known
    ]
)
"""One payment or refund as payment.events / refund.events recorded it."""


@dataclass(frozen=True)
class StatementLine:
    """A row of :data:`STATEMENT_LINE_SCHEMA` (see the module docstring for each field's rules)."""

    channel: str
    business_day: date
    line_no: int
    kind: RecordKind
    channel_txn_id: str | None
    our_id: str | None
    reference: str | None
    batch_id: str | None
    amount_minor: int
    currency: str
    fee_minor: int | None
    status: RecordStatus
    occurred_at: datetime

    def __post_init__(self) -> None:
        _check_common(self.amount_minor, self.currency, self.fee_minor, self.occurred_at)
        invariant(self.line_no >= 0, f"line_no must be >= 0, got {self.line_no}")

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


@dataclass(frozen=True)
class InternalRecord:
    """A row of :data:`INTERNAL_RECORD_SCHEMA` (see the module docstring for each field's rules)."""

    channel: str
    business_day: date
    kind: RecordKind
    our_id: str
    reference: str
    channel_txn_id: str | None
    amount_minor: int
    currency: str
    fee_minor: int | None
    status: RecordStatus
    occurred_at: datetime
    batch_key: str | None = None

    def __post_init__(self) -> None:
        _check_common(self.amount_minor, self.currency, self.fee_minor, self.occurred_at)
        invariant(bool(self.our_id), "an internal record needs its our_id")
        invariant(bool(self.reference), "an internal record needs its reference (the payment id)")

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


def _check_common(amount_minor: int, currency: str, fee_minor: int | None, occurred_at: datetime) -> None:
    invariant(amount_minor > 0, f"amount_minor must be positive (kind gives the sign), got {amount_minor}")
    exponent(currency)  # raises CurrencyError for a malformed or unknown code
    invariant(fee_minor is None or fee_minor >= 0, f"fee_minor must be >= 0 or null, got {fee_minor}")
    invariant(
        occurred_at.utcoffset() == timedelta(0), f"occurred_at must be a UTC instant, got {occurred_at!r}"
    )


def _rows(records: Iterable[StatementLine | InternalRecord]) -> list[dict[str, object]]:
    rows = []
    for record in records:
        row = asdict(record)
        row["occurred_at"] = record.occurred_at.astimezone(UTC)
        rows.append(row)
    return rows


def statement_table(lines: Iterable[StatementLine]) -> pa.Table:
    """A few lines as an Arrow table of :data:`STATEMENT_LINE_SCHEMA` (parsers, tests)."""
    return pa.Table.from_pylist(_rows(lines), schema=STATEMENT_LINE_SCHEMA)


def internal_table(records: Iterable[InternalRecord]) -> pa.Table:
    """A few records as an Arrow table of :data:`INTERNAL_RECORD_SCHEMA` (capture writer, tests)."""
    return pa.Table.from_pylist(_rows(records), schema=INTERNAL_RECORD_SCHEMA)


def schema_problems(actual: pa.Schema, expected: pa.Schema) -> list[str]:
    """What differs between a file's schema and the contract (names and types; not nullability)."""
    problems = []
    names = [field.name for field in actual]
    if names != expected.names:
        problems.append(f"columns {names} != {expected.names}")
        return problems
    for field in expected:
        got = actual.field(field.name).type
        if got != field.type:
            problems.append(f"{field.name}: {got} != {field.type}")
    return problems
