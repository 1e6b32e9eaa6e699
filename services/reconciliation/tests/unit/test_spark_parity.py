"""The Spark path gives the DuckDB engine's per-record outcomes, summary and suspense pool,
day after day (local[2], a small generated dataset)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from reconciliation.generator import generate
from reconciliation.matching.engine import reconcile
from reconciliation.matching.spark import reconcile_spark

from .recon_support import check_against_truth, sorted_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_START_LIMIT_S = 60.0
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """local[2], no UI, few shuffle partitions, its scratch under a tmp dir, quiet logs."""
    from pyspark.sql import SparkSession

    started = time.monotonic()
    session = (
        SparkSession.builder.master("local[2]")
        .appName("reconciliation-parity")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(tmp_path_factory.mktemp("spark-local")))
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .config("spark.network.timeout", "60s")
        .config("spark.executor.heartbeatInterval", "10s")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    start_s = time.monotonic() - started
    log.warning("spark session started in %.1f s", start_s)
    assert start_s < SPARK_START_LIMIT_S, f"Spark took {start_s:.0f} s to start"
    try:
        yield session
    finally:
        session.stop()


@pytest.mark.timeout(600)
def test_spark_gives_the_duckdb_engines_outcomes_day_after_day(spark: SparkSession, tmp_path: Path) -> None:
    generated = generate(tmp_path / "data", 1_500, 11, days=2, planted_fraction=0.1)
    duck_pool = None
    spark_pool: list[str] = []
    for day in generated.days:
        duck = reconcile(
            day.business_day, day.statement_path, day.internal_path, tmp_path / "duck", pool=duck_pool
        )
        on_spark = reconcile_spark(
            spark,
            day.business_day,
            [str(day.statement_path), *spark_pool[:1]],
            [str(day.internal_path), *spark_pool[1:]],
            str(tmp_path / f"spark-{day.business_day}"),
        )
        spark_outcomes = ds.dataset(on_spark.outcomes).to_table().select(duck.outcomes().column_names)
        assert sorted_rows(spark_outcomes) == sorted_rows(duck.outcomes())
        assert on_spark.summary.equals(duck.summary)
        assert check_against_truth(spark_outcomes, generated, day.business_day) == ([], [])
        assert duck.suspense.statement is not None and duck.suspense.internal is not None
        for spark_dir, duck_file in (
            (on_spark.suspense_statement, duck.suspense.statement),
            (on_spark.suspense_internal, duck.suspense.internal),
        ):
            assert sorted_rows(ds.dataset(spark_dir).to_table()) == sorted_rows(pq.read_table(duck_file))
        duck_pool = duck.suspense
        spark_pool = [on_spark.suspense_statement, on_spark.suspense_internal]
