"""ACCOUNTING_FEES: the fee schedule JSON is read whole or refused with a ValueError that
says what is wrong, never half read and never another exception."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from accounting.domain.fees import FeeSchedule, RefundFee, parse_fee_schedule
from hypothesis import given
from hypothesis import strategies as st
from paykit.money import Money, Rounding


def test_the_documented_schedule_parses_with_its_overrides() -> None:
    schedule = parse_fee_schedule(
        json.dumps(
            {
                "merchant_bps": 60,
                "channel_bps": 38,
                "rounding": "half_even",
                "refund_fee": "return",
                "merchants": {"m-1": {"merchant_bps": 50, "refund_fee": "keep"}, "m-2": {}},
                "channels": {"simulator_b": {"channel_bps": 30}},
            }
        )
    )
    assert schedule.rounding is Rounding.HALF_EVEN
    assert (schedule.terms("m-1").merchant_bps, schedule.terms("m-1").refund_fee) == (50, RefundFee.KEEP)
    assert (schedule.terms("m-2").merchant_bps, schedule.terms("m-2").refund_fee) == (60, RefundFee.RETURN)
    amount = Money(10000, "CNY")
    assert schedule.merchant_fee("m-1", amount) == Money(50, "CNY")
    assert schedule.merchant_fee("other", amount) == Money(60, "CNY")
    assert schedule.channel_fee("simulator_b", amount) == Money(30, "CNY")
    assert schedule.channel_fee("simulator", amount) == Money(38, "CNY")


def test_an_empty_object_is_the_default_schedule() -> None:
    assert parse_fee_schedule("{}") == FeeSchedule()


def test_the_rate_bounds_are_accepted() -> None:
    schedule = parse_fee_schedule('{"merchant_bps": 0, "channel_bps": 10000}')
    assert (schedule.merchant_bps, schedule.channel_bps) == (0, 10000)


MALFORMED = [
    ("", "not JSON"),
    ("{merchant_bps: 60}", "not JSON"),
    ('{"merchant_bps": 60', "not JSON"),
    ("[" * 100_000, "nested too deeply"),
    ("[]", "must be a JSON object"),
    ('"half_up"', "must be a JSON object"),
    ("null", "must be a JSON object"),
    ('{"merchant_bps": 60, "merchant_bsp": 50}', "unknown fee schedule keys: ['merchant_bsp']"),
    ('{"merchant_bps": -1}', "merchant_bps must be an integer number of basis points 0..10000"),
    ('{"merchant_bps": 10001}', "merchant_bps must be an integer"),
    ('{"merchant_bps": 60.5}', "merchant_bps must be an integer"),
    ('{"merchant_bps": 60.0}', "merchant_bps must be an integer"),
    ('{"merchant_bps": "60"}', "merchant_bps must be an integer"),
    ('{"merchant_bps": true}', "merchant_bps must be an integer"),
    ('{"merchant_bps": null}', "merchant_bps must be an integer"),
    ('{"merchant_bps": NaN}', "merchant_bps must be an integer"),
    ('{"channel_bps": 1e400}', "channel_bps must be an integer"),
    ('{"channel_bps": 100000000000000000000000000}', "channel_bps must be an integer"),
    ('{"rounding": "bankers"}', "rounding must be one of half_up, half_even, down, up, got 'bankers'"),
    ('{"rounding": "HALF_UP"}', "rounding must be one of"),
    ('{"rounding": {}}', "rounding must be one of"),
    ('{"refund_fee": "sometimes"}', "refund_fee must be one of return, keep"),
    ('{"merchants": []}', "'merchants' and 'channels' must be objects"),
    ('{"channels": "simulator"}', "'merchants' and 'channels' must be objects"),
    ('{"merchants": {"m-1": 50}}', "merchants.m-1 takes merchant_bps and refund_fee"),
    ('{"merchants": {"m-1": {"channel_bps": 5}}}', "merchants.m-1 takes merchant_bps and refund_fee"),
    ('{"merchants": {"m-1": {"merchant_bps": 10001}}}', "merchants.m-1.merchant_bps must be an integer"),
    ('{"merchants": {"m-1": {"refund_fee": "maybe"}}}', "merchants.m-1.refund_fee must be one of"),
    ('{"merchants": {"m-1": {"refund_fee": []}}}', "merchants.m-1.refund_fee must be one of"),
    ('{"channels": {"simulator": {}}}', "channels.simulator takes channel_bps"),
    ('{"channels": {"simulator": {"channel_bps": 3, "x": 1}}}', "channels.simulator takes channel_bps"),
    ('{"channels": {"simulator": {"channel_bps": "38"}}}', "channels.simulator.channel_bps must be"),
    ('{"channels": {"simulator": [38]}}', "channels.simulator takes channel_bps"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_a_malformed_schedule_is_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_fee_schedule(text)
    assert message in str(refused.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(["merchant_bps", "channel_bps", "rounding", "refund_fee", "merchants", "channels"])
near_valid = st.dictionaries(
    keys,
    json_values
    | st.integers(-5, 10_005)
    | st.sampled_from(["half_up", "down", "keep", "return"])
    | st.dictionaries(
        st.sampled_from(["m-1", "simulator"]),
        st.dictionaries(st.sampled_from(["merchant_bps", "channel_bps", "refund_fee"]), json_values),
    ),
)


@given(value=json_values | near_valid)
def test_any_json_is_a_schedule_or_a_value_error(value: Any) -> None:
    try:
        schedule = parse_fee_schedule(json.dumps(value))
    except ValueError:
        return
    # Accepted: every rate in it is usable, for any merchant and channel it names.
    for merchant in [*schedule.merchants, "anyone"]:
        schedule.merchant_fee(merchant, Money(10**9, "CNY"))
    for channel in [*schedule.channels, "anywhere"]:
        schedule.channel_fee(channel, Money(10**9, "CNY"))


@given(text=st.text())
def test_any_text_is_a_schedule_or_a_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_fee_schedule(text)
