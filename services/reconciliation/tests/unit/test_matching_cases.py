"""One example per rule of the matcher: which pass pairs what, the sums of groups, the
tolerances, which occurrence of a duplicate stays, and what the matcher refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from paykit.errors import InvariantViolation
from reconciliation.domain import OutcomeType, RecordKind, RecordStatus, statement_table
from reconciliation.domain.taxonomy import MatchPass
from reconciliation.matching.config import MatchConfig
from reconciliation.matching.engine import reconcile

from .recon_support import DAY, NOON, line, match, record

REFUND = RecordKind.REFUND


def test_one_payment_settled_as_three_lines_matches_by_reference_and_sum(tmp_path: Path) -> None:
    lines = [
        line(1, txn="T1-a", our_id="pay_1", reference="pay_1", amount=3_000, fee=18),
        line(2, txn="T1-b", our_id="pay_1", reference="pay_1", amount=3_000, fee=18),
        line(3, txn="T1-c", our_id="pay_1", reference="pay_1", amount=4_000, fee=24),
    ]
    outcomes = match(tmp_path, lines, [record("pay_1", txn="T1", amount=10_000, fee=60)])
    rows = [outcomes.of_line(n) for n in (1, 2, 3)] + [outcomes.of_record("pay_1")]
    assert {r["type"] for r in rows} == {OutcomeType.MATCHED}
    assert {r["match_pass"] for r in rows} == {MatchPass.REFERENCE}
    assert {r["group_id"] for r in rows} == {"RP:pay_1"}
    assert {r["amount_diff_minor"] for r in rows} == {0}


def test_two_refunds_in_one_line_are_one_group_whose_difference_is_signed_negative(tmp_path: Path) -> None:
    records = [
        record("rfd_1", reference="pay_1", kind=REFUND, amount=2_500, fee=15),
        record("rfd_2", reference="pay_1", kind=REFUND, amount=1_000, fee=6),
    ]
    refund_line = line(1, txn="R9", reference="pay_1", kind=REFUND, amount=3_500, fee=21)
    assert match(tmp_path, [refund_line], records).types() == {OutcomeType.MATCHED: 3}
    outcomes = match(tmp_path, [replace(refund_line, amount_minor=3_600)], records)
    assert outcomes.type_of_line(1) is OutcomeType.AMOUNT_MISMATCH
    # channel minus ours, refunds counted negative: the channel refunded 100 more
    assert outcomes.of_line(1)["amount_diff_minor"] == -100
    assert outcomes.of_record("rfd_2")["group_id"] == "RR:pay_1"


def test_a_settlement_batch_nets_payments_and_refunds_against_its_lines(tmp_path: Path) -> None:
    records = [
        record("pay_1", txn="T1", amount=5_000, fee=30, batch="B7"),
        record("pay_2", txn="T2", amount=7_000, fee=42, batch="B7"),
        record("rfd_3", txn="R3", reference="pay_0", kind=REFUND, amount=2_000, fee=12, batch="B7"),
    ]
    lines = [
        line(1, txn="B7-1", batch="B7", amount=6_000, fee=36, at=NOON + timedelta(hours=20)),
        line(2, txn="B7-2", batch="B7", amount=4_000, fee=24, at=NOON + timedelta(hours=20)),
    ]
    outcomes = match(tmp_path, lines, records)
    assert outcomes.types() == {OutcomeType.MATCHED: 5}
    assert outcomes.of_line(2)["group_id"] == "B:B7"
    assert outcomes.of_record("rfd_3")["match_pass"] == MatchPass.BATCH

    off_by_one = [lines[0], replace(lines[1], amount_minor=4_001)]
    assert match(tmp_path, off_by_one, records).types() == {OutcomeType.MATCHED_WITH_TOLERANCE: 5}
    off_by_two = [lines[0], replace(lines[1], amount_minor=4_002)]
    assert match(tmp_path, off_by_two, records).types() == {OutcomeType.AMOUNT_MISMATCH: 5}


def test_our_id_echoed_on_two_lines_is_not_one_to_one_and_falls_to_the_reference_pass(tmp_path: Path) -> None:
    lines = [line(1, txn="X1", our_id="pay_1", reference="pay_1", amount=4_000, fee=24),
             line(2, txn="X2", our_id="pay_1", reference="pay_1", amount=6_000, fee=36)]  # fmt: skip
    outcomes = match(tmp_path, lines, [record("pay_1")])
    assert outcomes.of_line(1)["match_pass"] == MatchPass.REFERENCE
    assert outcomes.types() == {OutcomeType.MATCHED: 3}


def test_the_time_tolerance_bounds_pairs_not_keyed_by_the_channel_id(tmp_path: Path) -> None:
    config = MatchConfig(time_tolerance_s=600)
    ours = record("pay_1", at=NOON)
    near = line(1, txn="T1", our_id="pay_1", at=NOON + timedelta(seconds=600))
    far = replace(near, occurred_at=NOON + timedelta(seconds=601))
    assert match(tmp_path, [near], [ours], config=config).types() == {OutcomeType.MATCHED: 2}
    apart = match(tmp_path, [far], [ours], config=config)
    assert apart.type_of_line(1) is OutcomeType.CHANNEL_ONLY
    assert apart.type_of_record("pay_1") is OutcomeType.INTERNAL_ONLY
    # The channel's own transaction id pairs them whatever the clocks say.
    keyed = match(tmp_path, [far], [replace(ours, channel_txn_id="T1")], config=config)
    assert keyed.types() == {OutcomeType.MATCHED: 2}


def test_the_ratio_tolerance_applies_to_our_amount(tmp_path: Path) -> None:
    config = MatchConfig(amount_tolerance_minor=0, amount_tolerance_bps=10)  # 0.1 %
    ours = record("pay_1", txn="T1", amount=100_000)
    within = line(1, txn="T1", our_id="pay_1", amount=100_100)
    beyond = replace(within, amount_minor=100_101)
    assert (
        match(tmp_path, [within], [ours], config=config).type_of_line(1) is OutcomeType.MATCHED_WITH_TOLERANCE
    )
    assert match(tmp_path, [beyond], [ours], config=config).type_of_line(1) is OutcomeType.AMOUNT_MISMATCH


def test_a_status_mismatch_wins_over_the_fee_a_failed_trade_did_not_charge(tmp_path: Path) -> None:
    failed = line(1, txn="T1", our_id="pay_1", status=RecordStatus.FAILED, fee=0)
    outcomes = match(tmp_path, [failed], [record("pay_1", txn="T1", fee=60)])
    assert outcomes.type_of_line(1) is OutcomeType.STATUS_MISMATCH
    assert outcomes.of_line(1)["fee_diff_minor"] == -60


def test_an_unknown_fee_on_either_side_is_not_compared(tmp_path: Path) -> None:
    outcomes = match(tmp_path, [line(1, txn="T1", fee=None)], [record("pay_1", txn="T1", fee=60)])
    assert outcomes.types() == {OutcomeType.MATCHED: 2}
    assert outcomes.of_line(1)["fee_diff_minor"] is None


def test_our_refunded_payment_still_matches_the_channels_successful_trade(tmp_path: Path) -> None:
    outcomes = match(tmp_path, [line(1, txn="T1")], [record("pay_1", txn="T1", status=RecordStatus.REFUNDED)])
    assert outcomes.types() == {OutcomeType.MATCHED: 2}


def test_of_two_records_claiming_one_trade_the_one_the_channel_echoes_stays(tmp_path: Path) -> None:
    echoed_but_later = record("pay_2", txn="T1", at=NOON + timedelta(minutes=5))
    earlier = record("pay_1", txn="T1", at=NOON)
    outcomes = match(tmp_path, [line(1, txn="T1", our_id="pay_2")], [earlier, echoed_but_later])
    assert outcomes.type_of_record("pay_2") is OutcomeType.MATCHED
    assert outcomes.type_of_record("pay_1") is OutcomeType.DUPLICATE
    assert outcomes.of_record("pay_1")["group_id"] == outcomes.of_line(1)["group_id"] == "TP:T1"


def test_a_payment_and_a_refund_may_share_a_channel_number_without_being_duplicates(tmp_path: Path) -> None:
    lines = [line(1, txn="T1"), line(2, txn="T1", kind=REFUND, reference="pay_1", amount=500, fee=3)]
    records = [
        record("pay_1", txn="T1"),
        record("rfd_1", txn="T1", kind=REFUND, reference="pay_1", amount=500, fee=3),
    ]
    outcomes = match(tmp_path, lines, records)
    assert outcomes.types() == {OutcomeType.MATCHED: 4}
    assert outcomes.of_line(2)["group_id"] == "TR:T1"


def test_a_duplicated_lost_order_is_one_channel_only_and_one_duplicate(tmp_path: Path) -> None:
    lines = [line(1, txn="T1"), line(2, txn="T1")]
    outcomes = match(tmp_path, lines, [])
    assert outcomes.type_of_line(1) is OutcomeType.CHANNEL_ONLY
    assert outcomes.type_of_line(2) is OutcomeType.DUPLICATE
    assert outcomes.of_line(2)["group_id"] is None


def test_empty_ids_mean_unknown_and_never_match_each_other(tmp_path: Path) -> None:
    outcomes = match(tmp_path, [line(1, txn="", our_id="", reference="")], [record("pay_1", txn="")])
    assert outcomes.type_of_line(1) is OutcomeType.CHANNEL_ONLY
    assert outcomes.type_of_record("pay_1") is OutcomeType.INTERNAL_ONLY


def test_a_file_in_another_schema_is_refused(tmp_path: Path) -> None:
    table = statement_table([line(1, txn="T1")]).drop_columns(["fee_minor"])
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(InvariantViolation, match="not the expected schema"):
        reconcile(DAY, path, tmp_path / "none.parquet", tmp_path / "work")


def test_a_record_from_a_later_day_than_the_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvariantViolation, match="business_day outside"):
        match(tmp_path, [line(1, txn="T1", day=DAY + timedelta(days=1))], [])


def test_non_unique_line_numbers_are_caught_by_the_one_outcome_per_record_invariant(tmp_path: Path) -> None:
    lines = [line(1, txn="T1"), line(1, txn="T2")]
    with pytest.raises(InvariantViolation, match="outcomes per side"):
        match(tmp_path, lines, [record("pay_1", txn="T1")])
