"""What the gateway knows of channels, independent of any one channel's protocol."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from paykit.money import Money


class ChargeState(enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True)
class ChargeCommand:
    payment_id: str
    order_id: str
    amount: Money
    method: str
    subject: str
    notify_url: str


@dataclass(frozen=True)
class ChargeReply:
    state: ChargeState
    channel_trade_no: str = ""
    pay_url: str = ""
    decline_code: str = ""
    decline_message: str = ""


@dataclass(frozen=True)
class QueryReply:
    state: ChargeState
    channel_trade_no: str = ""
    amount: Money | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True)
class RawExchange:
    """One request to a channel and its answer, kept verbatim for audit."""

    operation: str
    request_body: str
    response_status: int
    response_body: str
    latency_ms: int
    error: str = ""


@dataclass(frozen=True)
class VerifiedNotification:
    channel_notify_id: str
    payment_id: str
    channel_trade_no: str
    succeeded: bool
    amount: Money
    occurred_at: datetime


class NotificationRejected(Exception):
    """A notification that must not be trusted: bad signature, stale, malformed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChannelUnavailable(Exception):
    """The channel did not answer or answered garbage: the outcome is unknown."""
