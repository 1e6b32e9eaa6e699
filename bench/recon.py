"""make bench-recon: the reconciliation matcher on ROWS statement lines against ROWS records.

Generates one business day (reconciliation.generator, seed SEED) into .run/bench-recon:
ROWS base transactions per side, PLANTED_FRACTION of them planted cases of every outcome
type (discrepancies, duplicates, one-to-many, many-to-many, tolerances, records across
midnight), the rest ordinary payments and refunds. Then runs reconciliation.matching.engine
on the two Parquet files under its default limits (DuckDB memory_limit 3 GB, spilling to the
work directory; all cores) and checks every outcome against the generator's ground truth.

wall_s is the matching alone (read, match, write 2 x ROWS outcome rows and the pool);
generation_s and check_s are measured separately. peak_rss_mb is the whole process's
(generation included) from getrusage; matching_peak_rss_mb is sampled during the matching.
Writes bench/results/recon.json.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import psutil
import pyarrow.parquet as pq
from reconciliation.domain import OutcomeType
from reconciliation.generator import Generated, generate
from reconciliation.matching.config import MatchConfig
from reconciliation.matching.engine import MatchResult, reconcile

ROWS = int(os.environ.get("ROWS", "10000000"))
SEED = int(os.environ.get("SEED", "7"))
PLANTED_FRACTION = float(os.environ.get("PLANTED_FRACTION", "0.01"))
TARGET_WALL_S = 60.0
TARGET_PEAK_RSS_MB = 4_096
RSS_SAMPLE_S = 0.1
ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".run" / "bench-recon"


class RssSampler(threading.Thread):
    """The process's resident set size, sampled: DuckDB's memory is native, so tracemalloc
    would not see it."""

    def __init__(self) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self._proc = psutil.Process()
        self.peak_bytes = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_bytes = max(self.peak_bytes, self._proc.memory_info().rss)
            self._done.wait(RSS_SAMPLE_S)

    def stop(self) -> None:
        self._done.set()
        self.join()


def check(result: MatchResult, generated: Generated, run_day: date) -> dict[str, int]:
    """Planted records found with their expected type, and unplanted ones not MATCHED, in SQL
    over the outcome files (2 x ROWS rows never become Python objects)."""
    truth_path = RUN_DIR / "truth.parquet"
    pq.write_table(generated.truth, truth_path)
    files = ", ".join(f"'{path}'" for path in result.outcome_files)
    # One key column per record (line_no for a line, our_id for a record) keeps both joins
    # equi-joins: an OR across the two identities would defeat the hash join.
    key = "coalesce(CAST(line_no AS VARCHAR), our_id) AS record_key"
    on = " AND ".join(f"o.{c} = t.{c}" for c in ("side", "channel", "business_day", "record_key"))
    con = duckdb.connect()
    try:
        for statement in (
            f"CREATE VIEW o AS SELECT *, {key} FROM read_parquet([{files}])",
            f"CREATE VIEW t AS SELECT *, {key} FROM read_parquet('{truth_path}') WHERE run_day = '{run_day}'",
        ):
            con.execute(statement)
            con.complete()
        planted, found = con.sql(
            f"SELECT count(*), count(*) FILTER (WHERE o.type = t.expected) FROM t LEFT JOIN o ON {on}"
        ).fetchall()[0]
        (false_positives,) = con.sql(
            f"SELECT count(*) FROM o ANTI JOIN t ON {on} WHERE o.type <> '{OutcomeType.MATCHED.value}'"
        ).fetchall()[0]
    finally:
        con.close()
    return {"planted": planted, "found_planted": found, "false_positives": false_positives}


def measure() -> dict[str, Any]:
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)
    config = MatchConfig()
    started = time.perf_counter()
    generated = generate(RUN_DIR / "data", ROWS, SEED, planted_fraction=PLANTED_FRACTION, config=config)
    generation_s = time.perf_counter() - started
    (day,) = generated.days
    print(
        f"generated {day.statement_lines} lines + {day.internal_records} records in {generation_s:.1f} s",
        flush=True,
    )

    sampler = RssSampler()
    sampler.start()
    cpu_before = time.process_time()
    started = time.perf_counter()
    result = reconcile(
        day.business_day, day.statement_path, day.internal_path, RUN_DIR / "work", config=config
    )
    wall_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_before
    sampler.stop()

    started = time.perf_counter()
    verdict = check(result, generated, day.business_day)
    check_s = time.perf_counter() - started
    by_type = {t.value: result.count(t) for t in OutcomeType}
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    outcome_bytes = sum(path.stat().st_size for path in result.outcome_files)
    return {
        "rows": ROWS,
        "statement_lines": day.statement_lines,
        "internal_records": day.internal_records,
        "seed": SEED,
        "planted_fraction": PLANTED_FRACTION,
        "planted_cases": generated.planted_cases,
        **verdict,
        "wall_s": round(wall_s, 2),
        "lines_per_s": round((day.statement_lines + day.internal_records) / wall_s),
        "generation_s": round(generation_s, 2),
        "check_s": round(check_s, 2),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "matching_peak_rss_mb": round(sampler.peak_bytes / 2**20, 1),
        "memory_limit_mb": config.memory_limit_mb,
        "cores_used": round(cpu_s / wall_s, 2),
        "cores": os.cpu_count(),
        "outcomes_mb": round(outcome_bytes / 2**20, 1),
        "steps_s": result.timings_s,
        "outcomes_by_type": by_type,
        "target_wall_s": TARGET_WALL_S,
        "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
    }


def main() -> int:
    if ROWS < 1_000:
        print(f"ROWS must be at least 1000, got {ROWS}", file=sys.stderr)
        return 2
    figures = measure()
    out = ROOT / "bench" / "results" / "recon.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:<22} {value}")
    print(f"written to {out.relative_to(ROOT)}")
    shutil.rmtree(RUN_DIR, ignore_errors=True)  # gigabytes of Parquet at 10M rows
    sound = figures["found_planted"] == figures["planted"] and figures["false_positives"] == 0
    if not sound:
        print("planted cases missed or records reported that were not planted", file=sys.stderr)
        return 1
    within = figures["wall_s"] < TARGET_WALL_S and figures["peak_rss_mb"] < TARGET_PEAK_RSS_MB
    print(f"targets (< {TARGET_WALL_S:.0f} s, < {TARGET_PEAK_RSS_MB} MB): {'met' if within else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
