"""The matcher: one business day's statement lines against our records, in DuckDB.

Everything is SQL over Parquet (Arrow tables are written to Parquet first); no Python object
is made per record. The passes, in order, each over what the earlier ones left:

0. Duplicates. A channel transaction id seen twice on one side (same channel and kind): the
   extra occurrences are DUPLICATE and leave the matching; the first one stays (statement:
   lowest business_day, line_no; ours: the one whose our_id the channel echoes for that id,
   then the earliest, then the lowest our_id). Found by grouping a 64-bit hash of the key
   (cheap), then ranked by the exact key, so a hash collision can never invent a duplicate.
1. CHANNEL_TXN_ID, one-to-one: a full outer join on (channel, kind, channel_txn_id), streamed
   straight into the outcome files: pairs are classified and written, the rest is kept.
2. OUR_ID, one-to-one: the channel's echo of our id, when exactly one line and one record
   carry it and their times lie within time_tolerance_s.
3. REFERENCE, one-to-many / many-to-one: all remaining lines and records of one
   (channel, kind, reference), both sides present, within time_tolerance_s, compared by sums.
4. BATCH, many-to-many: remaining lines by batch_id and records by batch_key, per channel,
   compared by sums signed by kind (a batch nets payments and refunds).
5. The rest: SUSPENSE when within suspense_window_s of the record's business-day cut-off and
   younger than suspense_max_days, else CHANNEL_ONLY / INTERNAL_ONLY.

Pairs and groups are classified by rules.classify (taxonomy.MISMATCH_PRECEDENCE).

Memory: the only large state is pass 1's hash table; DuckDB keeps it under memory_limit_mb
and spills to <workdir>/spill beyond that. Leftovers (a few percent of a normal day) are
small tables.

Output, under <workdir>/run-<day>/: outcomes/*.parquet (taxonomy.OUTCOME_SCHEMA, one row per
record), suspense/statement.parquet and suspense/internal.parquet (the pool for the next run,
in the input schemas), and the summary as an Arrow table.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final, TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from paykit.errors import invariant

from reconciliation.domain.records import (
    INTERNAL_RECORD_SCHEMA,
    STATEMENT_LINE_SCHEMA,
    Side,
    schema_problems,
)
from reconciliation.domain.taxonomy import OUTCOME_SCHEMA, SUMMARY_SCHEMA, MatchPass, OutcomeType
from reconciliation.matching import duck, rules
from reconciliation.matching.config import SECONDS_PER_DAY, MatchConfig

Source: TypeAlias = pa.Table | Path | Sequence[Path]

MAX_INPUT_FILES: Final[int] = 10_000
ROW_ID_FILE_SHIFT: Final[int] = 40  # rid = file_index << 40 | row number: 2**40 rows per file
MICROS_PER_S: Final[int] = 1_000_000
CH: Final = Side.CHANNEL.value
IN: Final = Side.INTERNAL.value

# The columns of both sides, aligned (a statement line has no batch_key, a record no line_no).
_ALIGNED: Final[str] = (
    "rid, channel, business_day, line_no, kind, txn, our_id, reference, batch, "
    "amount_minor, currency, fee_minor, status, occurred_at"
)

# What pass 1 needs of each side: the key, what it classifies on, and the outcome's identity.
_PASS1_COLUMNS: Final[str] = (
    "rid, channel, business_day, line_no, our_id, kind, txn, amount_minor, currency, fee_minor, status"
)


@dataclass(frozen=True)
class SuspensePool:
    """Records held in suspense by a run, in the input schemas: add them to the next run."""

    statement: Path | None = None
    internal: Path | None = None


@dataclass(frozen=True)
class MatchResult:
    run_day: date
    outcome_files: tuple[Path, ...]
    summary: pa.Table  # SUMMARY_SCHEMA
    suspense: SuspensePool
    statement_lines: int
    internal_records: int
    timings_s: dict[str, float] = field(default_factory=dict)

    def outcomes(self) -> pa.Table:
        """The whole outcome table in memory: for tests and small days only."""
        tables = [pq.read_table(path).cast(OUTCOME_SCHEMA) for path in self.outcome_files]
        return pa.concat_tables(tables) if tables else OUTCOME_SCHEMA.empty_table()

    def count(self, outcome: OutcomeType) -> int:
        return sum(row["records"] for row in self.summary.to_pylist() if row["type"] == outcome.value)


def reconcile(
    run_day: date,
    statement: Source,
    internal: Source,
    workdir: Path,
    *,
    config: MatchConfig | None = None,
    pool: SuspensePool | None = None,
) -> MatchResult:
    """Match run_day's statement lines against our records (plus the previous run's suspense
    pool) and write the outcomes; see the module docstring for the passes."""
    config = config or MatchConfig()
    out = workdir / f"run-{run_day.isoformat()}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pool = pool or SuspensePool()
    statement_files = _files(statement, out / "inputs" / "statement.parquet", STATEMENT_LINE_SCHEMA)
    internal_files = _files(internal, out / "inputs" / "internal.parquet", INTERNAL_RECORD_SCHEMA)
    statement_files += [pool.statement] if pool.statement else []
    internal_files += [pool.internal] if pool.internal else []
    for path in statement_files:
        _check_schema(path, STATEMENT_LINE_SCHEMA)
    for path in internal_files:
        _check_schema(path, INTERNAL_RECORD_SCHEMA)
    spill = out / "spill"
    con = duck.connect(config.memory_limit_mb, config.threads, spill)
    try:
        return _Matcher(con, config, run_day, out).run(statement_files, internal_files)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _files(source: Source, target: Path, schema: pa.Schema) -> list[Path]:
    if isinstance(source, pa.Table):
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(source.select(schema.names).cast(schema), target)
        return [target]
    paths = [source] if isinstance(source, Path) else list(source)
    invariant(0 < len(paths) <= MAX_INPUT_FILES, f"1..{MAX_INPUT_FILES} input files, got {len(paths)}")
    return paths


def _check_schema(path: Path, expected: pa.Schema) -> None:
    problems = schema_problems(pq.read_schema(path), expected)
    invariant(not problems, f"{path}: not the expected schema: {'; '.join(problems)}")


class _Matcher:
    def __init__(self, con: duckdb.DuckDBPyConnection, config: MatchConfig, run_day: date, out: Path) -> None:
        self.con = con
        self.config = config
        self.run_day = run_day
        self.out = out
        self.timings_s: dict[str, float] = {}
        self.div = rules.duckdb_div

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings_s[step] = round(time.perf_counter() - started, 3)

    def _run(self, statement: str) -> None:
        duck.run(self.con, statement)

    def run(self, statement_files: list[Path], internal_files: list[Path]) -> MatchResult:
        with self._timed("inputs"):
            self._sources(statement_files, internal_files)
            lines, records = self._check_inputs()
        with self._timed("duplicates"):
            self._duplicates()
        with self._timed("pass_channel_txn_id"):
            matched_files, left_dir = self._pass_channel_txn_id()
        with self._timed("leftovers"):
            self._leftovers(left_dir)
        with self._timed("passes_our_id_reference_batch"):
            self._group_passes()
        with self._timed("rest_and_suspense"):
            rest = self._write_rest()
            pool = self._write_pool()
        files = (*matched_files, rest)
        with self._timed("summary"):
            summary = self._summary(files, lines, records)
        return MatchResult(self.run_day, files, summary, pool, lines, records, self.timings_s)

    # -- inputs -----------------------------------------------------------------------------

    def _sources(self, statement_files: list[Path], internal_files: list[Path]) -> None:
        rid = f"(file_index::BIGINT << {ROW_ID_FILE_SHIFT}) | file_row_number AS rid"
        files = {
            CH: ", ".join(map(duck.quote, statement_files)),
            IN: ", ".join(map(duck.quote, internal_files)),
        }
        self._run(f"""
            CREATE TEMP VIEW s_src AS SELECT {rid}, channel, business_day, line_no, kind,
                nullif(channel_txn_id, '') AS txn, nullif(our_id, '') AS our_id,
                nullif(reference, '') AS reference, nullif(batch_id, '') AS batch,
                amount_minor, currency, fee_minor, status, occurred_at
            FROM read_parquet([{files[CH]}], file_row_number = true)""")
        self._run(f"""
            CREATE TEMP VIEW i_src AS SELECT {rid}, channel, business_day, NULL::BIGINT AS line_no, kind,
                nullif(channel_txn_id, '') AS txn, our_id, reference, nullif(batch_key, '') AS batch,
                amount_minor, currency, fee_minor, status, occurred_at
            FROM read_parquet([{files[IN]}], file_row_number = true)""")

    def _check_inputs(self) -> tuple[int, int]:
        """Counts per side, and the invariants the passes rely on (one scan of cheap columns)."""
        oldest = f"DATE '{self.run_day.isoformat()}' - {self.config.suspense_max_days}"
        counts = []
        for view, identity in (("s_src", "line_no"), ("i_src", "our_id")):
            rows, bad = (
                duck.arrow(
                    self.con,
                    f"""SELECT count(*) AS n, count(*) FILTER (WHERE amount_minor IS NULL OR amount_minor <= 0
                        OR business_day IS NULL OR business_day > DATE '{self.run_day.isoformat()}'
                        OR business_day < {oldest} OR {identity} IS NULL OR channel IS NULL
                        OR kind NOT IN ('PAYMENT', 'REFUND') OR currency IS NULL
                        OR occurred_at IS NULL) AS bad
                    FROM {view}""",
                )
                .to_pylist()[0]
                .values()
            )
            invariant(
                bad == 0,
                f"{view}: {bad} rows with a non-positive amount, a business_day outside "
                f"[{oldest}, {self.run_day}], an unknown kind or a missing required field",
            )
            counts.append(int(rows))
        return counts[0], counts[1]

    # -- pass 0: duplicates -----------------------------------------------------------------

    def _duplicates(self) -> None:
        key = "hash(channel, kind, txn)"
        self._run(f"""
            CREATE TEMP TABLE dup_keys AS
            SELECT '{CH}' AS side, hk FROM (SELECT {key} AS hk FROM s_src WHERE txn IS NOT NULL)
                GROUP BY hk HAVING count(*) > 1
            UNION ALL
            SELECT '{IN}' AS side, hk FROM (SELECT {key} AS hk FROM i_src WHERE txn IS NOT NULL)
                GROUP BY hk HAVING count(*) > 1""")
        candidates = f"txn IS NOT NULL AND {key} IN (SELECT hk FROM dup_keys WHERE side = '{{side}}')"
        identity = "channel, business_day, line_no, our_id, kind, txn, amount_minor, currency"
        self._run(f"""
            CREATE TEMP TABLE dup AS
            WITH s AS (
                SELECT *, row_number() OVER w AS rn, first_value(rid) OVER w AS original_rid
                FROM (SELECT * FROM s_src WHERE {candidates.format(side=CH)})
                WINDOW w AS (PARTITION BY channel, kind, txn ORDER BY business_day, line_no)),
            echoes AS (
                SELECT DISTINCT channel, kind, txn, our_id FROM s_src
                WHERE our_id IS NOT NULL AND {candidates.format(side=IN)}),
            i AS (
                SELECT i.*, row_number() OVER w AS rn, first_value(i.rid) OVER w AS original_rid
                FROM (SELECT * FROM i_src WHERE {candidates.format(side=IN)}) i
                LEFT JOIN echoes e USING (channel, kind, txn, our_id)
                WINDOW w AS (PARTITION BY i.channel, i.kind, i.txn
                             ORDER BY e.our_id IS NULL, i.occurred_at, i.our_id))
            SELECT '{CH}' AS side, rid, original_rid, {identity} FROM s WHERE rn > 1
            UNION ALL
            SELECT '{IN}' AS side, rid, original_rid, {identity} FROM i WHERE rn > 1""")

    # -- pass 1: one-to-one on the channel transaction id ------------------------------------

    def _pass_channel_txn_id(self) -> tuple[list[Path], Path]:
        """Full outer join streamed into two partitions: classified pairs and everything else."""
        staging = self.out / "pass1"
        pair = rules.classify_pair("s", "i", self.config, self.div)
        pass1_gid = rules.group_id(MatchPass.CHANNEL_TXN_ID, "s.kind", "s.txn")
        amount_diff = (
            f"{rules.signed('s.amount_minor', 's.kind')} - {rules.signed('i.amount_minor', 'i.kind')}"
        )
        fee_diff = f"{rules.signed('s.fee_minor', 's.kind')} - {rules.signed('i.fee_minor', 'i.kind')}"

        def side(channel: str, ours: str) -> str:  # x: 0 for the line's row, 1 for the record's
            return f"CASE x WHEN 0 THEN {channel} ELSE {ours} END"

        self._run(f"""
            COPY (
                WITH s AS (SELECT {_PASS1_COLUMNS} FROM s_src
                           WHERE rid NOT IN (SELECT rid FROM dup WHERE side = '{CH}')),
                i AS (SELECT {_PASS1_COLUMNS} FROM i_src
                      WHERE rid NOT IN (SELECT rid FROM dup WHERE side = '{IN}')),
                j AS (
                    SELECT s.rid AS s_rid, i.rid AS i_rid, s.channel AS s_channel, i.channel AS i_channel,
                        s.business_day AS s_day, i.business_day AS i_day, s.line_no, i.our_id,
                        s.kind AS s_kind, i.kind AS i_kind,
                        s.amount_minor AS s_amount, i.amount_minor AS i_amount,
                        s.currency AS s_currency, i.currency AS i_currency,
                        {pair} AS type, {pass1_gid} AS group_id,
                        {amount_diff} AS amount_diff_minor, {fee_diff} AS fee_diff_minor
                    FROM s FULL OUTER JOIN i ON s.channel = i.channel AND s.kind = i.kind AND s.txn = i.txn)
                SELECT
                    CASE WHEN s_rid IS NOT NULL AND i_rid IS NOT NULL THEN 'matched' ELSE 'left' END AS part,
                    DATE '{self.run_day.isoformat()}' AS run_day,
                    {side(f"'{CH}'", f"'{IN}'")} AS side,
                    {side("s_channel", "i_channel")} AS channel,
                    {side("s_day", "i_day")} AS business_day,
                    {side("line_no", "NULL")} AS line_no,
                    {side("NULL", "our_id")} AS our_id,
                    {side("s_kind", "i_kind")} AS kind,
                    {side("s_amount", "i_amount")} AS amount_minor,
                    {side("s_currency", "i_currency")} AS currency,
                    type, '{MatchPass.CHANNEL_TXN_ID.value}' AS match_pass, group_id,
                    amount_diff_minor, fee_diff_minor
                FROM j CROSS JOIN (VALUES (0), (1)) AS v(x)
                WHERE (x = 0 AND s_rid IS NOT NULL) OR (x = 1 AND i_rid IS NOT NULL)
            ) TO {duck.quote(staging)} (FORMAT parquet, PARTITION_BY (part))""")
        outcomes = self.out / "outcomes"
        outcomes.mkdir()
        matched = []
        for n, path in enumerate(sorted((staging / "part=matched").glob("*.parquet"))):
            target = outcomes / f"pass1-{n:04d}.parquet"
            path.rename(target)
            matched.append(target)
        return matched, staging / "part=left"

    # -- what pass 1 left ---------------------------------------------------------------------

    def _leftovers(self, left_dir: Path) -> None:
        left = (
            f"read_parquet({duck.quote(left_dir / '*.parquet')})" if any(left_dir.glob("*.parquet")) else None
        )
        for view, table, side, key in (
            ("s_src", "s1", CH, "channel, business_day, line_no"),
            ("i_src", "i1", IN, "channel, our_id"),
        ):
            if left is None:
                self._run(f"CREATE TEMP TABLE {table} AS SELECT {_ALIGNED} FROM {view} LIMIT 0")
                continue
            self._run(f"""
                CREATE TEMP TABLE {table} AS SELECT {_ALIGNED} FROM {view}
                SEMI JOIN (SELECT {key} FROM {left} WHERE side = '{side}') AS l USING ({key})""")
        self._run("CREATE TEMP TABLE m (side VARCHAR, rid BIGINT, match_pass VARCHAR, group_id VARCHAR)")
        shutil.rmtree(left_dir.parent, ignore_errors=True)  # pass 1's staging: read, no longer needed

    # -- passes 2, 3, 4 -------------------------------------------------------------------------

    def _group_passes(self) -> None:
        self._group_pass(MatchPass.OUR_ID, "our_id", by_kind=True, one_to_one=True, timed=True)
        self._group_pass(MatchPass.REFERENCE, "reference", by_kind=True, one_to_one=False, timed=True)
        self._group_pass(MatchPass.BATCH, "batch", by_kind=False, one_to_one=False, timed=False)
        self._classify_groups()

    def _group_pass(
        self, match_pass: MatchPass, key: str, *, by_kind: bool, one_to_one: bool, timed: bool
    ) -> None:
        kind = "kind" if by_kind else "NULL"
        candidates = " UNION ALL ".join(
            f"""SELECT '{side}' AS side, rid, channel, {kind} AS kind_key, {key} AS k, occurred_at
                FROM {table}
                WHERE {key} IS NOT NULL AND rid NOT IN (SELECT rid FROM m WHERE side = '{side}')"""
            for side, table in ((CH, "s1"), (IN, "i1"))
        )
        lines = f"count(*) FILTER (WHERE side = '{CH}')"
        records = f"count(*) FILTER (WHERE side = '{IN}')"
        having = f"{lines} = 1 AND {records} = 1" if one_to_one else f"{lines} >= 1 AND {records} >= 1"
        if timed:
            tolerance_us = self.config.time_tolerance_s * MICROS_PER_S
            having += f" AND epoch_us(max(occurred_at)) - epoch_us(min(occurred_at)) <= {tolerance_us}"
        gid = rules.group_id(match_pass, "c.kind_key" if by_kind else None, "c.k")
        self._run(f"""
            INSERT INTO m
            WITH c AS ({candidates}),
            g AS (SELECT channel, kind_key, k FROM c GROUP BY channel, kind_key, k HAVING {having})
            SELECT c.side, c.rid, '{match_pass.value}', {gid}
            FROM c JOIN g ON c.channel = g.channel AND c.kind_key IS NOT DISTINCT FROM g.kind_key
                AND c.k = g.k""")

    def _classify_groups(self) -> None:
        status = rules.comparable_status("status")
        net = rules.signed("amount_minor", "kind")
        fee = rules.signed("fee_minor", "kind")
        type_sql = rules.classify(
            currencies_differ="n_currencies > 1",
            channel_net="channel_net",
            our_net="our_net",
            statuses_differ="n_statuses > 1",
            fees_known="fees_known",
            channel_fee_net="channel_fee_net",
            our_fee_net="our_fee_net",
            config=self.config,
            div=self.div,
        )
        self._run(f"""
            CREATE TEMP TABLE gm AS
            SELECT m.side, m.match_pass, m.group_id, r.* FROM m JOIN s1 r ON m.side = '{CH}' AND r.rid = m.rid
            UNION ALL
            SELECT m.side, m.match_pass, m.group_id, r.* FROM m JOIN i1 r
                ON m.side = '{IN}' AND r.rid = m.rid""")
        self._run(f"""
            CREATE TEMP TABLE gc AS
            WITH a AS (
                SELECT channel, group_id,
                    count(DISTINCT currency) AS n_currencies, count(DISTINCT {status}) AS n_statuses,
                    coalesce(sum({net}) FILTER (WHERE side = '{CH}'), 0) AS channel_net,
                    coalesce(sum({net}) FILTER (WHERE side = '{IN}'), 0) AS our_net,
                    bool_and(fee_minor IS NOT NULL) AS fees_known,
                    coalesce(sum({fee}) FILTER (WHERE side = '{CH}'), 0) AS channel_fee_net,
                    coalesce(sum({fee}) FILTER (WHERE side = '{IN}'), 0) AS our_fee_net
                FROM gm GROUP BY channel, group_id)
            SELECT channel, group_id, {type_sql} AS type, channel_net - our_net AS amount_diff_minor,
                CASE WHEN fees_known THEN channel_fee_net - our_fee_net END AS fee_diff_minor
            FROM a""")

    # -- outcomes of everything but pass 1, and the suspense pool ----------------------------

    def _unmatched_type(self, side: str) -> str:
        """SUSPENSE near the record's business-day cut-off and young enough; else X_ONLY."""
        cutoff_us = (
            f"((date_diff('day', DATE '1970-01-01', business_day) + 1) * {SECONDS_PER_DAY} "
            f"+ {self.config.cutoff_offset_s}) * {MICROS_PER_S}"
        )
        near = f"abs(epoch_us(occurred_at) - {cutoff_us}) <= {self.config.suspense_window_s * MICROS_PER_S}"
        young = f"DATE '{self.run_day.isoformat()}' - business_day < {self.config.suspense_max_days}"
        only = OutcomeType.CHANNEL_ONLY if side == CH else OutcomeType.INTERNAL_ONLY
        return f"CASE WHEN {near} AND {young} THEN '{OutcomeType.SUSPENSE.value}' ELSE '{only.value}' END"

    def _write_rest(self) -> Path:
        day = f"DATE '{self.run_day.isoformat()}'"
        ours_only = f"CASE WHEN side = '{CH}' THEN NULL ELSE our_id END"
        pass1_gid = rules.group_id(MatchPass.CHANNEL_TXN_ID, "d.kind", "d.txn")
        self._run(f"""
            CREATE TEMP TABLE unmatched AS
            SELECT '{CH}' AS side, *, {self._unmatched_type(CH)} AS type FROM s1
                WHERE rid NOT IN (SELECT rid FROM m WHERE side = '{CH}')
            UNION ALL
            SELECT '{IN}' AS side, *, {self._unmatched_type(IN)} AS type FROM i1
                WHERE rid NOT IN (SELECT rid FROM m WHERE side = '{IN}')""")
        path = self.out / "outcomes" / "rest.parquet"
        self._run(f"""
            COPY (
                SELECT {day} AS run_day, gm.side, gm.channel, business_day, line_no, {ours_only} AS our_id,
                    kind, amount_minor, currency, gc.type, gm.match_pass, gm.group_id,
                    gc.amount_diff_minor, gc.fee_diff_minor
                FROM gm JOIN gc USING (channel, group_id)
                UNION ALL
                SELECT {day}, side, channel, business_day, line_no, {ours_only}, kind, amount_minor, currency,
                    type, NULL, NULL, NULL, NULL
                FROM unmatched
                UNION ALL
                SELECT {day}, d.side, d.channel, d.business_day, d.line_no,
                    CASE WHEN d.side = '{CH}' THEN NULL ELSE d.our_id END,
                    d.kind, d.amount_minor, d.currency,
                    '{OutcomeType.DUPLICATE.value}', NULL,
                    CASE WHEN o.rid IS NULL THEN {pass1_gid} ELSE om.group_id END, NULL, NULL
                FROM dup d
                LEFT JOIN (SELECT '{CH}' AS side, rid FROM s1 UNION ALL SELECT '{IN}', rid FROM i1) o
                    ON o.side = d.side AND o.rid = d.original_rid
                LEFT JOIN m om ON om.side = d.side AND om.rid = d.original_rid
            ) TO {duck.quote(path)} (FORMAT parquet)""")
        return path

    def _write_pool(self) -> SuspensePool:
        pool = self.out / "suspense"
        pool.mkdir()
        statement = pool / "statement.parquet"
        internal = pool / "internal.parquet"
        held = f"type = '{OutcomeType.SUSPENSE.value}'"
        self._run(f"""
            COPY (SELECT channel, business_day, line_no, kind, txn AS channel_txn_id, our_id, reference,
                    batch AS batch_id, amount_minor, currency, fee_minor, status, occurred_at
                  FROM unmatched WHERE side = '{CH}' AND {held})
            TO {duck.quote(statement)} (FORMAT parquet)""")
        self._run(f"""
            COPY (SELECT channel, business_day, kind, our_id, reference, txn AS channel_txn_id, amount_minor,
                    currency, fee_minor, status, occurred_at, batch AS batch_key
                  FROM unmatched WHERE side = '{IN}' AND {held})
            TO {duck.quote(internal)} (FORMAT parquet)""")
        return SuspensePool(statement, internal)

    def _summary(self, files: tuple[Path, ...], lines: int, records: int) -> pa.Table:
        listed = ", ".join(map(duck.quote, files))
        summary = duck.arrow(
            self.con,
            f"""SELECT type, side, currency, count(*) AS records, sum(amount_minor) AS amount_minor
                FROM read_parquet([{listed}]) GROUP BY ALL ORDER BY ALL""",
        ).cast(SUMMARY_SCHEMA)
        per_side = {CH: 0, IN: 0}
        for row in summary.to_pylist():
            per_side[row["side"]] += row["records"]
        # Every record gets exactly one outcome: this catches a line_no or our_id that is not
        # unique (a leftover fetched twice) or a record lost between passes.
        invariant(
            per_side == {CH: lines, IN: records},
            f"outcomes per side {per_side} != inputs {{CHANNEL: {lines}, INTERNAL: {records}}}",
        )
        return summary
