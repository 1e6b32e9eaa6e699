"""When to ask a channel again: a capped backoff, persisted as a timestamp (no I/O).

Order-loss prevention queries an open payment at these delays after it was
stored (or went UNKNOWN); past the last one it keeps the last interval. The
next time is stored on the row, so a restarted process resumes the schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

DEFAULT_QUERY_SCHEDULE_S: tuple[float, ...] = (5, 15, 60, 300, 900)


def parse_schedule(values: Sequence[str | float]) -> tuple[float, ...]:
    schedule = tuple(float(v) for v in values)
    if not schedule or any(s <= 0 for s in schedule):
        raise ValueError(f"a schedule is one or more positive numbers of seconds, got {list(values)}")
    return schedule


def delay_for(attempt: int, schedule: Sequence[float]) -> timedelta:
    """Delay before attempt number `attempt` (0-based), capped at the schedule's last step."""
    return timedelta(seconds=schedule[min(attempt, len(schedule) - 1)])
