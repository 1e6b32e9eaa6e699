"""Runtime config changes are checked whole: an unknown key or a bad value changes nothing."""

from __future__ import annotations

import pytest
from channel_simulator.behaviour import Behaviour, ConfigError, updated


def test_update_applies_checked_values() -> None:
    changed = updated(Behaviour(), {"decline_rate": 1, "hang_s": 3, "unavailable": True})
    assert (changed.decline_rate, changed.hang_s, changed.unavailable) == (1.0, 3.0, True)
    assert isinstance(changed.decline_rate, float)


@pytest.mark.parametrize(
    "changes",
    [
        {"nope": 1},
        {"pay_rate": -0.1},
        {"pay_rate": None},
        {"refund_delay_ms": 600_001},
        {"hang_s": 601},
        {"drop_notifications": "true"},
        {"duplicate_notifications": 2.0},
        {"payout_decline_rate": 1.01},
        {"payout_decline_rate": False},
    ],
)
def test_bad_changes_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        updated(Behaviour(), changes)


def test_defaults_are_a_well_behaved_channel() -> None:
    behaviour = Behaviour()
    assert behaviour.pay_rate == 1.0 and behaviour.duplicate_notifications == 1
    rates = [v for k, v in behaviour.as_dict().items() if k.endswith("_rate") and k != "pay_rate"]
    assert rates and all(rate == 0.0 for rate in rates)
    assert not behaviour.unavailable and not behaviour.drop_notifications
