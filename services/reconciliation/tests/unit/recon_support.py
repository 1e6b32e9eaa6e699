"""Builders for hand-made statement lines and records, and a matcher run that answers
"what did this line / record come out as"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from reconciliation.domain import (
    InternalRecord,
    OutcomeType,
    RecordKind,
    RecordStatus,
    StatementLine,
    internal_table,
    statement_table,
)
from reconciliation.generator import Generated
from reconciliation.matching.config import MatchConfig
from reconciliation.matching.engine import MatchResult, SuspensePool, reconcile

DAY = date(2025, 3, 1)
NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OUTCOME_KEY = ("run_day", "side", "channel", "business_day", "line_no", "our_id")


def line(
    line_no: int,
    *,
    txn: str | None = None,
    our_id: str | None = None,
    reference: str | None = None,
    kind: RecordKind = RecordKind.PAYMENT,
    amount: int = 10_000,
    currency: str = "CNY",
    fee: int | None = 60,
    status: RecordStatus = RecordStatus.SUCCEEDED,
    at: datetime = NOON,
    batch: str | None = None,
    channel: str = "alipay",
    day: date = DAY,
) -> StatementLine:
    return StatementLine(
        channel, day, line_no, kind, txn, our_id, reference, batch, amount, currency, fee, status, at
    )


def record(
    our_id: str,
    *,
    txn: str | None = None,
    reference: str | None = None,
    kind: RecordKind = RecordKind.PAYMENT,
    amount: int = 10_000,
    currency: str = "CNY",
    fee: int | None = 60,
    status: RecordStatus = RecordStatus.SUCCEEDED,
    at: datetime = NOON,
    batch: str | None = None,
    channel: str = "alipay",
    day: date = DAY,
) -> InternalRecord:
    return InternalRecord(
        channel, day, kind, our_id, reference or our_id, txn, amount, currency, fee, status, at, batch
    )


@dataclass
class Outcomes:
    result: MatchResult
    table: pa.Table

    def rows(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()

    def of_line(self, line_no: int, day: date = DAY) -> dict[str, Any]:
        found = [
            r
            for r in self.rows()
            if r["side"] == "CHANNEL" and r["line_no"] == line_no and r["business_day"] == day
        ]
        assert len(found) == 1, f"line {line_no} of {day} has {len(found)} outcomes"
        return found[0]

    def of_record(self, our_id: str) -> dict[str, Any]:
        found = [r for r in self.rows() if r["side"] == "INTERNAL" and r["our_id"] == our_id]
        assert len(found) == 1, f"record {our_id} has {len(found)} outcomes"
        return found[0]

    def type_of_line(self, line_no: int, day: date = DAY) -> OutcomeType:
        return OutcomeType(self.of_line(line_no, day)["type"])

    def type_of_record(self, our_id: str) -> OutcomeType:
        return OutcomeType(self.of_record(our_id)["type"])

    def types(self) -> Counter[str]:
        return Counter(r["type"] for r in self.rows())


def match(
    workdir: Path,
    lines: Iterable[StatementLine],
    records: Iterable[InternalRecord],
    *,
    run_day: date = DAY,
    config: MatchConfig | None = None,
    pool: SuspensePool | None = None,
) -> Outcomes:
    result = reconcile(
        run_day, statement_table(lines), internal_table(records), workdir, config=config, pool=pool
    )
    return Outcomes(result, result.outcomes())


def sorted_rows(table: pa.Table) -> list[dict[str, Any]]:
    return table.sort_by([(name, "ascending") for name in table.column_names]).to_pylist()


def check_against_truth(
    outcomes: pa.Table, generated: Generated, run_day: date
) -> tuple[list[Any], list[Any]]:
    """(planted records whose outcome differs from the truth, unplanted records not MATCHED)."""
    truth = generated.truth.filter(pc.equal(generated.truth["run_day"], pa.scalar(run_day, pa.date32())))
    # One key column per record (line_no for a line, our_id for a record): equi-joins only.
    key = "coalesce(CAST(line_no AS VARCHAR), our_id) AS record_key"
    on = " AND ".join(f"o.{c} = t.{c}" for c in ("side", "channel", "business_day", "record_key"))
    con = duckdb.connect()
    try:
        con.register("outcomes", outcomes)
        con.register("truth", truth)
        for statement in (
            f"CREATE VIEW o AS SELECT *, {key} FROM outcomes",
            f"CREATE VIEW t AS SELECT *, {key} FROM truth",
        ):
            con.execute(statement)
            con.complete()
        wrong = con.sql(
            f"""SELECT t.case, t.side, t.line_no, t.our_id, t.expected, o.type FROM t LEFT JOIN o ON {on}
                WHERE o.type IS DISTINCT FROM t.expected ORDER BY ALL"""
        ).fetchall()
        false_positives = con.sql(
            f"""SELECT o.side, o.line_no, o.our_id, o.type, o.match_pass FROM o ANTI JOIN t ON {on}
                WHERE o.type <> 'MATCHED' ORDER BY ALL"""
        ).fetchall()
    finally:
        con.close()
    return wrong, false_positives
