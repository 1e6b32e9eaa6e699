"""The card acquirer's settlement statement: UTF-8 CSV of batch settlement lines.

    # settlement,merchant=<merchant id>,date=2026-11-24
    record_type,batch_id,line_ref,type,count,gross,fees,net,currency,settled_at
    BATCH,B20261124-001,1,SALE,120,12000.00,348.00,11652.00,USD,2026-11-24T23:30:00Z
    BATCH,B20261124-001,2,REFUND,3,300.00,0.00,-300.00,USD,2026-11-24T23:30:00Z
    TRAILER,,,,123,12300.00,348.00,11352.00,USD,

The acquirer settles in batches, not per payment: a batch's sales (and its refunds) arrive as
one or more lines, so matching is many-to-many by batch (our captures carry the batch id the
acquirer gave them). gross is positive on both types; net = gross - fees for a SALE and
-(gross) - fees for a REFUND. One currency per file; the trailer sums count, gross (sales
plus refunds), fees and net over every BATCH line.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

from reconciliation.statements.base import (
    PAYMENT,
    REFUND,
    LineReader,
    ParsedStatement,
    StatementError,
    check_header,
    check_total,
    decode,
    digest,
)

FORMAT = "card-settlement-csv"
HEADER = (
    "record_type",
    "batch_id",
    "line_ref",
    "type",
    "count",
    "gross",
    "fees",
    "net",
    "currency",
    "settled_at",
)
TYPES = {"SALE": PAYMENT, "REFUND": REFUND}
_PREAMBLE = re.compile(r"# settlement,merchant=([^,]+),date=(\d{4}-\d{2}-\d{2})")
_SETTLED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def parse(content: bytes, filename: str, channel: str, day: date) -> ParsedStatement:
    lines = decode(content, "utf-8", filename).splitlines()
    preamble = _PREAMBLE.fullmatch(lines[0].strip()) if lines else None
    if preamble is None:
        raise StatementError(filename, "expected '# settlement,merchant=<id>,date=<yyyy-mm-dd>'", 1)
    if preamble.group(2) != day.isoformat():
        raise StatementError(filename, f"is the statement of {preamble.group(2)}, not of {day}", 1)
    if len(lines) < 2:
        raise StatementError(filename, "truncated: no header line", 2)
    check_header(filename, 2, next(csv.reader([lines[1]])), HEADER)
    parsed = ParsedStatement(FORMAT, channel, day, filename, digest(content), preamble.group(1))
    totals = {"count": 0, "gross": 0, "fees": 0, "net": 0}
    currency = ""
    seen: set[tuple[str, str]] = set()
    for index in range(2, len(lines)):
        row = next(csv.reader(io.StringIO(lines[index])))
        if len(row) != len(HEADER):
            raise StatementError(filename, f"has {len(row)} fields, the header has {len(HEADER)}", index + 1)
        reader = LineReader(filename, index + 1, dict(zip(HEADER, row, strict=True)))
        record = reader.one_of("record_type", {"BATCH": "BATCH", "TRAILER": "TRAILER"})
        line_currency = reader.text("currency", max_chars=3)
        if currency and line_currency != currency:
            raise reader.fail("currency", f"{line_currency} in a {currency} statement")
        currency = line_currency
        if record == "TRAILER":
            if index + 1 != len(lines):
                raise StatementError(filename, "lines after the trailer", index + 2)
            _check_trailer(reader, totals, currency)
            return parsed
        batch_id, line_ref = reader.text("batch_id"), reader.text("line_ref")
        if (batch_id, line_ref) in seen:
            raise reader.fail("line_ref", f"batch {batch_id} line {line_ref} appears twice")
        seen.add((batch_id, line_ref))
        kind = reader.one_of("type", TYPES)
        count = _count(reader)
        gross = reader.money("gross", currency)
        fees = reader.money("fees", currency)
        net = reader.money("net", currency, negative=True)
        expected_net = (gross - fees) if kind == PAYMENT else (gross.negate() - fees)
        if net != expected_net:
            raise reader.fail("net", f"{net.format()} is not {expected_net.format()} (gross and fees)")
        totals["count"] += count
        totals["gross"] += gross.minor
        totals["fees"] += fees.minor
        totals["net"] += net.minor
        parsed.add(
            channel=channel,
            business_day=day,
            line_no=index + 1,
            kind=kind,
            channel_txn_id="",
            our_id="",
            reference="",
            batch_id=batch_id,
            amount_minor=gross.minor,
            currency=currency,
            fee_minor=fees.minor,
            status="SUCCEEDED",
            occurred_at=_settled_at(reader),
        )
    raise StatementError(filename, "truncated: no TRAILER line", len(lines))


def _count(reader: LineReader) -> int:
    text = reader.text("count")
    if not text.isdigit() or int(text) == 0:
        raise reader.fail("count", f"{text!r} is not a positive count")
    return int(text)


def _settled_at(reader: LineReader) -> datetime:
    text = reader.text("settled_at")
    if not _SETTLED_AT.fullmatch(text):
        raise reader.fail("settled_at", f"{text!r} is not yyyy-mm-ddThh:mm:ssZ")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise reader.fail("settled_at", f"{text!r} is not a date and time") from None


def _check_trailer(reader: LineReader, totals: dict[str, int], currency: str) -> None:
    line = reader.line_no
    check_total(reader.filename, line, "count", _count(reader), totals["count"])
    for column in ("gross", "fees", "net"):
        stated = reader.money(column, currency, negative=column == "net").minor
        check_total(reader.filename, line, column, stated, totals[column], currency)
