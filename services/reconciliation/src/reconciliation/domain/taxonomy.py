"""What a reconciliation says about each record: the outcome types, their precedence, and the
shape of the outcome and summary tables.

Every record of both sides gets exactly one outcome per run.

Matched (the record is in a pair or group the matcher formed, ARCHITECTURE.md §8):

* ``MATCHED``: every compared field agrees.
* ``MATCHED_WITH_TOLERANCE``: agrees except the amount, which differs by no more than the
  configured tolerance (absolute minor units and/or basis points of our amount).
* ``CURRENCY_MISMATCH``, ``AMOUNT_MISMATCH``, ``STATUS_MISMATCH``, ``FEE_MISMATCH``: the pair or
  group was matched on its key, and that field disagrees.

Not matched:

* ``CHANNEL_ONLY``: the channel has money we did not record (a lost order; the worst case).
* ``INTERNAL_ONLY``: we recorded money the channel does not show.
* ``DUPLICATE``: the same channel transaction id appears again on the same side (a statement
  line listed twice, or two of our records claiming one channel trade). The first occurrence
  (statement: lowest business_day, line_no; ours: the one whose our_id the channel echoes,
  then the earliest, then the lowest our_id) stays in the matching and is classified on its
  own; only the extra occurrences are DUPLICATE.
* ``SUSPENSE``: not matched, but near the business day's cut-off: the counterpart may be on
  the other day's data. Held in the suspense pool and matched again with the next days; after
  ``suspense_max_days`` it becomes CHANNEL_ONLY / INTERNAL_ONLY.

Precedence, for a matched pair or group where several fields disagree (the first that applies
names the outcome, so a planted single-field change has exactly one expected type):

    CURRENCY_MISMATCH > AMOUNT_MISMATCH > STATUS_MISMATCH > FEE_MISMATCH
        > MATCHED_WITH_TOLERANCE > MATCHED

Why this order: amounts in two currencies cannot be compared at all, so currency comes first;
the amount is the money itself; a status difference (the channel failed what we think
succeeded) changes whether money moved, and a failed or closed trade carries no fee, so a
status difference usually drags a fee difference along and must win over it; the fee is
derived from amount and status, so it is reported only when everything else agrees.
"""

from __future__ import annotations

import enum
from typing import Final

import pyarrow as pa


class OutcomeType(enum.StrEnum):
    MATCHED = "MATCHED"
    MATCHED_WITH_TOLERANCE = "MATCHED_WITH_TOLERANCE"
    CHANNEL_ONLY = "CHANNEL_ONLY"
    INTERNAL_ONLY = "INTERNAL_ONLY"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    STATUS_MISMATCH = "STATUS_MISMATCH"
    FEE_MISMATCH = "FEE_MISMATCH"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    DUPLICATE = "DUPLICATE"
    SUSPENSE = "SUSPENSE"


MISMATCH_PRECEDENCE: Final[tuple[OutcomeType, ...]] = (
    OutcomeType.CURRENCY_MISMATCH,
    OutcomeType.AMOUNT_MISMATCH,
    OutcomeType.STATUS_MISMATCH,
    OutcomeType.FEE_MISMATCH,
    OutcomeType.MATCHED_WITH_TOLERANCE,
    OutcomeType.MATCHED,
)
"""The classification order of a matched pair or group (see the module docstring)."""

RECONCILED: Final[frozenset[OutcomeType]] = frozenset(
    {OutcomeType.MATCHED, OutcomeType.MATCHED_WITH_TOLERANCE}
)
"""Outcomes that need no one's attention: only these funds settle to merchants."""

DISCREPANCIES: Final[frozenset[OutcomeType]] = frozenset(OutcomeType) - RECONCILED - {OutcomeType.SUSPENSE}


class MatchPass(enum.StrEnum):
    """Which pass formed a pair or group, in the order the passes run."""

    CHANNEL_TXN_ID = "CHANNEL_TXN_ID"  # one-to-one on the channel's transaction id
    OUR_ID = "OUR_ID"  # one-to-one on our id as the channel echoes it
    REFERENCE = "REFERENCE"  # one-to-many / many-to-one by reference (payment id), by sum
    BATCH = "BATCH"  # many-to-many by settlement batch, by sum


OUTCOME_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("run_day", pa.date32(), nullable=False),  # the business day this run reconciled
        pa.field("side", pa.string(), nullable=False),  # Side
        pa.field("channel", pa.string(), nullable=False),
        pa.field("business_day", pa.date32(), nullable=False),  # the record's own day
        # The record's identity: CHANNEL rows by (channel, business_day, line_no), INTERNAL rows
        # by our_id; the other column is null. Join back to the inputs for everything else.
        pa.field("line_no", pa.int64()),
        pa.field("our_id", pa.string()),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("amount_minor", pa.int64(), nullable=False),  # the record's own amount
        pa.field("currency", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),  # OutcomeType
        pa.field("match_pass", pa.string()),  # MatchPass; null when not matched
        # The records of one pair or group share (channel, group_id): a record's "matched with"
        # is the other side's rows with its channel and group_id. The id names the pass, the
        # kind and the key: "TP:<channel_txn_id>", "OR:<our_id>", "RP:<reference>",
        # "B:<batch>". A DUPLICATE carries the group_id of the occurrence it repeats (null when
        # that one was not matched); CHANNEL_ONLY, INTERNAL_ONLY and SUSPENSE carry null.
        pa.field("group_id", pa.string()),
        # Group-level differences, channel minus ours, each record signed by its kind (refunds
        # negative); null when not matched, and for the fee when either side does not know it.
        pa.field("amount_diff_minor", pa.int64()),
        pa.field("fee_diff_minor", pa.int64()),
    ]
)
"""One row per record of either side per run."""

SUMMARY_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("type", pa.string(), nullable=False),
        pa.field("side", pa.string(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("records", pa.int64(), nullable=False),
        pa.field("amount_minor", pa.int64(), nullable=False),  # sum of the records' own amounts
    ]
)
"""Counts and sums by (type, side, currency): amounts of two currencies are never added."""
