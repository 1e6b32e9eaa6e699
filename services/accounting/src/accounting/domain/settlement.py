"""A settlement (payout) batch and its states (no I/O): PENDING -> PAID_OUT | FAILED."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from paykit.errors import FailedPrecondition
from paykit.money import Money


class SettlementStatus(enum.Enum):
    PENDING = "PENDING"
    PAID_OUT = "PAID_OUT"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Settlement:
    settlement_id: str
    idempotency_key: str
    merchant_id: str
    amount: Money
    channel: str
    status: SettlementStatus
    created_at: datetime
    payout_reference: str = ""
    failure: str = ""
    paid_out_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None


def paid_out(s: Settlement, reference: str, at: datetime) -> Settlement:
    if s.status is not SettlementStatus.PENDING:
        raise FailedPrecondition(f"settlement {s.settlement_id} is {s.status.value}, not PENDING")
    return replace(
        s, status=SettlementStatus.PAID_OUT, payout_reference=reference, paid_out_at=at, next_attempt_at=None
    )


def failed(s: Settlement, failure: str) -> Settlement:
    if s.status is not SettlementStatus.PENDING:
        raise FailedPrecondition(f"settlement {s.settlement_id} is {s.status.value}, not PENDING")
    return replace(s, status=SettlementStatus.FAILED, failure=failure, next_attempt_at=None)
