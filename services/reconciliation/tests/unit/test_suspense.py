"""Suspense: a record near its day's cut-off (either side of midnight) waits for the next
day's data instead of becoming a discrepancy, and becomes one after suspense_max_days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from reconciliation.domain import OutcomeType
from reconciliation.matching.config import MatchConfig

from .recon_support import DAY, line, match, record

MIDNIGHT = datetime(2025, 3, 2, tzinfo=UTC)  # the cut-off of DAY with the default offset
NEXT = DAY + timedelta(days=1)


def test_a_late_record_waits_in_suspense_and_matches_the_next_days_line(tmp_path: Path) -> None:
    ours = record("pay_1", txn="T1", at=MIDNIGHT - timedelta(seconds=10))
    first = match(tmp_path, [], [ours])
    assert first.type_of_record("pay_1") is OutcomeType.SUSPENSE
    assert first.result.count(OutcomeType.SUSPENSE) == 1
    pool = first.result.suspense
    assert pool.internal is not None and pq.read_table(pool.internal).column("our_id").to_pylist() == [
        "pay_1"
    ]

    their_line = line(1, txn="T1", day=NEXT, at=MIDNIGHT + timedelta(seconds=5))
    second = match(tmp_path, [their_line], [], run_day=NEXT, pool=pool)
    assert second.type_of_record("pay_1") is OutcomeType.MATCHED
    assert second.type_of_line(1, NEXT) is OutcomeType.MATCHED
    assert second.of_record("pay_1")["business_day"] == DAY
    assert pq.read_metadata(second.result.suspense.internal).num_rows == 0  # type: ignore[arg-type]


def test_a_line_just_after_midnight_on_the_closing_day_waits_too(tmp_path: Path) -> None:
    late_line = line(1, txn="T1", at=MIDNIGHT + timedelta(seconds=20))
    first = match(tmp_path, [late_line], [])
    assert first.type_of_line(1) is OutcomeType.SUSPENSE
    ours = record("pay_1", txn="T1", day=NEXT, at=MIDNIGHT + timedelta(seconds=25))
    second = match(tmp_path, [], [ours], run_day=NEXT, pool=first.result.suspense)
    assert second.types() == {OutcomeType.MATCHED: 2}


def test_still_unmatched_after_the_configured_days_it_is_a_discrepancy(tmp_path: Path) -> None:
    config = MatchConfig(suspense_max_days=2)
    lost = line(1, txn="T1", at=MIDNIGHT - timedelta(minutes=20))
    pool = None
    seen = []
    for age in range(3):
        outcomes = match(tmp_path, [lost] if age == 0 else [], [], run_day=DAY + timedelta(days=age),
                         config=config, pool=pool)  # fmt: skip
        seen.append(outcomes.type_of_line(1))
        pool = outcomes.result.suspense
    assert seen == [OutcomeType.SUSPENSE, OutcomeType.SUSPENSE, OutcomeType.CHANNEL_ONLY]


def test_outside_the_window_a_missing_counterpart_is_reported_at_once(tmp_path: Path) -> None:
    config = MatchConfig(suspense_window_s=600)
    inside = record("pay_1", txn="T1", at=MIDNIGHT - timedelta(seconds=600))
    outside = record("pay_2", txn="T2", at=MIDNIGHT - timedelta(seconds=601))
    outcomes = match(tmp_path, [], [inside, outside], config=config)
    assert outcomes.type_of_record("pay_1") is OutcomeType.SUSPENSE
    assert outcomes.type_of_record("pay_2") is OutcomeType.INTERNAL_ONLY


def test_the_cut_off_is_the_channels_midnight(tmp_path: Path) -> None:
    beijing = MatchConfig(cutoff_offset_s=-8 * 3_600)  # Alipay and WeChat Pay close at 16:00 UTC
    assert beijing.cutoff(DAY) == datetime(2025, 3, 1, 16, tzinfo=UTC)
    near_beijing_midnight = record("pay_1", txn="T1", at=datetime(2025, 3, 1, 15, 59, 50, tzinfo=UTC))
    near_utc_midnight = record("pay_2", txn="T2", at=MIDNIGHT - timedelta(seconds=10))
    outcomes = match(tmp_path, [], [near_beijing_midnight, near_utc_midnight], config=beijing)
    assert outcomes.type_of_record("pay_1") is OutcomeType.SUSPENSE
    assert outcomes.type_of_record("pay_2") is OutcomeType.INTERNAL_ONLY


def test_a_pooled_record_matched_with_a_difference_is_that_difference(tmp_path: Path) -> None:
    first = match(tmp_path, [], [record("pay_1", txn="T1", at=MIDNIGHT - timedelta(seconds=3))])
    their_line = line(1, txn="T1", day=NEXT, amount=12_000, at=MIDNIGHT + timedelta(seconds=2))
    second = match(tmp_path, [their_line], [], run_day=NEXT, pool=first.result.suspense)
    assert second.types() == {OutcomeType.AMOUNT_MISMATCH: 2}
