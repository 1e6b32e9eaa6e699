"""Property tests: random pairs, each perturbed in chosen fields, come out as exactly the type
the perturbation implies, whichever pass pairs them (channel transaction id, our id echoed,
reference), and whatever the tolerance."""

from __future__ import annotations

import enum
import tempfile
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from reconciliation.domain import InternalRecord, OutcomeType, RecordKind, RecordStatus, StatementLine
from reconciliation.domain.taxonomy import MISMATCH_PRECEDENCE, MatchPass
from reconciliation.matching.config import MatchConfig

from .recon_support import NOON, line, match, record


class Field(enum.Enum):
    CURRENCY = OutcomeType.CURRENCY_MISMATCH
    AMOUNT = OutcomeType.AMOUNT_MISMATCH
    STATUS = OutcomeType.STATUS_MISMATCH
    FEE = OutcomeType.FEE_MISMATCH
    WITHIN_TOLERANCE = OutcomeType.MATCHED_WITH_TOLERANCE


class Keyed(enum.Enum):
    """Which pass can pair the two: what the line and the record have in common."""

    CHANNEL_TXN_ID = MatchPass.CHANNEL_TXN_ID
    OUR_ID = MatchPass.OUR_ID  # our record never learned the channel's id; the line echoes ours
    REFERENCE = MatchPass.REFERENCE  # no common id at all, only the payment id as reference


@dataclass(frozen=True)
class Pair:
    n: int
    kind: RecordKind
    amount: int
    currency: str
    keyed: Keyed
    fields: frozenset[Field]
    amount_delta: int  # a multiplier of the tolerance picked later
    minutes: int  # the pair's time of day offset from noon


OTHER_CURRENCY = {"CNY": "HKD", "USD": "EUR"}

pairs = st.builds(
    Pair,
    n=st.just(0),
    kind=st.sampled_from(RecordKind),
    amount=st.integers(1_000, 10_000_000),
    currency=st.sampled_from(sorted(OTHER_CURRENCY)),
    keyed=st.sampled_from(Keyed),
    fields=st.frozensets(st.sampled_from(Field), max_size=4),
    amount_delta=st.integers(1, 1_000),
    minutes=st.integers(-300, 300),
)
configs = st.builds(
    MatchConfig, amount_tolerance_minor=st.integers(1, 50), amount_tolerance_bps=st.integers(0, 30)
)


def build(pair: Pair, config: MatchConfig) -> tuple[StatementLine, InternalRecord]:
    prefix = "rfd" if pair.kind is RecordKind.REFUND else "pay"
    our_id = f"{prefix}_{pair.n:05d}"
    reference = f"pay_{pair.n:05d}"
    txn = f"T{pair.n:08d}"
    fee = pair.amount * 6 // 1000
    at = NOON + timedelta(minutes=pair.minutes)
    same = {
        "reference": reference,
        "kind": pair.kind,
        "amount": pair.amount,
        "currency": pair.currency,
        "fee": fee,
    }
    ours = record(our_id, txn=txn, at=at, **same)  # type: ignore[arg-type]
    theirs = line(pair.n + 1, txn=txn, our_id=our_id, at=at + timedelta(seconds=3), **same)  # type: ignore[arg-type]
    if pair.keyed is not Keyed.CHANNEL_TXN_ID:
        ours = replace(ours, channel_txn_id=None)
    if pair.keyed is Keyed.REFERENCE:
        theirs = replace(theirs, our_id=None)
    allowed = config.amount_tolerance(pair.amount)
    if Field.AMOUNT in pair.fields:
        theirs = replace(theirs, amount_minor=pair.amount + allowed + pair.amount_delta)
    elif Field.WITHIN_TOLERANCE in pair.fields:
        theirs = replace(theirs, amount_minor=pair.amount - 1 - pair.amount_delta % allowed)
    if Field.CURRENCY in pair.fields:
        theirs = replace(theirs, currency=OTHER_CURRENCY[pair.currency])
    if Field.STATUS in pair.fields:
        theirs = replace(theirs, status=RecordStatus.FAILED)
    elif pair.kind is RecordKind.PAYMENT:
        ours = replace(ours, status=RecordStatus.REFUNDED)  # still "money moved": no mismatch
    if Field.FEE in pair.fields:
        theirs = replace(theirs, fee_minor=fee + pair.amount_delta)
    return theirs, ours


def expected(pair: Pair) -> OutcomeType:
    implied = {field.value for field in pair.fields}
    return next((t for t in MISMATCH_PRECEDENCE if t in implied), OutcomeType.MATCHED)


@settings(max_examples=40, deadline=None)
@given(batch=st.lists(pairs, min_size=1, max_size=12), config=configs)
def test_each_perturbed_pair_comes_out_as_its_highest_precedence_perturbation(
    batch: list[Pair], config: MatchConfig
) -> None:
    batch = [replace(pair, n=n) for n, pair in enumerate(batch)]
    built = [build(pair, config) for pair in batch]
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = match(Path(tmp), [b[0] for b in built], [b[1] for b in built], config=config)
    for pair, (theirs, ours) in zip(batch, built, strict=True):
        channel_side = outcomes.of_line(theirs.line_no)
        our_side = outcomes.of_record(ours.our_id)
        assert channel_side["type"] == our_side["type"] == expected(pair), pair
        assert channel_side["match_pass"] == our_side["match_pass"] == pair.keyed.value.value
        assert channel_side["group_id"] == our_side["group_id"]


@settings(max_examples=25, deadline=None)
@given(
    batch=st.lists(pairs, min_size=1, max_size=10),
    dropped=st.lists(st.sampled_from(["line", "record", "none"]), min_size=10, max_size=10),
)
def test_a_pair_missing_one_side_is_channel_only_or_internal_only_and_the_rest_unaffected(
    batch: list[Pair], dropped: list[str]
) -> None:
    config = MatchConfig()
    batch = [replace(pair, n=n) for n, pair in enumerate(batch)]
    built = [build(pair, config) for pair in batch]
    lines = [b[0] for b, d in zip(built, dropped, strict=False) if d != "line"]
    records = [b[1] for b, d in zip(built, dropped, strict=False) if d != "record"]
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = match(Path(tmp), lines, records, config=config)
    for pair, (theirs, ours), drop in zip(batch, built, dropped, strict=False):
        if drop == "line":
            assert outcomes.type_of_record(ours.our_id) is OutcomeType.INTERNAL_ONLY
        elif drop == "record":
            assert outcomes.type_of_line(theirs.line_no) is OutcomeType.CHANNEL_ONLY
        else:
            assert outcomes.type_of_line(theirs.line_no) is expected(pair)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.lists(pairs, min_size=1, max_size=8), copies=st.lists(st.integers(0, 2), min_size=8, max_size=8)
)
def test_a_repeated_channel_transaction_id_is_duplicate_and_the_first_still_matches(
    batch: list[Pair], copies: list[int]
) -> None:
    config = MatchConfig()
    batch = [replace(pair, n=n, keyed=Keyed.CHANNEL_TXN_ID) for n, pair in enumerate(batch)]
    built = [build(pair, config) for pair in batch]
    lines = [b[0] for b in built]
    extra = [
        replace(theirs, line_no=1_000 * (k + 1) + theirs.line_no)
        for (theirs, _), count in zip(built, copies, strict=False)
        for k in range(count)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = match(Path(tmp), extra + lines, [b[1] for b in built], config=config)
    for pair, (theirs, ours) in zip(batch, built, strict=True):
        assert outcomes.type_of_line(theirs.line_no) is expected(pair)
        assert outcomes.type_of_record(ours.our_id) is expected(pair)
    for copy in extra:
        repeated = outcomes.of_line(copy.line_no)
        assert repeated["type"] == OutcomeType.DUPLICATE
        original = outcomes.of_line(copy.line_no % 1_000)
        assert repeated["group_id"] == original["group_id"]
