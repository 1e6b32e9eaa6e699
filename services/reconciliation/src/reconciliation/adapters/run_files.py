"""A run's files: its inputs out of PostgreSQL into Parquet, and its outcomes read back in bulk.

Nothing here makes a Python object per record: PostgreSQL streams the day's rows out with
COPY (CSV), DuckDB turns them into Parquet in the matcher's input schemas and reads the
matcher's outcome files back as column batches (discrepancies, suspense, matched payments),
which the repository inserts as arrays (paykit.db.bulk).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from reconciliation.domain.records import INTERNAL_RECORD_SCHEMA, STATEMENT_LINE_SCHEMA
from reconciliation.domain.taxonomy import DISCREPANCIES, RECONCILED, OutcomeType
from reconciliation.matching import duck

BATCH_ROWS: Final = 50_000
MEMORY_LIMIT_MB: Final = 1_024
_MISMATCHES: Final = (
    OutcomeType.AMOUNT_MISMATCH,
    OutcomeType.STATUS_MISMATCH,
    OutcomeType.FEE_MISMATCH,
    OutcomeType.CURRENCY_MISMATCH,
)
_DUCK_TYPES: Final = {
    pa.string(): "VARCHAR",
    pa.date32(): "DATE",
    pa.int64(): "BIGINT",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}
_INTERNAL_SQL: Final = ", ".join(INTERNAL_RECORD_SCHEMA.names)
_LINE_SQL: Final = ", ".join(STATEMENT_LINE_SCHEMA.names)


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _columns(schema: pa.Schema, extra: dict[str, str]) -> str:
    types = {**extra, **{f.name: _DUCK_TYPES[f.type] for f in schema}}
    return "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in types.items()) + "}"


@dataclass(frozen=True)
class RunFiles:
    """Where one run keeps its files (under RECON_WORK_DIR/<channel>/<day>/)."""

    root: Path

    @classmethod
    def for_day(cls, work_dir: Path, channel: str, day: date) -> RunFiles:
        root = work_dir / channel / day.isoformat()
        (root / "inputs").mkdir(parents=True, exist_ok=True)
        return cls(root)

    def input(self, name: str) -> Path:
        return self.root / "inputs" / name

    @property
    def matcher_dir(self) -> Path:
        return self.root / "matcher"


def _copy_out(session: Session, select_sql: str, params: dict[str, Any], target: Path) -> None:
    """SELECT ... as CSV into target, streamed by COPY (the values bound by the driver)."""
    connection = session.connection()
    dbapi = connection.connection.dbapi_connection
    if dbapi is None:
        raise RuntimeError("no database connection to COPY from")
    cursor: Any = dbapi.cursor()  # psycopg2's: mogrify and copy_expert are its own
    try:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        query = cursor.mogrify(select_sql, params).decode()
        with target.open("w", encoding="utf-8") as out:
            cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", out)
    finally:
        cursor.close()


def _csv_to_parquet(
    con: duckdb.DuckDBPyConnection,
    csv: Path,
    schema: pa.Schema,
    extra: dict[str, str],
    full: Path,
    plain: Path,
) -> int:
    """`full` keeps the extra columns (record ids); `plain` is exactly the matcher's schema."""
    columns = _columns(schema, extra)
    source = f"read_csv({duck.quote(csv)}, header = true, columns = {columns}, quote = '\"')"
    names = ", ".join([*extra, *schema.names])
    duck.run(con, f"COPY (SELECT {names} FROM {source}) TO {duck.quote(full)} (FORMAT parquet)")
    duck.run(con, f"COPY (SELECT {', '.join(schema.names)} FROM read_parquet({duck.quote(full)})) "
                  f"TO {duck.quote(plain)} (FORMAT parquet)")  # fmt: skip
    return int(pq.ParquetFile(full).metadata.num_rows)


def connect(files: RunFiles) -> duckdb.DuckDBPyConnection:
    return duck.connect(MEMORY_LIMIT_MB, 0, files.root / "spill")


def export_internal(
    session: Session, con: duckdb.DuckDBPyConnection, files: RunFiles, channel: str, day: date
) -> int:
    """The channel's internal records of the day -> internal_full.parquet (+ record_id), internal.parquet."""
    csv = files.input("internal.csv")
    _copy_out(
        session,
        f"SELECT record_id, {_INTERNAL_SQL} FROM internal_records "
        "WHERE channel = %(channel)s AND business_day = %(day)s",
        {"channel": channel, "day": day},
        csv,
    )
    return _csv_to_parquet(
        con, csv, INTERNAL_RECORD_SCHEMA, {"record_id": "BIGINT"},
        files.input("internal_full.parquet"), files.input("internal.parquet"),
    )  # fmt: skip


# The pool a run of `day` carries: what earlier days left WAITING, and what a run of this very
# day already took out of the pool (so a re-run of the day sees the same inputs again).
_POOL_WHERE: Final = """
    s.channel = %(channel)s AND s.first_seen_day < %(day)s AND (
        s.status = 'WAITING' OR s.closed_run_id IN (
            SELECT run_id FROM recon_runs WHERE channel = %(channel)s AND business_day = %(day)s))
"""


def export_pool(
    session: Session, con: duckdb.DuckDBPyConnection, files: RunFiles, channel: str, day: date
) -> tuple[Path | None, Path | None]:
    """The suspense pool -> pool_{internal,statement}[_full].parquet; (statement, internal) plain
    paths, None for a side with nothing waiting."""
    params = {"channel": channel, "day": day}
    internal_cols = ", ".join(f"r.{name}" for name in INTERNAL_RECORD_SCHEMA.names)
    line_cols = ", ".join(f"l.{name}" for name in STATEMENT_LINE_SCHEMA.names)
    _copy_out(
        session,
        f"SELECT s.item_id, r.record_id, {internal_cols} FROM suspense_items s "
        "JOIN internal_records r ON r.record_id = s.internal_record_id "
        f"WHERE s.side = 'INTERNAL' AND {_POOL_WHERE}",
        params,
        files.input("pool_internal.csv"),
    )
    _copy_out(
        session,
        f"SELECT s.item_id, l.file_id, {line_cols} FROM suspense_items s "
        "JOIN statement_lines l ON l.file_id = s.statement_file_id AND l.line_no = s.statement_line_no "
        f"WHERE s.side = 'CHANNEL' AND {_POOL_WHERE}",
        params,
        files.input("pool_statement.csv"),
    )
    internal_n = _csv_to_parquet(
        con, files.input("pool_internal.csv"), INTERNAL_RECORD_SCHEMA,
        {"item_id": "BIGINT", "record_id": "BIGINT"},
        files.input("pool_internal_full.parquet"), files.input("pool_internal.parquet"),
    )  # fmt: skip
    statement_n = _csv_to_parquet(
        con, files.input("pool_statement.csv"), STATEMENT_LINE_SCHEMA,
        {"item_id": "BIGINT", "file_id": "VARCHAR"},
        files.input("pool_statement_full.parquet"), files.input("pool_statement.parquet"),
    )  # fmt: skip
    return (
        files.input("pool_statement.parquet") if statement_n else None,
        files.input("pool_internal.parquet") if internal_n else None,
    )


def write_statement(statement: pa.Table, files: RunFiles) -> Path:
    path = files.input("statement.parquet")
    pq.write_table(statement.select(STATEMENT_LINE_SCHEMA.names).cast(STATEMENT_LINE_SCHEMA), path)
    return path


class Outcomes:
    """The matcher's outcome files joined back to the inputs, in DuckDB."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        files: RunFiles,
        outcome_files: Sequence[Path],
        statement_file_id: str,
    ) -> None:
        self.con = con
        outcomes = ", ".join(duck.quote(p) for p in outcome_files)
        f = files.input
        discrepancy_types = _sql_list(sorted(DISCREPANCIES))
        mismatches = _sql_list(list(_MISMATCHES))
        for statement in (
            f"CREATE TEMP VIEW o AS SELECT * FROM read_parquet([{outcomes}])",
            f"""CREATE TEMP TABLE ours AS
                SELECT NULL::BIGINT AS item_id, record_id, our_id, kind, channel_txn_id, fee_minor
                FROM read_parquet({duck.quote(f("internal_full.parquet"))})
                UNION ALL SELECT item_id, record_id, our_id, kind, channel_txn_id, fee_minor
                FROM read_parquet({duck.quote(f("pool_internal_full.parquet"))})""",
            f"""CREATE TEMP TABLE lines AS
                SELECT NULL::BIGINT AS item_id, {_sql_list([statement_file_id])} AS file_id,
                    business_day, line_no, channel_txn_id, our_id, fee_minor
                FROM read_parquet({duck.quote(f("statement.parquet"))})
                UNION ALL SELECT item_id, file_id, business_day, line_no, channel_txn_id, our_id, fee_minor
                FROM read_parquet({duck.quote(f("pool_statement_full.parquet"))})""",
            # One row per record of every outcome, with its ids, its fee and the key of the
            # discrepancy it belongs to: a matched group that disagrees is one discrepancy,
            # every other record (only on one side, a duplicate) is one of its own.
            f"""CREATE TEMP TABLE d AS
                SELECT o.*, i.item_id AS i_item, i.record_id, i.fee_minor AS i_fee, i.channel_txn_id AS i_txn,
                    l.item_id AS l_item, l.file_id, l.channel_txn_id AS l_txn, l.our_id AS l_our,
                    l.fee_minor AS l_fee,
                    CASE WHEN o.type IN ({mismatches}) AND o.group_id IS NOT NULL THEN 'G:' || o.group_id
                         ELSE o.side || ':' || coalesce(o.our_id, strftime(o.business_day, '%Y-%m-%d')
                              || '#' || o.line_no::VARCHAR) END AS gkey,
                    CASE WHEN o.side = 'INTERNAL' THEN 'I:' || o.kind || ':' || o.our_id
                         ELSE 'C:' || strftime(o.business_day, '%Y-%m-%d') || ':'
                              || coalesce(nullif(l.channel_txn_id, ''), '#' || o.line_no::VARCHAR)
                    END AS ident
                FROM o
                LEFT JOIN ours i ON o.side = 'INTERNAL' AND i.our_id = o.our_id AND i.kind = o.kind
                LEFT JOIN lines l ON o.side = 'CHANNEL' AND l.business_day = o.business_day
                    AND l.line_no = o.line_no""",
            f"""CREATE TEMP TABLE g AS
                SELECT type, gkey, type || '|' || string_agg(ident, ',' ORDER BY ident) AS fingerprint
                FROM d WHERE type IN ({discrepancy_types}) GROUP BY type, gkey""",
        ):
            duck.run(con, statement)

    def _batches(self, query: str) -> Iterator[dict[str, list[Any]]]:
        reader = self.con.sql(query).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            if batch.num_rows:
                yield batch.to_pydict()

    def discrepancies(self) -> Iterator[dict[str, list[Any]]]:
        """Column batches of the discrepancies found: one row per discrepancy."""
        return self._batches("""
            SELECT d.type, CASE WHEN count(DISTINCT d.side) = 2 THEN 'BOTH' ELSE min(d.side) END AS side,
                min(d.kind) AS kind, min(d.business_day) AS business_day,
                coalesce(min(d.our_id) FILTER (WHERE d.side = 'INTERNAL'), min(nullif(d.l_our, '')))
                    AS our_id,
                coalesce(min(nullif(d.l_txn, '')), min(nullif(d.i_txn, ''))) AS channel_txn_id,
                '{' || coalesce(string_agg(d.record_id::VARCHAR, ',' ORDER BY d.record_id), '') || '}'
                    AS internal_record_ids,
                min(d.file_id) AS statement_file_id,
                '{' || coalesce(string_agg(d.line_no::VARCHAR, ',' ORDER BY d.line_no), '') || '}'
                    AS statement_line_nos,
                min(d.currency) AS currency,
                sum(d.amount_minor) FILTER (WHERE d.side = 'INTERNAL') AS internal_amount_minor,
                sum(d.amount_minor) FILTER (WHERE d.side = 'CHANNEL') AS channel_amount_minor,
                sum(d.i_fee) FILTER (WHERE d.side = 'INTERNAL') AS internal_fee_minor,
                sum(d.l_fee) FILTER (WHERE d.side = 'CHANNEL') AS channel_fee_minor,
                g.fingerprint
            FROM d JOIN g USING (type, gkey)
            GROUP BY d.type, d.gkey, g.fingerprint
            ORDER BY g.fingerprint""")

    def new_suspense(self, day: date) -> Iterator[dict[str, list[Any]]]:
        """The run day's own records that wait in suspense now."""
        return self._batches(f"""
            SELECT side, kind, our_id, coalesce(nullif(l_txn, ''), nullif(i_txn, '')) AS channel_txn_id,
                record_id AS internal_record_id,
                CASE WHEN side = 'CHANNEL' THEN file_id END AS statement_file_id,
                CASE WHEN side = 'CHANNEL' THEN line_no END AS statement_line_no,
                amount_minor, currency
            FROM d WHERE type = '{OutcomeType.SUSPENSE}' AND business_day = DATE '{day.isoformat()}'""")

    def pool_outcomes(self) -> Iterator[dict[str, list[Any]]]:
        """What became of each item of the pool: its outcome and, if a discrepancy, its fingerprint."""
        return self._batches("""
            SELECT coalesce(d.i_item, d.l_item) AS item_id, d.type, g.fingerprint
            FROM d LEFT JOIN g USING (type, gkey)
            WHERE d.i_item IS NOT NULL OR d.l_item IS NOT NULL""")

    def write_matched_payments(self, target: Path) -> Path:
        """Our payment ids whose records reconciled (their funds may settle), as Parquet."""
        reconciled = _sql_list(sorted(RECONCILED))
        duck.run(
            self.con,
            f"""
            COPY (SELECT DISTINCT our_id FROM o WHERE side = 'INTERNAL' AND kind = 'PAYMENT'
                  AND type IN ({reconciled}) ORDER BY our_id) TO {duck.quote(target)} (FORMAT parquet)""",
        )
        return target


def payment_id_batches(path: Path, size: int) -> Iterator[list[str]]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=size, columns=["our_id"]):
        yield [str(v) for v in batch.column(0).to_pylist()]
