"""What every statement parser shares: strict errors that name file, line and field, and the
columns a parse produces (the statement-line schema of reconciliation.domain).

Parsers are strict on purpose: a statement is evidence about money. A line that cannot be
read, a column that is missing or unknown, a summary that disagrees with the lines, a file
that stops before its end marker: each refuses the whole file, so nothing is half-imported.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from paykit.money import AmountError, CurrencyError, Money


class StatementError(ValueError):
    """A statement file that must not be imported, with where and why."""

    def __init__(
        self, filename: str, reason: str, line: int | None = None, column: str | None = None
    ) -> None:
        where = filename
        if line is not None:
            where += f" line {line}"
        if column is not None:
            where += f", field {column}"
        super().__init__(f"{where}: {reason}")
        self.filename = filename
        self.line = line
        self.column = column
        self.reason = reason


# The columns of a parsed statement, in reconciliation.domain's statement-line order.
COLUMNS = (
    "channel", "business_day", "line_no", "kind", "channel_txn_id", "our_id", "reference",
    "batch_id", "amount_minor", "currency", "fee_minor", "status", "occurred_at",
)  # fmt: skip

PAYMENT = "PAYMENT"
REFUND = "REFUND"


@dataclass
class ParsedStatement:
    """The lines of one statement file as columns, with what identifies the file."""

    format: str
    channel: str
    business_day: date
    filename: str
    sha256: str
    account: str
    columns: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in COLUMNS})

    @property
    def line_count(self) -> int:
        return len(self.columns["line_no"])

    def add(self, **values: Any) -> None:
        for name in COLUMNS:
            self.columns[name].append(values.get(name))

    def to_arrow(self) -> Any:
        """A pyarrow Table with the statement-line schema (imported lazily: parsing needs none)."""
        import pyarrow as pa

        return pa.table(self.columns)


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


CHINA = timezone(timedelta(hours=8))
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


class LineReader:
    """Field readers for one line that raise StatementError naming the line and field."""

    def __init__(self, filename: str, line_no: int, values: dict[str, str]) -> None:
        self.filename = filename
        self.line_no = line_no
        self.values = values

    def fail(self, column: str | None, reason: str) -> StatementError:
        return StatementError(self.filename, reason, self.line_no, column)

    def text(self, column: str, *, required: bool = True, max_chars: int = 128) -> str:
        value = self.values[column]
        if required and not value:
            raise self.fail(column, "is empty")
        if len(value) > max_chars:
            raise self.fail(column, f"is longer than {max_chars} characters")
        return value

    def money(self, column: str, currency: str, *, negative: bool = False) -> Money:
        value = self.values[column]
        try:
            return Money.parse(value, currency, allow_negative=negative)
        except (AmountError, CurrencyError) as exc:
            raise self.fail(column, str(exc)) from None

    def timestamp(self, column: str, tz: timezone = CHINA) -> datetime:
        """ "yyyy-MM-dd HH:mm:ss" in the channel's zone -> UTC."""
        value = self.values[column]
        if not _TIMESTAMP.fullmatch(value):
            raise self.fail(column, f"{value!r} is not yyyy-MM-dd HH:mm:ss")
        try:
            local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)
        except ValueError:
            raise self.fail(column, f"{value!r} is not a date and time") from None
        return local.astimezone(UTC)

    def one_of(self, column: str, allowed: dict[str, str]) -> str:
        value = self.values[column]
        if value not in allowed:
            raise self.fail(column, f"{value!r} is not one of {', '.join(sorted(allowed))}")
        return allowed[value]


def decode(content: bytes, encoding: str, filename: str) -> str:
    """The whole file as text; a byte that is not `encoding` is reported with its line."""
    try:
        return content.decode(encoding)
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise StatementError(
            filename, f"not {encoding} (byte 0x{content[exc.start]:02x} at offset {exc.start})", line
        ) from None


def check_header(filename: str, line_no: int, found: list[str], expected: tuple[str, ...]) -> None:
    """The header must be exactly the expected columns, in order: an unknown or missing column
    means the format changed, and guessing which column is which would misread money."""
    if found == list(expected):
        return
    missing = [c for c in expected if c not in found]
    unknown = [c for c in found if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        parts.append(f"unknown column(s) {', '.join(unknown)}")
    if not parts:
        parts.append("columns are out of order")
    raise StatementError(filename, "; ".join(parts), line_no)


def check_total(
    filename: str, line_no: int, what: str, stated: int, counted: int, currency: str | None = None
) -> None:
    """A control total against the lines; amounts (minor units of `currency`) shown as decimals."""
    if stated != counted:
        shown = (
            (Money(stated, currency).format(), Money(counted, currency).format())
            if currency
            else (str(stated), str(counted))
        )
        raise StatementError(
            filename, f"the summary says {what} is {shown[0]}, the lines add up to {shown[1]}", line_no
        )
