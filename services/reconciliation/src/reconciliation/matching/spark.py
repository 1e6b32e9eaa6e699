"""The same matching on Apache Spark, for days that outgrow one machine.

Same passes, same order, same classification (rules.py writes the expressions for both
engines), same outcome and pool schemas as engine.py; the differences are Spark's, not the
rules': records are identified by their natural keys (a line by channel, business_day,
line_no; a record by channel, our_id) instead of DuckDB's file row numbers, duplicates are
ranked with a window over the whole side (Spark shuffles anyway, so the hash pre-filter buys
nothing), and pass 1 is an inner join plus two anti joins, which Spark plans as shuffles.

Paths are anything Spark reads (local paths, hdfs://, s3a://): Parquet files or directories
in the input schemas. The outcomes, the suspense pool and nothing else are written under
`out` (a directory URI). The session is the caller's: local[2] in the tests, a cluster's in
production (services/reconciliation/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Final

import pyarrow as pa
from paykit.errors import invariant

from reconciliation.domain.records import INTERNAL_RECORD_SCHEMA, STATEMENT_LINE_SCHEMA, Side
from reconciliation.domain.taxonomy import SUMMARY_SCHEMA, MatchPass, OutcomeType
from reconciliation.matching import rules
from reconciliation.matching.config import SECONDS_PER_DAY, MatchConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CH: Final = Side.CHANNEL.value
IN: Final = Side.INTERNAL.value
MICROS_PER_S: Final[int] = 1_000_000

_SPARK_TYPES: Final[dict[str, str]] = {
    "string": "STRING",
    "date32[day]": "DATE",
    "int64": "BIGINT",
    "timestamp[us, tz=UTC]": "TIMESTAMP",
}
_ALIGNED: Final[str] = (
    "rid, channel, business_day, line_no, kind, txn, our_id, reference, batch, "
    "amount_minor, currency, fee_minor, status, occurred_at"
)


def spark_ddl(schema: pa.Schema) -> str:
    """An Arrow input schema as the DDL string spark.read.schema() takes."""
    return ", ".join(f"{field.name} {_SPARK_TYPES[str(field.type)]}" for field in schema)


@dataclass(frozen=True)
class SparkMatchResult:
    run_day: date
    outcomes: str  # a directory of Parquet files, taxonomy.OUTCOME_SCHEMA
    summary: pa.Table  # SUMMARY_SCHEMA
    suspense_statement: str
    suspense_internal: str
    statement_lines: int
    internal_records: int


def reconcile_spark(
    spark: SparkSession,
    run_day: date,
    statement: Sequence[str],
    internal: Sequence[str],
    out: str,
    *,
    config: MatchConfig | None = None,
) -> SparkMatchResult:
    """engine.reconcile on Spark. The previous run's suspense pool is simply more input
    paths (its suspense_statement / suspense_internal directories)."""
    invariant(bool(statement) and bool(internal), "both sides need at least one path")
    return _SparkMatcher(spark, config or MatchConfig(), run_day, out.rstrip("/")).run(statement, internal)


class _SparkMatcher:
    def __init__(self, spark: SparkSession, config: MatchConfig, run_day: date, out: str) -> None:
        self.spark = spark
        self.config = config
        self.run_day = run_day
        self.day = f"DATE '{run_day.isoformat()}'"
        self.out = out

    def sql(self, query: str) -> DataFrame:
        return self.spark.sql(query)

    def view(self, name: str, query: str) -> None:
        self.sql(query).createOrReplaceTempView(name)

    def materialize(self, name: str, query: str, stored_as: str | None = None) -> None:
        """A view computed once and read back from Parquet under <out>/work: several later
        queries read it, and cutting the lineage keeps every plan small (cached views inline
        their whole lineage into each plan; a local checkpoint keeps attribute ids that Spark
        4.3 then cannot tell apart in a join with the view it was derived from)."""
        path = f"{self.out}/work/{stored_as or name}"
        self.sql(query).write.mode("overwrite").parquet(path)
        self.spark.read.parquet(path).createOrReplaceTempView(name)

    def run(self, statement: Sequence[str], internal: Sequence[str]) -> SparkMatchResult:
        # Instants as the input schema has them (Parquet TIMESTAMP(MICROS, UTC)), not Spark's
        # legacy INT96, so that the suspense pool reads back as the input schema anywhere.
        self.spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        reader = self.spark.read
        reader.schema(spark_ddl(STATEMENT_LINE_SCHEMA)).parquet(*statement).createOrReplaceTempView("s_raw")
        reader.schema(spark_ddl(INTERNAL_RECORD_SCHEMA)).parquet(*internal).createOrReplaceTempView("i_raw")
        self._sources()
        self._duplicates()
        self._pass_channel_txn_id()
        self._group_passes()
        self._unmatched()
        outcomes = self._outcomes()
        outcomes.write.mode("overwrite").parquet(f"{self.out}/outcomes")
        pool = self._write_pool()
        lines = self.sql("SELECT count(*) AS n FROM s_src").collect()[0]["n"]
        records = self.sql("SELECT count(*) AS n FROM i_src").collect()[0]["n"]
        summary = self._summary(lines, records)
        return SparkMatchResult(self.run_day, f"{self.out}/outcomes", summary, *pool, lines, records)

    def _sources(self) -> None:
        self.view(
            "s_src",
            """
            SELECT concat_ws(':', channel, CAST(business_day AS STRING), CAST(line_no AS STRING)) AS rid,
                channel, business_day, line_no, kind, nullif(channel_txn_id, '') AS txn,
                nullif(our_id, '') AS our_id, nullif(reference, '') AS reference,
                nullif(batch_id, '') AS batch,
                amount_minor, currency, fee_minor, status, occurred_at
            FROM s_raw""",
        )
        self.view(
            "i_src",
            """
            SELECT concat_ws(':', channel, our_id) AS rid, channel, business_day,
                CAST(NULL AS BIGINT) AS line_no,
                kind, nullif(channel_txn_id, '') AS txn, our_id, reference, nullif(batch_key, '') AS batch,
                amount_minor, currency, fee_minor, status, occurred_at
            FROM i_raw""",
        )

    def _duplicates(self) -> None:
        """Extra occurrences of a channel transaction id on one side (engine.py, pass 0)."""
        self.materialize(
            "dup_s",
            """
            SELECT * FROM (
                SELECT *, row_number() OVER w AS rn, first(rid) OVER w AS original_rid FROM s_src
                WHERE txn IS NOT NULL
                WINDOW w AS (PARTITION BY channel, kind, txn ORDER BY business_day, line_no))
            WHERE rn > 1""",
        )
        self.materialize(
            "dup_i",
            """
            SELECT * FROM (
                SELECT i.*, row_number() OVER w AS rn, first(i.rid) OVER w AS original_rid
                FROM i_src i
                LEFT JOIN (SELECT DISTINCT channel, kind, txn, our_id FROM s_src
                           WHERE txn IS NOT NULL AND our_id IS NOT NULL) e
                    ON e.channel = i.channel AND e.kind = i.kind AND e.txn = i.txn AND e.our_id = i.our_id
                WHERE i.txn IS NOT NULL
                WINDOW w AS (PARTITION BY i.channel, i.kind, i.txn
                             ORDER BY e.our_id IS NULL, i.occurred_at, i.our_id))
            WHERE rn > 1""",
        )
        self.view("s_p1", "SELECT * FROM s_src LEFT ANTI JOIN dup_s d ON d.rid = s_src.rid")
        self.view("i_p1", "SELECT * FROM i_src LEFT ANTI JOIN dup_i d ON d.rid = i_src.rid")

    def _pass_channel_txn_id(self) -> None:
        on = "s.channel = i.channel AND s.kind = i.kind AND s.txn = i.txn"
        pair = rules.classify_pair("s", "i", self.config, rules.spark_div)
        amount_diff = (
            f"{rules.signed('s.amount_minor', 's.kind')} - {rules.signed('i.amount_minor', 'i.kind')}"
        )
        fee_diff = f"{rules.signed('s.fee_minor', 's.kind')} - {rules.signed('i.fee_minor', 'i.kind')}"
        self.view(
            "p1",
            f"""
            SELECT s.rid AS s_rid, i.rid AS i_rid, s.channel AS s_channel, i.channel AS i_channel,
                s.business_day AS s_day, i.business_day AS i_day, s.line_no, i.our_id, s.kind AS s_kind,
                i.kind AS i_kind, s.amount_minor AS s_amount, i.amount_minor AS i_amount,
                s.currency AS s_currency, i.currency AS i_currency, {pair} AS type,
                {rules.group_id(MatchPass.CHANNEL_TXN_ID, "s.kind", "s.txn")} AS group_id,
                {amount_diff} AS amount_diff_minor, {fee_diff} AS fee_diff_minor
            FROM s_p1 s JOIN i_p1 i ON {on}""",
        )
        self.materialize("s1", f"SELECT {_ALIGNED} FROM s_p1 s LEFT ANTI JOIN i_p1 i ON {on}")
        self.materialize("i1", f"SELECT {_ALIGNED} FROM i_p1 i LEFT ANTI JOIN s_p1 s ON {on}")

    def _group_passes(self) -> None:
        self.view(
            "m",
            "SELECT CAST(NULL AS STRING) AS side, CAST(NULL AS STRING) AS rid, "
            "CAST(NULL AS STRING) AS match_pass, CAST(NULL AS STRING) AS group_id WHERE false",
        )
        for n, (match_pass, key, by_kind, one_to_one, timed) in enumerate(
            (
                (MatchPass.OUR_ID, "our_id", True, True, True),
                (MatchPass.REFERENCE, "reference", True, False, True),
                (MatchPass.BATCH, "batch", False, False, False),
            )
        ):
            self._group_pass(n, match_pass, key, by_kind=by_kind, one_to_one=one_to_one, timed=timed)
        self._classify_groups()

    def _group_pass(
        self, n: int, match_pass: MatchPass, key: str, *, by_kind: bool, one_to_one: bool, timed: bool
    ) -> None:
        kind = "kind" if by_kind else "CAST(NULL AS STRING)"
        candidates = " UNION ALL ".join(
            f"""SELECT '{side}' AS side, rid, channel, {kind} AS kind_key, {key} AS k, occurred_at
                FROM {table} t
                WHERE {key} IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM m WHERE m.side = '{side}' AND m.rid = t.rid)"""
            for side, table in ((CH, "s1"), (IN, "i1"))
        )
        lines = f"count(CASE WHEN side = '{CH}' THEN 1 END)"
        records = f"count(CASE WHEN side = '{IN}' THEN 1 END)"
        having = f"{lines} = 1 AND {records} = 1" if one_to_one else f"{lines} >= 1 AND {records} >= 1"
        if timed:
            tolerance_us = self.config.time_tolerance_s * MICROS_PER_S
            having += f" AND unix_micros(max(occurred_at)) - unix_micros(min(occurred_at)) <= {tolerance_us}"
        gid = rules.group_id(match_pass, "c.kind_key" if by_kind else None, "c.k")
        self.view(
            f"m{n}",
            f"""
            WITH c AS ({candidates}),
            g AS (SELECT channel, kind_key, k FROM c GROUP BY channel, kind_key, k HAVING {having})
            SELECT c.side, c.rid, '{match_pass.value}' AS match_pass, {gid} AS group_id
            FROM c JOIN g ON c.channel = g.channel AND c.kind_key <=> g.kind_key AND c.k = g.k""",
        )
        self.materialize("m", f"SELECT * FROM m UNION ALL SELECT * FROM m{n}", stored_as=f"m_after_{n}")

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
            div=rules.spark_div,
        )
        self.view(
            "gm",
            f"""
            SELECT m.side, m.match_pass, m.group_id, r.* FROM m JOIN s1 r ON m.side = '{CH}' AND r.rid = m.rid
            UNION ALL
            SELECT m.side, m.match_pass, m.group_id, r.* FROM m JOIN i1 r
                ON m.side = '{IN}' AND r.rid = m.rid""",
        )
        self.view(
            "gc",
            f"""
            WITH a AS (
                SELECT channel, group_id,
                    count(DISTINCT currency) AS n_currencies, count(DISTINCT {status}) AS n_statuses,
                    coalesce(sum(CASE WHEN side = '{CH}' THEN {net} END), 0) AS channel_net,
                    coalesce(sum(CASE WHEN side = '{IN}' THEN {net} END), 0) AS our_net,
                    bool_and(fee_minor IS NOT NULL) AS fees_known,
                    coalesce(sum(CASE WHEN side = '{CH}' THEN {fee} END), 0) AS channel_fee_net,
                    coalesce(sum(CASE WHEN side = '{IN}' THEN {fee} END), 0) AS our_fee_net
                FROM gm GROUP BY channel, group_id)
            SELECT channel, group_id, {type_sql} AS type, channel_net - our_net AS amount_diff_minor,
                CASE WHEN fees_known THEN channel_fee_net - our_fee_net END AS fee_diff_minor
            FROM a""",
        )

    def _unmatched_type(self, side: str) -> str:
        cutoff_us = (
            f"((CAST(datediff(business_day, DATE '1970-01-01') AS BIGINT) + 1) * {SECONDS_PER_DAY} "
            f"+ {self.config.cutoff_offset_s}) * {MICROS_PER_S}"
        )
        near = (
            f"abs(unix_micros(occurred_at) - {cutoff_us}) <= {self.config.suspense_window_s * MICROS_PER_S}"
        )
        young = f"datediff({self.day}, business_day) < {self.config.suspense_max_days}"
        only = OutcomeType.CHANNEL_ONLY if side == CH else OutcomeType.INTERNAL_ONLY
        return f"CASE WHEN {near} AND {young} THEN '{OutcomeType.SUSPENSE.value}' ELSE '{only.value}' END"

    def _unmatched(self) -> None:
        self.materialize(
            "unmatched",
            f"""
            SELECT '{CH}' AS side, s1.*, {self._unmatched_type(CH)} AS type FROM s1
                LEFT ANTI JOIN m ON m.side = '{CH}' AND m.rid = s1.rid
            UNION ALL
            SELECT '{IN}' AS side, i1.*, {self._unmatched_type(IN)} AS type FROM i1
                LEFT ANTI JOIN m ON m.side = '{IN}' AND m.rid = i1.rid""",
        )

    def _outcomes(self) -> DataFrame:
        ours_only = f"CASE WHEN side = '{CH}' THEN NULL ELSE our_id END"
        pass1_gid = rules.group_id(MatchPass.CHANNEL_TXN_ID, "d.kind", "d.txn")

        def side(channel: str, ours: str) -> str:
            return f"CASE x WHEN 0 THEN {channel} ELSE {ours} END"

        return self.sql(f"""
            SELECT {self.day} AS run_day, {side(f"'{CH}'", f"'{IN}'")} AS side,
                {side("s_channel", "i_channel")} AS channel,
                {side("s_day", "i_day")} AS business_day, {side("line_no", "NULL")} AS line_no,
                {side("NULL", "our_id")} AS our_id, {side("s_kind", "i_kind")} AS kind,
                {side("s_amount", "i_amount")} AS amount_minor,
                {side("s_currency", "i_currency")} AS currency,
                type, '{MatchPass.CHANNEL_TXN_ID.value}' AS match_pass, group_id,
                amount_diff_minor, fee_diff_minor
            FROM p1 LATERAL VIEW explode(array(0, 1)) v AS x
            UNION ALL
            SELECT {self.day}, gm.side, gm.channel, business_day, line_no, {ours_only}, kind,
                amount_minor, currency, gc.type, gm.match_pass, gm.group_id,
                gc.amount_diff_minor, gc.fee_diff_minor
            FROM gm JOIN gc ON gm.channel = gc.channel AND gm.group_id = gc.group_id
            UNION ALL
            SELECT {self.day}, side, channel, business_day, line_no, {ours_only}, kind,
                amount_minor, currency, type, NULL, NULL, NULL, NULL
            FROM unmatched
            UNION ALL
            SELECT {self.day}, d.side, d.channel, d.business_day, d.line_no,
                CASE WHEN d.side = '{CH}' THEN NULL ELSE d.our_id END, d.kind, d.amount_minor, d.currency,
                '{OutcomeType.DUPLICATE.value}', NULL,
                CASE WHEN o.rid IS NULL THEN {pass1_gid} ELSE om.group_id END, NULL, NULL
            FROM (SELECT '{CH}' AS side, * FROM dup_s UNION ALL SELECT '{IN}' AS side, * FROM dup_i) d
            LEFT JOIN (SELECT '{CH}' AS side, rid FROM s1 UNION ALL SELECT '{IN}', rid FROM i1) o
                ON o.side = d.side AND o.rid = d.original_rid
            LEFT JOIN m om ON om.side = d.side AND om.rid = d.original_rid""")

    def _write_pool(self) -> tuple[str, str]:
        held = f"type = '{OutcomeType.SUSPENSE.value}'"
        statement, internal = f"{self.out}/suspense/statement", f"{self.out}/suspense/internal"
        self.sql(f"""
            SELECT channel, business_day, line_no, kind, txn AS channel_txn_id, our_id, reference,
                batch AS batch_id, amount_minor, currency, fee_minor, status, occurred_at
            FROM unmatched WHERE side = '{CH}' AND {held}""").write.mode("overwrite").parquet(statement)
        self.sql(f"""
            SELECT channel, business_day, kind, our_id, reference, txn AS channel_txn_id, amount_minor,
                currency, fee_minor, status, occurred_at, batch AS batch_key
            FROM unmatched WHERE side = '{IN}' AND {held}""").write.mode("overwrite").parquet(internal)
        return statement, internal

    def _summary(self, lines: int, records: int) -> pa.Table:
        self.spark.read.parquet(f"{self.out}/outcomes").createOrReplaceTempView("outcomes")
        rows = self.sql("""
            SELECT type, side, currency, count(*) AS records, sum(amount_minor) AS amount_minor
            FROM outcomes GROUP BY type, side, currency ORDER BY type, side, currency""").collect()
        summary = pa.Table.from_pylist([row.asDict() for row in rows], schema=SUMMARY_SCHEMA)
        per_side = {CH: 0, IN: 0}
        for row in rows:
            per_side[row["side"]] += row["records"]
        invariant(
            per_side == {CH: lines, IN: records},
            f"outcomes per side {per_side} != inputs {{CHANNEL: {lines}, INTERNAL: {records}}}",
        )
        return summary
