"""Reconciliation: each channel's daily statement matched against what the suite recorded."""
