"""A merchant account's runtime behaviour, switchable through /v1/admin/config.

Defaults are a well-behaved channel. Rates are probabilities drawn per
request; a charge's own `sim:` directives (see directives.py) win over them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from channel_simulator.limits import MAX_DELAY_MS, MAX_HANG_S, MAX_NOTIFY_COPIES


@dataclass(frozen=True)
class Behaviour:
    # The payer: how long until it pays, and how likely it pays at all.
    pay_delay_ms: int = 50
    pay_rate: float = 1.0
    # The charge request itself.
    decline_rate: float = 0.0
    timeout_rate: float = 0.0
    success_after_timeout_rate: float = 0.0
    out_of_order_rate: float = 0.0
    # Notifications.
    notify_delay_ms: int = 0
    duplicate_notifications: int = 1
    drop_notifications: bool = False
    # Refunds.
    refund_delay_ms: int = 50
    refund_decline_rate: float = 0.0
    # Payouts: decided when asked for, PAID or FAILED (PAYOUT_DECLINED).
    payout_decline_rate: float = 0.0
    # A channel outage: every non-admin call answers HTTP 503.
    unavailable: bool = False
    # How long a "lost" request holds its connection; longer than any client timeout.
    hang_s: float = 30.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """An unknown setting or a value of the wrong type or range."""


_RATE: Final = (float, 0.0, 1.0)
# field -> (type, smallest, largest); bool fields have no range.
_RULES: Final[dict[str, tuple[type, float, float]]] = {
    "pay_delay_ms": (int, 0, MAX_DELAY_MS),
    "pay_rate": _RATE,
    "decline_rate": _RATE,
    "timeout_rate": _RATE,
    "success_after_timeout_rate": _RATE,
    "out_of_order_rate": _RATE,
    "notify_delay_ms": (int, 0, MAX_DELAY_MS),
    "duplicate_notifications": (int, 1, MAX_NOTIFY_COPIES),
    "drop_notifications": (bool, 0, 1),
    "refund_delay_ms": (int, 0, MAX_DELAY_MS),
    "refund_decline_rate": _RATE,
    "payout_decline_rate": _RATE,
    "unavailable": (bool, 0, 1),
    "hang_s": (float, 0.0, MAX_HANG_S),
}


def _checked(name: str, value: object) -> object:
    kind, low, high = _RULES[name]
    # bool is an int in Python: refuse it where a number is meant, and numbers where a bool is.
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be within {low}..{high}, got {value!r}")
    return float(value) if kind is float else value


def updated(current: Behaviour, changes: Mapping[str, object]) -> Behaviour:
    """`current` with `changes` applied, all or nothing; raises ConfigError naming the setting."""
    unknown = sorted(set(changes) - set(_RULES))
    if unknown:
        raise ConfigError(f"unknown settings {unknown}; known: {sorted(_RULES)}")
    checked = {name: _checked(name, value) for name, value in changes.items()}
    return dataclasses.replace(current, **checked)  # type: ignore[arg-type]


# A new Behaviour field without a validation rule would be unsettable: fail at import.
if set(_RULES) != {f.name for f in dataclasses.fields(Behaviour)}:
    raise RuntimeError("channel_simulator.behaviour: _RULES must name every Behaviour field")
