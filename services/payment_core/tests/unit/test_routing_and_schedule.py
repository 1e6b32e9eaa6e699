"""Routing rules, weights, health and the query backoff (no I/O)."""

from __future__ import annotations

import collections
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paykit.errors import FailedPrecondition, InvalidArgument, Unavailable
from paykit.money import Money
from payment_core.domain import health as hm
from payment_core.domain.routing import choose_channels, draw, parse_rules
from payment_core.domain.schedule import delay_for, parse_schedule

RULES = parse_rules(
    """[
      {"method": "qr", "currency": "CNY", "max": "50000.00",
       "channels": {"simulator": 70, "simulator_b": 30}},
      {"method": "qr", "currency": "CNY", "channels": {"simulator_b": 1}},
      {"method": "qr", "channels": {"simulator": 1}}
    ]"""
)


def always(_: str) -> bool:
    return True


def test_weights_split_traffic_and_the_rest_are_failover_candidates() -> None:
    firsts = collections.Counter(
        choose_channels(RULES, "qr", Money(100, "CNY"), always, draw(f"key-{i}"))[0] for i in range(4000)
    )
    assert 0.66 < firsts["simulator"] / 4000 < 0.74
    assert choose_channels(RULES, "qr", Money(100, "CNY"), always, 0.0) == ["simulator", "simulator_b"]
    assert choose_channels(RULES, "qr", Money(100, "CNY"), always, 0.99) == ["simulator_b", "simulator"]


def test_amount_and_currency_pick_the_rule() -> None:
    assert choose_channels(RULES, "qr", Money(5_000_001, "CNY"), always, 0.1) == ["simulator_b"]
    assert choose_channels(RULES, "qr", Money(100, "USD"), always, 0.1) == ["simulator"]


def test_unhealthy_channels_are_skipped_and_none_left_is_unavailable() -> None:
    assert choose_channels(RULES, "qr", Money(100, "CNY"), lambda c: c != "simulator", 0.0) == ["simulator_b"]
    with pytest.raises(Unavailable):
        choose_channels(RULES, "qr", Money(100, "CNY"), lambda c: False, 0.0)


def test_unknown_method_names_the_field_and_no_route_is_a_precondition() -> None:
    with pytest.raises(InvalidArgument) as info:
        choose_channels(RULES, "card", Money(100, "CNY"), always, 0.0)
    assert info.value.field == "method"
    only_small = parse_rules('[{"method": "qr", "currency": "CNY", "max": "1.00", "channels": {"a": 1}}]')
    with pytest.raises(FailedPrecondition):
        choose_channels(only_small, "qr", Money(101, "CNY"), always, 0.0)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '[{"channels": {"a": 1}}]',
        '[{"method": "qr", "channels": {}}]',
        '[{"method": "qr", "channels": {"a": -1}}]',
        '[{"method": "qr", "channels": {"a": 0}}]',
        '[{"method": "qr", "max": "1.00", "channels": {"a": 1}}]',
    ],
)
def test_malformed_rules_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rules(text)


@given(key=st.text(min_size=1, max_size=40), weights=st.lists(st.integers(0, 50), min_size=1, max_size=5))
def test_every_draw_routes_to_a_weighted_healthy_channel_once(key: str, weights: list[int]) -> None:
    if not any(weights):
        weights[0] = 1
    channels = {f"c{i}": w for i, w in enumerate(weights)}
    rules = parse_rules(json.dumps([{"method": "qr", "channels": channels}]))
    chosen = choose_channels(rules, "qr", Money(1, "CNY"), always, draw(key))
    assert chosen[0] in {c for c, w in channels.items() if w > 0}
    assert sorted(chosen) == sorted(c for c, w in channels.items() if w > 0)
    assert choose_channels(rules, "qr", Money(1, "CNY"), always, draw(key)) == chosen


def test_query_backoff_is_capped_at_its_last_step() -> None:
    schedule = parse_schedule(["5", "15", "60"])
    assert [delay_for(i, schedule).total_seconds() for i in range(5)] == [5, 15, 60, 60, 60]
    with pytest.raises(ValueError):
        parse_schedule(["5", "0"])


def test_consecutive_errors_open_the_circuit_for_the_cool_down_and_an_answer_closes_it() -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    policy = hm.HealthPolicy(error_threshold=3, cool_down=timedelta(seconds=30))
    health = hm.ChannelHealth("simulator")
    for _ in range(2):
        health = hm.record_error(health, policy, now, "UNAVAILABLE")
    assert health.is_healthy(now)
    health = hm.record_error(health, policy, now, "UNAVAILABLE")
    assert not health.is_healthy(now + timedelta(seconds=29))
    assert health.is_healthy(now + timedelta(seconds=30))
    assert hm.record_answer(health).is_healthy(now)
    disabled = hm.set_operator_disabled(hm.ChannelHealth("x"), True, "maintenance", "ops@example")
    assert not disabled.is_healthy(now) and not hm.record_answer(disabled).is_healthy(now)
