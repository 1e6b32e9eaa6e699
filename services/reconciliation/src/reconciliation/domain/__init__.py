"""Reconciliation's domain: the two record schemas and the outcome taxonomy (no I/O)."""

from reconciliation.domain.records import (
    INTERNAL_RECORD_SCHEMA,
    STATEMENT_LINE_SCHEMA,
    InternalRecord,
    RecordKind,
    RecordStatus,
    Side,
    StatementLine,
    internal_table,
    statement_table,
)
from reconciliation.domain.taxonomy import OUTCOME_SCHEMA, SUMMARY_SCHEMA, MatchPass, OutcomeType

__all__ = [
    "INTERNAL_RECORD_SCHEMA",
    "OUTCOME_SCHEMA",
    "STATEMENT_LINE_SCHEMA",
    "SUMMARY_SCHEMA",
    "InternalRecord",
    "MatchPass",
    "OutcomeType",
    "RecordKind",
    "RecordStatus",
    "Side",
    "StatementLine",
    "internal_table",
    "statement_table",
]
