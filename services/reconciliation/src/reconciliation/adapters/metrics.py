"""Reconciliation's Prometheus metrics (served on METRICS_PORT by paykit.grpckit.runner).

paykit_recon_discrepancies_open{channel, type}   gauge: discrepancies OPEN now, recounted from
    the database on a schedule (RECON_OPEN_GAUGE_INTERVAL_S) and after every run and resolution.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Gauge

DISCREPANCIES_OPEN = Gauge(
    "paykit_recon_discrepancies_open",
    "Reconciliation discrepancies OPEN (waiting for an operator), by channel and type.",
    ["channel", "type"],
)

_seen: set[tuple[str, str]] = set()


def set_open(counts: Mapping[tuple[str, str], int]) -> None:
    """Every (channel, type) seen before keeps a value, 0 included, so a cleared backlog reads 0."""
    _seen.update(counts)
    for channel, type_ in sorted(_seen):
        DISCREPANCIES_OPEN.labels(channel=channel, type=type_).set(counts.get((channel, type_), 0))
