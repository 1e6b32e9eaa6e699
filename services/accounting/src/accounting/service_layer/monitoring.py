"""Measurements an operator alerts on, taken from the ledger on a schedule."""

from __future__ import annotations

from accounting.adapters.metrics import set_trial_balance
from accounting.service_layer import queries
from accounting.service_layer.unit_of_work import UowFactory


def measure_trial_balance(uow_factory: UowFactory) -> bool:
    """Set the trial-balance gauge from the same query as the TrialBalance call; True when balanced."""
    trial = queries.trial_balance(uow_factory)
    set_trial_balance(trial.totals)
    return trial.balanced
