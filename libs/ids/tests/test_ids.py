from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paykit.ids import (
    BODY_LENGTH,
    MAX_SHARD,
    IdGenerator,
    IdKind,
    InvalidIdError,
    ParsedId,
    deterministic_id,
    is_valid_id,
    new_id,
    parse_id,
    shard_of,
)

ID_SHAPE = re.compile(r"[a-z]{3}_[0-7][0-9A-HJKMNP-TV-Z]{25}")
MAX_MS = (1 << 48) - 1


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def fixed_random(value: int) -> Callable[[int], int]:
    def random_bits(bits: int) -> int:
        return value & ((1 << bits) - 1)

    return random_bits


def test_id_kind_prefixes() -> None:
    assert {k.name: k.value for k in IdKind} == {
        "ORDER": "ord",
        "PAYMENT": "pay",
        "REFUND": "rfd",
        "EVENT": "evt",
        "NOTIFICATION": "ntf",
        "CHANNEL_REQUEST": "chr",
        "DELIVERY": "dlv",
        "JOURNAL_ENTRY": "jnl",
        "IDEMPOTENCY": "idm",
        "STATEMENT": "stm",
        "DISCREPANCY": "dsc",
        "SETTLEMENT": "stl",
    }
    assert isinstance(IdKind.PAYMENT, str)
    assert IdKind.PAYMENT == "pay"  # type: ignore[comparison-overlap]


@pytest.mark.parametrize("kind", list(IdKind))
def test_new_id_has_prefix_underscore_and_26_uppercase_crockford_chars(kind: IdKind) -> None:
    value = new_id(kind)
    assert ID_SHAPE.fullmatch(value), value
    assert value.startswith(kind.value + "_")
    assert len(value) == len(kind.value) + 1 + BODY_LENGTH


def test_new_id_accepts_prefix_string_and_rejects_unknown_kind() -> None:
    assert new_id("pay").startswith("pay_")
    with pytest.raises(ValueError, match="unknown id kind"):
        new_id("xyz")
    with pytest.raises(ValueError, match="unknown id kind"):
        new_id("PAYMENT")


def test_new_id_rejects_shard_out_of_range() -> None:
    new_id(IdKind.PAYMENT, shard=0)
    new_id(IdKind.PAYMENT, shard=MAX_SHARD)
    with pytest.raises(ValueError, match="shard"):
        new_id(IdKind.PAYMENT, shard=-1)
    with pytest.raises(ValueError, match="shard"):
        new_id(IdKind.PAYMENT, shard=1024)
    with pytest.raises(TypeError):
        new_id(IdKind.PAYMENT, shard=True)


def test_parse_id_round_trips_kind_timestamp_and_shard() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id(IdKind.REFUND, shard=777)
    after = time.time_ns() // 1_000_000
    parsed = parse_id(value)
    assert parsed.kind is IdKind.REFUND
    assert parsed.shard == 777
    assert before <= parsed.timestamp_ms <= after
    assert parsed.raw == value
    assert not parsed.is_deterministic
    assert shard_of(value) == 777


@given(
    kind=st.sampled_from(list(IdKind)),
    now=st.integers(min_value=0, max_value=MAX_MS),
    shard=st.integers(min_value=0, max_value=MAX_SHARD),
    random_part=st.integers(min_value=0, max_value=(1 << 70) - 1),
)
def test_timestamp_and_shard_round_trip_over_the_whole_bit_range(
    kind: IdKind, now: int, shard: int, random_part: int
) -> None:
    generator = IdGenerator(clock_ms=FakeClock(now), random_bits=fixed_random(random_part))
    value = generator.new_id(kind, shard)
    assert ID_SHAPE.fullmatch(value)
    assert parse_id(value, kind) == ParsedId(kind=kind, timestamp_ms=now, shard=shard, raw=value)


def test_ids_from_later_milliseconds_sort_after_earlier_ones() -> None:
    clock = FakeClock(1_700_000_000_000)
    generator = IdGenerator(clock_ms=clock)
    ids = []
    for step in range(2000):
        clock.now += step % 3  # sometimes the same ms, sometimes later
        ids.append(generator.new_id(IdKind.EVENT, shard=step % 1024))
    parsed = [parse_id(v) for v in ids]
    for i, earlier in enumerate(parsed):
        for later in parsed[i + 1 : i + 50]:
            if later.timestamp_ms > earlier.timestamp_ms:
                assert later.raw > earlier.raw


@given(
    first=st.integers(min_value=0, max_value=MAX_MS - 1),
    gap=st.integers(min_value=1, max_value=10**6),
    shard_a=st.integers(min_value=0, max_value=MAX_SHARD),
    shard_b=st.integers(min_value=0, max_value=MAX_SHARD),
)
def test_later_millisecond_sorts_after_regardless_of_shard_and_randomness(
    first: int, gap: int, shard_a: int, shard_b: int
) -> None:
    second = min(first + gap, MAX_MS)
    early = IdGenerator(clock_ms=FakeClock(first), random_bits=fixed_random(-1))
    late = IdGenerator(clock_ms=FakeClock(second), random_bits=fixed_random(0))
    assert late.new_id(IdKind.PAYMENT, shard_b) > early.new_id(IdKind.PAYMENT, shard_a)


def test_many_real_ids_are_unique_and_strictly_increasing_per_shard() -> None:
    ids = [new_id(IdKind.PAYMENT, shard=3) for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(a < b for a, b in itertools.pairwise(ids))


def test_ids_in_the_same_millisecond_are_strictly_increasing() -> None:
    generator = IdGenerator(clock_ms=FakeClock(1_700_000_000_000))
    ids = [generator.new_id(IdKind.ORDER) for _ in range(5000)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert {parse_id(v).timestamp_ms for v in ids} == {1_700_000_000_000}


def test_ids_stay_increasing_when_the_clock_steps_backwards() -> None:
    clock = FakeClock(1_700_000_000_000)
    generator = IdGenerator(clock_ms=clock)
    first = generator.new_id(IdKind.ORDER)
    clock.now -= 5_000
    second = generator.new_id(IdKind.ORDER)
    assert second > first
    assert parse_id(second).timestamp_ms == 1_700_000_000_000


def test_random_part_exhaustion_borrows_the_next_millisecond() -> None:
    generator = IdGenerator(clock_ms=FakeClock(1000), random_bits=fixed_random(-1))
    first = generator.new_id(IdKind.ORDER)  # random part = 2**70 - 1
    second = generator.new_id(IdKind.ORDER)
    assert second > first
    assert parse_id(second).timestamp_ms == 1001


def test_same_millisecond_increments_are_not_plus_one() -> None:
    # The next id within a millisecond must not be trivially guessable from the previous.
    generator = IdGenerator(clock_ms=FakeClock(1_700_000_000_000))
    bodies = [int_body(generator.new_id(IdKind.PAYMENT)) for _ in range(50)]
    steps = {b - a for a, b in itertools.pairwise(bodies)}
    assert min(steps) >= 1
    assert len(steps) > 1


def int_body(value: str) -> int:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    number = 0
    for char in value.split("_", 1)[1]:
        number = number * 32 + alphabet.index(char)
    return number


def test_clock_outside_48_bits_is_rejected() -> None:
    with pytest.raises(ValueError, match="48-bit"):
        IdGenerator(clock_ms=FakeClock(1 << 48)).new_id(IdKind.ORDER)
    with pytest.raises(ValueError, match="48-bit"):
        IdGenerator(clock_ms=FakeClock(-1)).new_id(IdKind.ORDER)


def test_ids_are_unique_and_per_thread_increasing_under_four_threads() -> None:
    threads_count, per_thread = 4, 5_000
    results: list[list[str]] = [[] for _ in range(threads_count)]
    barrier = threading.Barrier(threads_count)

    def work(index: int) -> None:
        barrier.wait()
        out = results[index]
        for _ in range(per_thread):
            out.append(new_id(IdKind.EVENT, shard=9))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [v for chunk in results for v in chunk]
    assert len(everything) == threads_count * per_thread
    assert len(set(everything)) == len(everything)
    for chunk in results:
        assert all(a < b for a, b in itertools.pairwise(chunk))


# -- parsing and validation ---------------------------------------------------------


def valid_payment_id() -> str:
    return new_id(IdKind.PAYMENT, shard=5)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda v: v.replace("pay_", "xyz_"), "unknown prefix"),
        (lambda v: v.replace("pay_", "PAY_"), "unknown prefix"),
        (lambda v: v.replace("pay_", "pay-"), "no '<prefix>_' part"),
        (lambda v: v.replace("pay_", ""), "no '<prefix>_' part"),
        (lambda v: v[:-1], "body of 25 characters"),
        (lambda v: v + "0", "body of 27 characters"),
        (lambda v: v + " ", "body of 27 characters"),
        (lambda v: v[:-1] + "I", "invalid character 'I'"),
        (lambda v: v[:-1] + "L", "invalid character 'L'"),
        (lambda v: v[:-1] + "O", "invalid character 'O'"),
        (lambda v: v[:-1] + "U", "invalid character 'U'"),
        (lambda v: v[:-1] + "a", "invalid character 'a'"),
        (lambda v: v[:-1] + "-", "invalid character '-'"),
        (lambda v: v[:-1] + "\u0660", "invalid character"),
        (lambda v: "pay_8" + v[5:], "does not fit in 128 bits"),
        (lambda v: "pay_Z" + v[5:], "does not fit in 128 bits"),
        (lambda v: "pay_", "body of 0 characters"),
        (lambda v: "", "no '<prefix>_' part"),
    ],
)
def test_parse_id_rejects_malformed_ids_with_a_clear_message(
    mutate: Callable[[str], str], message: str
) -> None:
    bad = mutate(valid_payment_id())
    with pytest.raises(InvalidIdError, match=re.escape(message)):
        parse_id(bad)
    assert not is_valid_id(bad)


def test_parse_id_rejects_wrong_kind_when_expected() -> None:
    refund = new_id(IdKind.REFUND)
    with pytest.raises(InvalidIdError, match=r"is a REFUND id \('rfd'\), expected a PAYMENT id"):
        parse_id(refund, IdKind.PAYMENT)
    assert parse_id(refund, IdKind.REFUND).kind is IdKind.REFUND
    assert parse_id(refund, "rfd").kind is IdKind.REFUND


def test_parse_id_rejects_non_str() -> None:
    with pytest.raises(InvalidIdError, match="must be a str"):
        parse_id(123)  # type: ignore[arg-type]


def test_invalid_id_error_is_a_value_error() -> None:
    assert issubclass(InvalidIdError, ValueError)


def test_is_valid_id_checks_kind() -> None:
    value = new_id(IdKind.ORDER)
    assert is_valid_id(value)
    assert is_valid_id(value, IdKind.ORDER)
    assert is_valid_id(value, "ord")
    assert not is_valid_id(value, IdKind.PAYMENT)
    assert not is_valid_id(None, IdKind.ORDER)
    assert not is_valid_id(b"ord_" + b"0" * 26, IdKind.ORDER)


def test_shard_of_raises_for_malformed_ids() -> None:
    with pytest.raises(InvalidIdError):
        shard_of("pay_123")


def test_error_message_truncates_huge_input() -> None:
    with pytest.raises(InvalidIdError) as caught:
        parse_id("pay_" + "0" * 10_000)
    assert len(str(caught.value)) < 300


@given(text=st.text(max_size=40))
def test_parse_id_only_ever_raises_invalid_id_error(text: str) -> None:
    try:
        parsed = parse_id(text)
    except InvalidIdError:
        return
    assert ID_SHAPE.fullmatch(text)
    assert parsed.raw == text


# -- deterministic ids -------------------------------------------------------------


def test_deterministic_id_is_stable_and_in_the_same_format() -> None:
    a = deterministic_id(IdKind.NOTIFICATION, "alipay", "2024-notify-123")
    b = deterministic_id("ntf", "alipay", "2024-notify-123")
    assert a == b
    assert ID_SHAPE.fullmatch(a)
    parsed = parse_id(a, IdKind.NOTIFICATION)
    assert parsed.is_deterministic
    assert parsed.timestamp_ms == 0
    assert parsed.shard == 0


def test_deterministic_id_differs_for_different_keys_kinds_and_part_boundaries() -> None:
    base = deterministic_id(IdKind.NOTIFICATION, "ab", "c")
    assert deterministic_id(IdKind.NOTIFICATION, "a", "bc") != base
    assert deterministic_id(IdKind.NOTIFICATION, "abc") != base
    assert deterministic_id(IdKind.NOTIFICATION, "ab", "d") != base
    assert deterministic_id(IdKind.EVENT, "ab", "c").split("_")[1] != base.split("_")[1]


def test_deterministic_id_carries_the_requested_shard() -> None:
    value = deterministic_id(IdKind.IDEMPOTENCY, "merchant-1", "key-9", shard=42)
    assert shard_of(value) == 42
    assert parse_id(value).is_deterministic


def test_deterministic_id_derivation_is_pinned() -> None:
    # A change to the derivation would silently break deduplication of stored ids.
    assert deterministic_id(IdKind.NOTIFICATION, "alipay", "notify-1") == ("ntf_000000000000TAPNP53HJYXDH8")


def test_deterministic_id_needs_string_parts() -> None:
    with pytest.raises(ValueError, match="at least one"):
        deterministic_id(IdKind.NOTIFICATION)
    with pytest.raises(TypeError, match="str"):
        deterministic_id(IdKind.NOTIFICATION, 123)  # type: ignore[arg-type]


def test_deterministic_ids_sort_before_generated_ids() -> None:
    assert deterministic_id(IdKind.EVENT, "k") < new_id(IdKind.EVENT)
