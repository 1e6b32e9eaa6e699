"""Channel health: consecutive errors open a circuit for a cool-down; an operator can disable (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ChannelHealth:
    channel: str
    consecutive_errors: int = 0
    unhealthy_until: datetime | None = None
    operator_disabled: bool = False
    reason: str = ""
    actor: str = ""

    def is_healthy(self, now: datetime) -> bool:
        if self.operator_disabled:
            return False
        return self.unhealthy_until is None or now >= self.unhealthy_until


@dataclass(frozen=True)
class HealthPolicy:
    error_threshold: int = 3
    cool_down: timedelta = timedelta(seconds=30)


def record_error(health: ChannelHealth, policy: HealthPolicy, now: datetime, detail: str) -> ChannelHealth:
    """A charge got no answer. At the threshold the channel is skipped for the cool-down;
    after it, the next payment probes it (one more error re-opens the circuit)."""
    errors = health.consecutive_errors + 1
    if errors >= policy.error_threshold:
        return replace(
            health,
            consecutive_errors=errors,
            unhealthy_until=now + policy.cool_down,
            reason=f"{errors} consecutive errors, last: {detail}",
        )
    return replace(health, consecutive_errors=errors)


def record_answer(health: ChannelHealth) -> ChannelHealth:
    """Any answer (even a decline) proves the channel is up."""
    if health.consecutive_errors == 0 and health.unhealthy_until is None:
        return health
    return replace(
        health,
        consecutive_errors=0,
        unhealthy_until=None,
        reason="" if not health.operator_disabled else health.reason,
    )


def set_operator_disabled(health: ChannelHealth, disabled: bool, reason: str, actor: str) -> ChannelHealth:
    """An operator disabling a channel, or enabling it: enabling also closes an open circuit,
    since it says someone checked the channel is back."""
    if disabled:
        return replace(health, operator_disabled=True, reason=reason, actor=actor)
    return replace(
        health,
        operator_disabled=False,
        consecutive_errors=0,
        unhealthy_until=None,
        reason=reason,
        actor=actor,
    )
