"""Which of two states of one payment or refund the internal record keeps.

Latest state wins by rank: a stored record is replaced only by an outcome whose status ranks
higher,

    PENDING < FAILED = CLOSED < SUCCEEDED (< PARTIALLY_REFUNDED < REFUNDED, never captured)

so a FAILED never erases a SUCCEEDED (a success is money that moved; if a channel says
otherwise, that is for the reconciliation to show, not for the capture to hide), a late or
replayed refund.created never rolls a refund back to PENDING, and of two outcomes of the same
rank the first captured stays (whatever order replays deliver them in, the row ends the same).
"""

from __future__ import annotations

from typing import Final

from reconciliation.domain import RecordStatus

STATUS_RANK: Final[dict[str, int]] = {
    RecordStatus.PENDING: 0,
    RecordStatus.FAILED: 1,
    RecordStatus.CLOSED: 1,
    RecordStatus.SUCCEEDED: 2,
    RecordStatus.PARTIALLY_REFUNDED: 3,
    RecordStatus.REFUNDED: 4,
}


def replaces(incoming: str, stored: str) -> bool:
    return STATUS_RANK[incoming] > STATUS_RANK[stored]
