"""Generated days with every planted case: each found with its type, nothing else reported,
whatever the seed, the row order or the split into files; matched groups balance."""

from __future__ import annotations

import random
import tempfile
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reconciliation.domain import OutcomeType
from reconciliation.generator import CASES, generate
from reconciliation.matching.config import MatchConfig
from reconciliation.matching.engine import SuspensePool, reconcile

from .recon_support import check_against_truth, sorted_rows

ROWS = 2_000
PLANTED_FRACTION = 0.1  # ~9 of each case per day at 2,000 rows


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_every_planted_case_is_found_with_its_type_and_nothing_else_over_two_days(
    tmp_path: Path, seed: int
) -> None:
    generated = generate(tmp_path / "data", ROWS, seed, days=2, planted_fraction=PLANTED_FRACTION)
    assert {row["case"] for row in generated.truth.to_pylist()} == {case.name for case in CASES}
    pool = None
    for day in generated.days:
        result = reconcile(
            day.business_day, day.statement_path, day.internal_path, tmp_path / "work", pool=pool
        )
        wrong, false_positives = check_against_truth(result.outcomes(), generated, day.business_day)
        assert wrong == []
        assert false_positives == []
        assert result.statement_lines == day.statement_lines + (pool_size(pool, "statement"))
        pool = result.suspense
    expected_types = set(generated.truth.column("expected").to_pylist())
    assert expected_types == {t.value for t in OutcomeType}, "every outcome type is planted"


def pool_size(pool: SuspensePool | None, side: str) -> int:
    path = None if pool is None else getattr(pool, side)
    return 0 if path is None else pq.read_metadata(path).num_rows


def test_a_generated_day_has_about_rows_records_per_side_and_the_planted_share(tmp_path: Path) -> None:
    generated = generate(tmp_path, 10_000, 5)
    (day,) = generated.days
    assert generated.planted_cases == 100
    assert abs(day.statement_lines - 10_000) < 200
    assert abs(day.internal_records - 10_000) < 200


def test_the_same_seed_generates_the_same_records_and_truth(tmp_path: Path) -> None:
    """The same rows (their order in the file is the writer's threads' and means nothing)."""
    first = generate(tmp_path / "a", 500, 9, days=2)
    second = generate(tmp_path / "b", 500, 9, days=2)
    assert first.truth.equals(second.truth)
    for a, b in zip(first.days, second.days, strict=True):
        for path_a, path_b in ((a.statement_path, b.statement_path), (a.internal_path, b.internal_path)):
            assert sorted_rows(pq.read_table(path_a)) == sorted_rows(pq.read_table(path_b))
    other = generate(tmp_path / "c", 500, 10, days=2)
    assert not other.truth.equals(first.truth)


@pytest.fixture(scope="module")
def generated_day(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, pa.Table, pa.Table, list[dict[str, object]]]:
    root = tmp_path_factory.mktemp("permute")
    generated = generate(root / "data", 1_500, 21, planted_fraction=PLANTED_FRACTION)
    (day,) = generated.days
    baseline = reconcile(day.business_day, day.statement_path, day.internal_path, root / "baseline")
    return (
        root,
        pq.read_table(day.statement_path),
        pq.read_table(day.internal_path),
        sorted_rows(baseline.outcomes()),
    )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), files=st.integers(1, 3))
def test_permuting_rows_and_splitting_files_changes_no_outcome(
    generated_day: tuple[Path, pa.Table, pa.Table, list[dict[str, object]]], seed: int, files: int
) -> None:
    _, statement, internal, baseline = generated_day
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = {}
        for name, table in (("statement", statement), ("internal", internal)):
            order = list(range(table.num_rows))
            rng.shuffle(order)
            shuffled = table.take(pa.array(order))
            cut = [round(table.num_rows * k / files) for k in range(files + 1)]
            paths[name] = []
            for k in range(files):
                path = root / f"{name}-{k}.parquet"
                pq.write_table(shuffled.slice(cut[k], cut[k + 1] - cut[k]), path)
                paths[name].append(path)
        day = statement.column("business_day")[0].as_py()
        result = reconcile(day, paths["statement"], paths["internal"], root / "work")
        assert sorted_rows(result.outcomes()) == baseline


def test_matched_groups_balance_and_tolerated_ones_stay_within_the_tolerance(
    generated_day: tuple[Path, pa.Table, pa.Table, list[dict[str, object]]],
) -> None:
    config = MatchConfig()
    nets: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"CHANNEL": 0, "INTERNAL": 0})
    types: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in generated_day[3]:
        if row["type"] not in (OutcomeType.MATCHED, OutcomeType.MATCHED_WITH_TOLERANCE):
            continue
        key = (str(row["channel"]), str(row["group_id"]))
        sign = -1 if row["kind"] == "REFUND" else 1
        nets[key][str(row["side"])] += sign * int(str(row["amount_minor"]))
        types[key].add(str(row["type"]))
    assert nets, "the day has matched groups"
    for key, net in nets.items():
        (group_type,) = types[key]
        if group_type == OutcomeType.MATCHED:
            assert net["CHANNEL"] == net["INTERNAL"], key
        else:
            difference = abs(net["CHANNEL"] - net["INTERNAL"])
            assert 0 < difference <= config.amount_tolerance(net["INTERNAL"]), key


def test_the_summary_counts_every_record_once(tmp_path: Path) -> None:
    generated = generate(tmp_path / "data", 1_000, 3, planted_fraction=PLANTED_FRACTION)
    (day,) = generated.days
    result = reconcile(day.business_day, day.statement_path, day.internal_path, tmp_path / "work")
    summary = result.summary
    by_side = {
        side: pc.sum(summary.filter(pc.equal(summary["side"], side))["records"]).as_py()
        for side in ("CHANNEL", "INTERNAL")
    }
    assert by_side == {"CHANNEL": day.statement_lines, "INTERNAL": day.internal_records}
    outcomes = result.outcomes()
    for row in summary.to_pylist():
        picked = outcomes.filter(
            pc.and_(
                pc.and_(pc.equal(outcomes["type"], row["type"]), pc.equal(outcomes["side"], row["side"])),
                pc.equal(outcomes["currency"], row["currency"]),
            )
        )
        assert picked.num_rows == row["records"]
        assert pc.sum(picked["amount_minor"]).as_py() == row["amount_minor"]
