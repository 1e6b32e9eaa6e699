"""accounting's Prometheus metrics.

paykit_ledger_trial_balance_difference_minor{currency}   gauge: total debits minus
    total credits over every journal line, in the currency's minor units; the
    double-entry invariant says 0, so anything else is a page.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Gauge

TRIAL_BALANCE_DIFFERENCE = Gauge(
    "paykit_ledger_trial_balance_difference_minor",
    "Sum of debits minus sum of credits over the whole ledger, in minor units, per currency.",
    ["currency"],
)


def set_trial_balance(totals: Mapping[str, tuple[int, int]]) -> None:
    """`totals`: per currency (debits, credits), as the trial balance reports them."""
    for currency, (debits, credits) in sorted(totals.items()):
        TRIAL_BALANCE_DIFFERENCE.labels(currency).set(debits - credits)
