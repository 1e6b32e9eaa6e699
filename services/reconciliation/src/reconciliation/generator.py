"""Synthetic statement + internal datasets with planted discrepancies and their ground truth.

Used by the unit tests (a few thousand rows) and by bench/recon.py (10 million). Everything is
generated inside DuckDB from ``range(rows)`` and a seeded hash, and written straight to
Parquet: no Python object per row.

Per business day, ``rows`` base transactions; a fraction of them (``planted_fraction``,
at least one of each case) are planted cases, dealt round-robin over :data:`CASES` in the
order of a seeded hash; the others are ordinary payments (10 % refunds) that must all be
MATCHED, with the harmless variations real data has (our fee unknown, our payment since
REFUNDED, a few seconds of clock skew). A planted case emits one to six records on either
side and says what each must come out as; records that cross midnight emit their
counterpart into the next day's files (when that day is generated).

Times keep clear of the suspense window except where a case means to be near the cut-off,
so that a record not matched is exactly what its case says.

The ground truth (:data:`TRUTH_SCHEMA`) lists every planted record with its expected type in
the run of its own business day and, for records held in suspense, in the following runs.
A record not in the truth must come out MATCHED.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
from paykit.errors import invariant

from reconciliation.domain.records import INTERNAL_RECORD_SCHEMA, STATEMENT_LINE_SCHEMA, Side
from reconciliation.domain.taxonomy import OutcomeType
from reconciliation.matching import duck
from reconciliation.matching.config import SECONDS_PER_DAY, MatchConfig

CHANNELS: Final[tuple[str, ...]] = ("alipay", "wechatpay", "card")
DEFAULT_PLANTED_FRACTION: Final[float] = 0.01
MAX_ROWS_PER_DAY: Final[int] = 1_000_000_000
MAX_DAYS: Final[int] = 30
# Each base transaction owns line numbers i * SUBS_PER_TXN + 1 .. + SUBS_PER_TXN; the last
# sub is reserved for a counterpart emitted on the next day, so line numbers never collide.
SUBS_PER_TXN: Final[int] = 8
NEXT_DAY_SUB: Final[int] = SUBS_PER_TXN - 1
MIN_AMOUNT_MINOR: Final[int] = 100
AMOUNT_SPAN_MINOR: Final[int] = 99_900
FEE_PER_MILLE: Final[int] = 6
# Margin (s) between ordinary times and the suspense window, and the clock skew allowed.
TIME_MARGIN_S: Final[int] = 120
MAX_SKEW_S: Final[int] = 5
GENERATOR_MEMORY_LIMIT_MB: Final[int] = 2_048

TRUTH_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("run_day", pa.date32(), nullable=False),
        pa.field("side", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("business_day", pa.date32(), nullable=False),
        pa.field("line_no", pa.int64()),  # CHANNEL records
        pa.field("our_id", pa.string()),  # INTERNAL records
        pa.field("case", pa.string(), nullable=False),
        pa.field("expected", pa.string(), nullable=False),  # OutcomeType
    ]
)


@dataclass(frozen=True)
class Emit:
    """One record a planted case writes.

    ``columns`` overrides the default SQL expression of a column (see ``_defaults``);
    ``expect`` is the outcome in the run of the record's own day; a record expected in
    SUSPENSE gives ``expect_after`` (what it becomes once ``suspense_max_days`` have passed
    without a counterpart, or MATCHED when its case emits one on the next day);
    ``next_day`` records are written into the next day's files.
    """

    side: Side
    sub: int = 0
    columns: Mapping[str, str] = field(default_factory=dict)
    expect: OutcomeType = OutcomeType.MATCHED
    expect_after: OutcomeType | None = None
    next_day: bool = False


@dataclass(frozen=True)
class Case:
    name: str
    emits: tuple[Emit, ...]


def _body(sub: int | str) -> str:
    """26 digits unique per (day, base row, sub) with 12 random ones: cheaper than printf."""
    ordinal = f"((10 + d) * 1000000000000 + i * 10 + {sub})::VARCHAR"
    return f"{ordinal} || (100000000000 + (h >> 5) % 100000000000)::VARCHAR"


def _txn(prefix: str, sub: int | str) -> str:
    """28 characters, like an Alipay trade_no or a WeChat Pay transaction_id."""
    return f"'{prefix}' || {_body(sub)}"


def _hash(seed: int, d: int) -> str:
    """63 seeded pseudo-random bits per base row, as a BIGINT so that arithmetic stays signed."""
    return f"(hash(range, {seed}, {d}) >> 1)::BIGINT"


def _fee(amount: str) -> str:
    return f"({amount}) * {FEE_PER_MILLE} // 1000"


PAY: Final = "'pay_' || " + _body(0)
CH: Final = Side.CHANNEL
IN: Final = Side.INTERNAL
M: Final = OutcomeType


def _pair(
    expect: OutcomeType, channel: Mapping[str, str] | None = None, ours: Mapping[str, str] | None = None
) -> tuple[Emit, ...]:
    return (Emit(CH, 0, channel or {}, expect), Emit(IN, 0, ours or {}, expect))


def _split(last_extra: str, expect: OutcomeType) -> tuple[Emit, ...]:
    """One payment of ours settled by the channel as three lines with their own numbers."""
    lines = tuple(
        Emit(
            CH,
            sub,
            {
                "channel_txn_id": _txn("20", sub),
                "amount_minor": "amt // 3" if sub < 3 else f"amt - 2 * (amt // 3) + {last_extra}",
                "fee_minor": "fee // 3" if sub < 3 else "fee - 2 * (fee // 3)",
            },
            expect,
        )
        for sub in (1, 2, 3)
    )
    return (Emit(IN, 0, {}, expect), *lines)


def _batch(extra: str, expect: OutcomeType) -> tuple[Emit, ...]:
    """Three of our payments (batch_key known) settled as two acquirer batch lines."""
    ours = tuple(
        Emit(
            IN,
            sub,
            {
                "our_id": f"'pay_' || {_body(sub)}",
                "reference": f"'pay_' || {_body(sub)}",
                "channel_txn_id": _txn("20", sub),
                "amount_minor": f"amt + {7 * sub}",
                "fee_minor": _fee(f"amt + {7 * sub}"),
                "batch_key": "batch",
                "occurred_at_s": f"t + {60 * sub}",
            },
            expect,
        )
        for sub in (1, 2, 3)
    )
    total = "(3 * amt + 42)"
    fees = f"({_fee('amt + 7')} + {_fee('amt + 14')} + {_fee('amt + 21')})"
    lines = tuple(
        Emit(
            CH,
            sub,
            {
                "channel_txn_id": f"batch || '-{sub}'",
                "our_id": "NULL",
                "reference": "NULL",
                "batch_id": "batch",
                "amount_minor": f"{total} // 2" if sub == 4 else f"{total} - {total} // 2 + {extra}",
                "fee_minor": f"{fees} // 2" if sub == 4 else f"{fees} - {fees} // 2",
                "occurred_at_s": "t + 7200",
            },
            expect,
        )
        for sub in (4, 5)
    )
    return (*ours, *lines)


def _late(side: Side, resolves: bool) -> tuple[Emit, ...]:
    """A record within the suspense window of its day's cut-off, either side of midnight."""
    discrepancy = M.CHANNEL_ONLY if side is CH else M.INTERNAL_ONLY
    record = Emit(side, 0, {"occurred_at_s": "near"}, M.SUSPENSE, M.MATCHED if resolves else discrepancy)
    if not resolves:
        return (record,)
    other = IN if side is CH else CH
    counterpart = Emit(
        other,
        NEXT_DAY_SUB,
        {"occurred_at_s": "near + 3", "business_day": "day + 1"},
        M.MATCHED,
        next_day=True,
    )
    return (record, counterpart)


TXN_UNKNOWN_TO_US: Final = {"channel_txn_id": "NULL"}  # our record never learned the channel's id
REFUND_LINE_AMOUNT: Final = "amt // 4 + amt // 5"

CASES: Final[tuple[Case, ...]] = (
    Case("channel_only", (Emit(CH, 0, {}, M.CHANNEL_ONLY),)),
    Case("internal_only", (Emit(IN, 0, {}, M.INTERNAL_ONLY),)),
    Case("amount_mismatch", _pair(M.AMOUNT_MISMATCH, {"amount_minor": "amt + allowed + 1 + (h >> 8) % 100"})),
    Case("amount_just_beyond_tolerance", _pair(M.AMOUNT_MISMATCH, {"amount_minor": "amt - allowed - 1"})),
    Case(
        "amount_within_tolerance",
        _pair(M.MATCHED_WITH_TOLERANCE, {"amount_minor": "amt + (1 + (h >> 8) % allowed) * sign"}),
    ),
    Case("status_channel_failed", _pair(M.STATUS_MISMATCH, {"status": "'FAILED'"})),
    Case("status_ours_pending", _pair(M.STATUS_MISMATCH, None, {"status": "'PENDING'"})),
    Case("fee_mismatch", _pair(M.FEE_MISMATCH, {"fee_minor": "fee + 1 + (h >> 8) % 50"})),
    Case("currency_mismatch", _pair(M.CURRENCY_MISMATCH, {"currency": "other_cur"})),
    Case("duplicate_line", (*_pair(M.MATCHED), Emit(CH, 1, {}, M.DUPLICATE))),
    Case(
        "duplicate_internal",
        (
            *_pair(M.MATCHED),
            Emit(
                IN,
                1,
                {
                    "our_id": f"'pay_' || {_body(1)}",
                    "reference": f"'pay_' || {_body(1)}",
                    "occurred_at_s": "t + 60",
                },
                M.DUPLICATE,
            ),
        ),
    ),
    Case("echo_of_our_id", _pair(M.MATCHED, None, TXN_UNKNOWN_TO_US)),
    Case(
        "echo_within_time_tolerance",
        _pair(M.MATCHED, {"occurred_at_s": "t + time_tol - 60"}, TXN_UNKNOWN_TO_US),
    ),
    Case(
        "echo_beyond_time_tolerance",
        (
            Emit(CH, 0, {"occurred_at_s": "t + time_tol + 60"}, M.CHANNEL_ONLY),
            Emit(IN, 0, TXN_UNKNOWN_TO_US, M.INTERNAL_ONLY),
        ),
    ),
    Case("split_payment", _split("0", M.MATCHED)),
    Case("split_payment_amount_mismatch", _split("allowed + 1 + (h >> 8) % 100", M.AMOUNT_MISMATCH)),
    Case(
        "refunds_in_one_line",
        (
            *_pair(M.MATCHED),
            *(
                Emit(
                    IN,
                    sub,
                    {
                        "kind": "'REFUND'",
                        "our_id": f"'rfd_' || {_body(sub)}",
                        "reference": PAY,
                        "channel_txn_id": "NULL",
                        "amount_minor": f"amt // {3 + sub}",
                        "fee_minor": _fee(f"amt // {3 + sub}"),
                        "occurred_at_s": "t + 600",
                    },
                )
                for sub in (1, 2)
            ),
            Emit(
                CH,
                3,
                {
                    "kind": "'REFUND'",
                    "channel_txn_id": _txn("50", 3),
                    "our_id": "NULL",
                    "reference": PAY,
                    "amount_minor": REFUND_LINE_AMOUNT,
                    "fee_minor": f"{_fee('amt // 4')} + {_fee('amt // 5')}",
                    "occurred_at_s": "t + 605",
                },
            ),
        ),
    ),
    Case("batch_settlement", _batch("0", M.MATCHED)),
    Case("batch_within_tolerance", _batch("1", M.MATCHED_WITH_TOLERANCE)),
    Case("late_ours_resolves", _late(IN, resolves=True)),
    Case("late_channel_resolves", _late(CH, resolves=True)),
    Case("late_ours_lost", _late(IN, resolves=False)),
    Case("late_channel_lost", _late(CH, resolves=False)),
)
"""Every planted case. Each OutcomeType appears in at least one; the MATCHED cases are the
ones the matcher must not report (one-to-many, many-to-one, many-to-many, tolerances)."""


def _base_columns(config: MatchConfig, start: date) -> str:
    """Derived per base row (d, i, h, case_id); later columns use earlier ones (DuckDB allows it)."""
    window = config.suspense_window_s
    span = SECONDS_PER_DAY - 2 * (window + TIME_MARGIN_S) - config.time_tolerance_s - TIME_MARGIN_S
    epoch = int(datetime.combine(start, datetime.min.time(), tzinfo=UTC).timestamp())
    return f"""
        d, i, h, case_id,
        DATE '{start.isoformat()}' + d::INTEGER AS day,
        {epoch} + (d + 1) * {SECONDS_PER_DAY} + {config.cutoff_offset_s} AS cut,
        cut - {SECONDS_PER_DAY} + {window + TIME_MARGIN_S} + (h >> 32) % {span} AS t,
        cut + (CASE WHEN (h >> 40) % 2 = 0 THEN 1 ELSE -1 END)
            * (10 + (h >> 41) % {max(window // 2, 1)}) AS near,
        {list(CHANNELS)}[i % {len(CHANNELS)} + 1] AS ch,
        CASE WHEN i % {len(CHANNELS)} = {len(CHANNELS) - 1} THEN 'USD' ELSE 'CNY' END AS cur,
        CASE WHEN cur = 'CNY' THEN 'HKD' ELSE 'EUR' END AS other_cur,
        CASE WHEN case_id < 0 AND h % 10 = 0 THEN 'REFUND' ELSE 'PAYMENT' END AS knd,
        {MIN_AMOUNT_MINOR} + (h >> 4) % {AMOUNT_SPAN_MINOR} AS amt,
        {_fee("amt")} AS fee,
        greatest({config.amount_tolerance_minor}, amt * {config.amount_tolerance_bps} // 10000) AS allowed,
        CASE WHEN (h >> 9) % 2 = 0 THEN 1 ELSE -1 END AS sign,
        {config.time_tolerance_s} AS time_tol,
        'BATCH' || ((10 + d) * 1000000000000 + i)::VARCHAR AS batch
    """


def _defaults(side: Side, sub: int) -> dict[str, str]:
    """Each column's SQL for an ordinary record (kind from the base row; refunds refer to a payment)."""
    common = {
        "channel": "ch",
        "business_day": "day",
        "kind": "knd",
        "channel_txn_id": f"CASE knd WHEN 'REFUND' THEN '50' ELSE '20' END || {_body(0)}",
        "our_id": f"CASE knd WHEN 'REFUND' THEN 'rfd_' ELSE 'pay_' END || {_body(0)}",
        "reference": "'pay_' || " + _body("CASE knd WHEN 'REFUND' THEN 9 ELSE 0 END"),
        "amount_minor": "amt",
        "currency": "cur",
        "status": "'SUCCEEDED'",
    }
    if side is CH:
        return common | {
            "line_no": f"i * {SUBS_PER_TXN} + {sub + 1}",
            "batch_id": "NULL",
            "fee_minor": "fee",
            "occurred_at_s": f"t + (h >> 12) % {MAX_SKEW_S}",
        }
    return common | {
        # Ordinary records only: our fee sometimes unknown, our payment sometimes since refunded.
        "fee_minor": "CASE WHEN case_id < 0 AND (h >> 16) % 20 = 0 THEN NULL ELSE fee END",
        "status": "CASE WHEN case_id < 0 AND knd = 'PAYMENT' AND (h >> 24) % 50 = 0 "
        "THEN 'REFUNDED' ELSE 'SUCCEEDED' END",
        "occurred_at_s": "t",
        "batch_key": "NULL",
    }


_TYPES: Final[dict[str, str]] = {
    "string": "VARCHAR",
    "date32[day]": "DATE",
    "int64": "BIGINT",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}


def _select(emit: Emit) -> str:
    """The record's columns, in its side's schema order and types."""
    schema = STATEMENT_LINE_SCHEMA if emit.side is CH else INTERNAL_RECORD_SCHEMA
    columns = _defaults(emit.side, emit.sub) | dict(emit.columns)
    exprs = []
    for column in schema:
        if column.name == "occurred_at":
            exprs.append(f"to_timestamp({columns['occurred_at_s']}) AS occurred_at")
        else:
            exprs.append(f"CAST({columns[column.name]} AS {_TYPES[str(column.type)]}) AS {column.name}")
    return ", ".join(exprs)


@dataclass(frozen=True)
class GeneratedDay:
    business_day: date
    statement_path: Path
    internal_path: Path
    statement_lines: int
    internal_records: int


@dataclass(frozen=True)
class Generated:
    days: tuple[GeneratedDay, ...]
    truth: pa.Table  # TRUTH_SCHEMA
    planted_cases: int  # base transactions planted per day, summed over days


def generate(
    out_dir: Path,
    rows: int,
    seed: int,
    *,
    days: int = 1,
    start_day: date = date(2025, 3, 1),
    planted_fraction: float = DEFAULT_PLANTED_FRACTION,
    config: MatchConfig | None = None,
    threads: int = 0,
) -> Generated:
    """Write statement_<day>.parquet and internal_<day>.parquet for ``days`` days of ``rows``
    base transactions each into ``out_dir``; return their paths and the ground truth.

    ``config`` must be the one the matcher will run with: tolerances, the cut-off and the
    suspense window decide where cases are planted and what they are expected to become."""
    config = config or MatchConfig()
    _check_plantable(rows, days, planted_fraction, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    planted = max(len(CASES), round(rows * planted_fraction))
    scratch = out_dir / ".generator_tmp"
    con = duck.connect(GENERATOR_MEMORY_LIMIT_MB, threads, scratch)
    try:
        generated = [
            _generate_day(con, out_dir, rows, seed, day, start_day, planted, config) for day in range(days)
        ]
        truth = _truth(con, days, start_day, config)
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return Generated(tuple(generated), truth, planted * days)


def _check_plantable(rows: int, days: int, fraction: float, config: MatchConfig) -> None:
    invariant(0 < rows <= MAX_ROWS_PER_DAY, f"rows must be 1..{MAX_ROWS_PER_DAY}")
    invariant(0 < days <= MAX_DAYS, f"days must be 1..{MAX_DAYS}")
    invariant(0.0 <= fraction <= 1.0, "planted_fraction must be within 0..1")
    invariant(rows >= len(CASES), f"rows must be at least {len(CASES)} (one of each case)")
    invariant(
        config.amount_tolerance(MIN_AMOUNT_MINOR) >= 1, "the tolerance cases need a tolerance >= 1 minor unit"
    )
    invariant(
        config.amount_tolerance(MIN_AMOUNT_MINOR + AMOUNT_SPAN_MINOR) < MIN_AMOUNT_MINOR // 2,
        "the tolerance must stay well below the smallest generated amount",
    )
    invariant(
        config.time_tolerance_s >= 2 * TIME_MARGIN_S, f"time_tolerance_s must be >= {2 * TIME_MARGIN_S}"
    )
    invariant(config.suspense_window_s >= 60, "suspense_window_s must be >= 60 for the late cases")
    usable = SECONDS_PER_DAY - 2 * (config.suspense_window_s + TIME_MARGIN_S) - config.time_tolerance_s
    invariant(usable > 4 * 3_600, "suspense window and time tolerance leave too little of the day")


def _generate_day(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    rows: int,
    seed: int,
    d: int,
    start_day: date,
    planted: int,
    config: MatchConfig,
) -> GeneratedDay:
    # The planted base rows: the `planted` smallest hashes of the day, dealt round-robin over CASES.
    duck.run(
        con,
        f"""
        CREATE OR REPLACE TABLE planted_{d} AS
        SELECT {d} AS d, i, h, (row_number() OVER (ORDER BY h, i) - 1) % {len(CASES)} AS case_id
        FROM (SELECT range AS i, {_hash(seed, d)} AS h FROM range({rows}) ORDER BY h, i LIMIT {planted})
    """,
    )
    columns = _base_columns(config, start_day)
    duck.run(con, f"CREATE OR REPLACE TEMP VIEW pbase_{d} AS SELECT {columns} FROM planted_{d}")
    duck.run(
        con,
        f"""
        CREATE OR REPLACE TEMP VIEW nbase_{d} AS SELECT {columns} FROM (
            SELECT {d} AS d, range AS i, {_hash(seed, d)} AS h, -1 AS case_id
            FROM range({rows}) WHERE range NOT IN (SELECT i FROM planted_{d}))
    """,
    )
    day = start_day + timedelta(days=d)
    paths = {}
    counts = {}
    for side, name in ((CH, "statement"), (IN, "internal")):
        selects = [f"SELECT {_select(Emit(side))} FROM nbase_{d}"]
        for case_id, case in enumerate(CASES):
            for emit in case.emits:
                if emit.side is not side:
                    continue
                source = d - 1 if emit.next_day else d
                if source < 0:
                    continue
                selects.append(f"SELECT {_select(emit)} FROM pbase_{source} WHERE case_id = {case_id}")
        paths[side] = out_dir / f"{name}_{day.isoformat()}.parquet"
        query = " UNION ALL ".join(selects)
        duck.run(con, f"COPY ({query}) TO {duck.quote(paths[side])} (FORMAT parquet, COMPRESSION zstd)")
        counts[side] = int(
            str(duck.scalar(con, f"SELECT count(*) FROM read_parquet({duck.quote(paths[side])})"))
        )
    return GeneratedDay(day, paths[CH], paths[IN], counts[CH], counts[IN])


def _truth(con: duckdb.DuckDBPyConnection, days: int, start_day: date, config: MatchConfig) -> pa.Table:
    """Every planted record's expected outcome per run (own day, then the suspense days)."""
    selects = []
    for d in range(days):
        for case_id, case in enumerate(CASES):
            for emit in case.emits:
                own_run = d + 1 if emit.next_day else d
                if own_run >= days:
                    continue
                for run, expected in _expectations(emit, own_run, days, config):
                    selects.append(
                        _truth_select(emit, d, case_id, case.name, start_day + timedelta(days=run), expected)
                    )
    query = " UNION ALL ".join(selects)
    table = duck.arrow(con, f"SELECT * FROM ({query}) ORDER BY ALL")
    return table.cast(TRUTH_SCHEMA)


def _expectations(emit: Emit, own_run: int, days: int, config: MatchConfig) -> list[tuple[int, OutcomeType]]:
    expected = [(own_run, emit.expect)]
    if emit.expect is not OutcomeType.SUSPENSE:
        return expected
    invariant(emit.expect_after is not None, "a SUSPENSE record says what it becomes")
    after = emit.expect_after or OutcomeType.SUSPENSE
    for age in range(1, config.suspense_max_days + 1):
        if own_run + age >= days:
            break
        if after is OutcomeType.MATCHED:  # the counterpart is on the next day's files
            expected.append((own_run + age, after))
            break
        expected.append((own_run + age, after if age == config.suspense_max_days else OutcomeType.SUSPENSE))
    return expected


def _truth_select(emit: Emit, d: int, case_id: int, case: str, run_day: date, expected: OutcomeType) -> str:
    columns = _defaults(emit.side, emit.sub) | dict(emit.columns)
    is_line = emit.side is CH
    return f"""
        SELECT DATE '{run_day.isoformat()}' AS run_day, '{emit.side.value}' AS side,
               CAST({columns["channel"]} AS VARCHAR) AS channel,
               CAST({columns["business_day"]} AS DATE) AS business_day,
               {f"CAST({columns['line_no']} AS BIGINT)" if is_line else "NULL::BIGINT"} AS line_no,
               {"NULL::VARCHAR" if is_line else f"CAST({columns['our_id']} AS VARCHAR)"} AS our_id,
               '{case}' AS case, '{expected.value}' AS expected
        FROM pbase_{d} WHERE case_id = {case_id}
    """
