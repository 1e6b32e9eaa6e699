"""Measurements an operator alerts on, taken from the database on a schedule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from payment_core.adapters.metrics import set_stuck
from payment_core.service_layer.context import UowFactory, now_utc


def measure_stuck_payments(uow_factory: UowFactory, stuck_after: timedelta, channels: Iterable[str]) -> int:
    """Set the stuck-payments gauge: open payments older than `stuck_after`. Returns their number."""
    with uow_factory() as uow:
        counts = uow.payments.count_stuck(now_utc() - stuck_after)
    set_stuck(counts, channels)
    return sum(counts.values())
