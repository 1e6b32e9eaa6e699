"""The classification and keying rules as SQL expressions, written once for both engines.

DuckDB (engine.py) and Spark SQL (spark.py) accept the same CASE / abs / greatest / IN
syntax; the one difference, integer division, is passed in. Keeping the rules here is what
makes the two engines give the same per-record results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from paykit.money import BPS_PER_UNIT

from reconciliation.domain.records import MONEY_MOVED_STATUSES, RecordKind, RecordStatus
from reconciliation.domain.taxonomy import MatchPass, OutcomeType
from reconciliation.matching.config import MatchConfig

IntDiv = Callable[[str, str], str]

PASS_PREFIX: Final[dict[MatchPass, str]] = {
    MatchPass.CHANNEL_TXN_ID: "T",
    MatchPass.OUR_ID: "O",
    MatchPass.REFERENCE: "R",
    MatchPass.BATCH: "B",
}


def duckdb_div(numerator: str, denominator: str) -> str:
    return f"(({numerator}) // ({denominator}))"


def spark_div(numerator: str, denominator: str) -> str:
    return f"(({numerator}) div ({denominator}))"


def comparable_status(column: str) -> str:
    """SQL twin of records.comparable_status: money-moved statuses compare as SUCCEEDED."""
    moved = ", ".join(f"'{status.value}'" for status in sorted(MONEY_MOVED_STATUSES))
    return f"(CASE WHEN {column} IN ({moved}) THEN '{RecordStatus.SUCCEEDED.value}' ELSE {column} END)"


def signed(amount: str, kind: str) -> str:
    """A positive amount signed by its kind: refunds count negative in every sum."""
    return f"(CASE WHEN {kind} = '{RecordKind.REFUND.value}' THEN -({amount}) ELSE ({amount}) END)"


def group_id(match_pass: MatchPass, kind: str | None, key: str) -> str:
    """'TP:<key>': the pass, the kind (not for batches, which mix kinds) and the key."""
    prefix = PASS_PREFIX[match_pass]
    if kind is None:
        return f"('{prefix}:' || {key})"
    return f"('{prefix}' || substr({kind}, 1, 1) || ':' || {key})"


def classify(
    *,
    currencies_differ: str,
    channel_net: str,
    our_net: str,
    statuses_differ: str,
    fees_known: str,
    channel_fee_net: str,
    our_fee_net: str,
    config: MatchConfig,
    div: IntDiv,
) -> str:
    """The OutcomeType of a matched pair or group (precedence: taxonomy.MISMATCH_PRECEDENCE).

    Nets are sums signed by kind; the tolerance is taken against our net amount."""
    tolerance = (
        f"greatest({config.amount_tolerance_minor}, "
        f"{div(f'abs({our_net}) * {config.amount_tolerance_bps}', str(BPS_PER_UNIT))})"
    )
    return f"""(CASE
        WHEN {currencies_differ} THEN '{OutcomeType.CURRENCY_MISMATCH.value}'
        WHEN abs(({channel_net}) - ({our_net})) > {tolerance} THEN '{OutcomeType.AMOUNT_MISMATCH.value}'
        WHEN {statuses_differ} THEN '{OutcomeType.STATUS_MISMATCH.value}'
        WHEN ({fees_known}) AND ({channel_fee_net}) <> ({our_fee_net}) THEN '{OutcomeType.FEE_MISMATCH.value}'
        WHEN ({channel_net}) <> ({our_net}) THEN '{OutcomeType.MATCHED_WITH_TOLERANCE.value}'
        ELSE '{OutcomeType.MATCHED.value}' END)"""


def classify_pair(channel: str, ours: str, config: MatchConfig, div: IntDiv) -> str:
    """classify() for one statement line (alias `channel`) and one record (alias `ours`) of one kind."""
    return classify(
        currencies_differ=f"{channel}.currency <> {ours}.currency",
        channel_net=signed(f"{channel}.amount_minor", f"{channel}.kind"),
        our_net=signed(f"{ours}.amount_minor", f"{ours}.kind"),
        statuses_differ=f"{comparable_status(f'{channel}.status')} <> {comparable_status(f'{ours}.status')}",
        fees_known=f"{channel}.fee_minor IS NOT NULL AND {ours}.fee_minor IS NOT NULL",
        channel_fee_net=signed(f"{channel}.fee_minor", f"{channel}.kind"),
        our_fee_net=signed(f"{ours}.fee_minor", f"{ours}.kind"),
        config=config,
        div=div,
    )
