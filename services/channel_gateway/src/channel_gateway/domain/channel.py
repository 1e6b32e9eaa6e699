"""What the gateway knows of channels, independent of any one channel's protocol."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, assert_never

from paykit.money import Money


class ChargeState(enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    NOT_FOUND = "NOT_FOUND"
    # Closed before it was paid: it can no longer be paid.
    CLOSED = "CLOSED"


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


class RefundState(enum.Enum):
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    # The channel has no record of the refund.
    NOT_FOUND = "NOT_FOUND"


def refund_state_after(current: RefundState | None, reported: RefundState) -> RefundState | None:
    """The stored state once the channel reported `reported`; None when nothing is to change.

    A refund only moves forward: (nothing) -> PROCESSING -> SUCCEEDED | FAILED.
    A late PROCESSING answer or a NOT_FOUND (a query that raced the refund
    request) never overwrites what the channel said before.
    """
    open_states = (None, RefundState.NOT_FOUND)
    match reported:
        case RefundState.NOT_FOUND:
            return None
        case RefundState.PROCESSING:
            return reported if current in open_states else None
        case RefundState.SUCCEEDED | RefundState.FAILED:
            # A final state is final: a channel contradicting itself changes nothing stored.
            return reported if current in (*open_states, RefundState.PROCESSING) else None
        case _:
            assert_never(reported)


@dataclass(frozen=True)
class RefundCommand:
    refund_id: str
    payment_id: str
    order_id: str
    amount: Money
    # The captured amount of the payment (some channels require it with the refund).
    payment_amount: Money
    reason: str
    notify_url: str


@dataclass(frozen=True)
class RefundReply:
    state: RefundState
    channel_refund_no: str = ""
    failure_code: str = ""
    failure_message: str = ""
    amount: Money | None = None
    refunded_at: datetime | None = None


class CloseResult(enum.Enum):
    # Closed, or never reached the channel: nothing can be paid on it now.
    CLOSED = "CLOSED"
    # Too late: the payer already paid.
    ALREADY_PAID = "ALREADY_PAID"


@dataclass(frozen=True)
class CloseReply:
    result: CloseResult
    message: str = ""


class PayoutState(enum.Enum):
    PAID = "PAID"
    # Refused by the channel: no money moved.
    FAILED = "FAILED"


def payout_state_after(current: PayoutState | None, reported: PayoutState) -> PayoutState | None:
    """The stored state once the channel answered `reported`; None when nothing is to change.

    A payout moves once: (asked, unanswered) -> PAID | FAILED. The channel's
    first answer stands: accounting has been (or is being) told it, and it
    moves the merchant's money by it.
    """
    match current:
        case None:
            return reported
        case PayoutState.PAID | PayoutState.FAILED:
            return None
        case _:
            assert_never(current)


@dataclass(frozen=True)
class PayoutCommand:
    """Pay a merchant's settlement out to its bank account; settlement_id is the idempotency key."""

    settlement_id: str
    merchant_id: str
    amount: Money


@dataclass(frozen=True)
class PayoutReply:
    state: PayoutState
    # The channel's number for the payout (also on a FAILED one, when the channel gave one).
    payout_reference: str = ""
    failure_code: str = ""
    failure_message: str = ""


@dataclass(frozen=True)
class StatementFile:
    """A channel's statement (bill) of one day, as the channel delivered it: bytes in the
    channel's own format and encoding, parsed by reconciliation, never here."""

    day: date
    format: str  # e.g. "alipay-trade-bill", "wechatpay-trade-bill", "card-settlement-csv"
    content: bytes
    filename: str = ""


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
class PaymentNotification:
    channel_notify_id: str
    payment_id: str
    channel_trade_no: str
    succeeded: bool
    amount: Money
    occurred_at: datetime
    kind: Literal["payment"] = "payment"


@dataclass(frozen=True)
class RefundNotification:
    channel_notify_id: str
    refund_id: str
    payment_id: str
    channel_refund_no: str
    succeeded: bool
    amount: Money
    occurred_at: datetime
    kind: Literal["refund"] = "refund"


# What a verified webhook carries; `kind` tags the variant (match on the class or on kind).
VerifiedNotification = PaymentNotification | RefundNotification


@dataclass(frozen=True)
class AcknowledgedOnly:
    """A genuine notification (signature verified) that says nothing to act on, e.g. a trade
    still waiting for the buyer: acknowledged so the channel stops sending it, stored, and
    published nowhere. Refusing it would only make the channel retry it for a day."""

    channel_notify_id: str
    reason: str


class NotificationRejected(Exception):
    """A notification that must not be trusted: bad signature, stale, malformed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChannelConflict(Exception):
    """The channel holds something else under our idempotency key (e.g. a payout with the same
    number and another amount): neither a success nor a refusal, so neither may be recorded.

    `raw` is the exchange, kept for audit.
    """

    def __init__(self, message: str, raw: RawExchange | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class ChannelErrorKind(enum.Enum):
    """Every channel's error codes map into these few (each connector keeps its own table).

    Only DECLINED is an answer about the payment itself; the others say the request was
    not acted on (safe to send again, or elsewhere), except UNKNOWN_OUTCOME: the request
    may have been acted on, so only a query can tell.
    """

    # The channel refused the payment (card declined, balance, risk): try another channel.
    DECLINED = "DECLINED"
    # Our request was malformed in the channel's eyes: nothing happened.
    INVALID_REQUEST = "INVALID_REQUEST"
    # Our credentials or account configuration were refused: nothing happened.
    AUTHENTICATION = "AUTHENTICATION"
    # Too many requests: nothing happened; try later.
    RATE_LIMITED = "RATE_LIMITED"
    # The channel said it cannot serve now (maintenance, system busy before acting).
    CHANNEL_UNAVAILABLE = "CHANNEL_UNAVAILABLE"
    # Sent, and no trustworthy answer: it may have happened; query before anything else.
    UNKNOWN_OUTCOME = "UNKNOWN_OUTCOME"


class ChannelRefused(Exception):
    """The channel answered, and refused the request without acting on it (any kind but
    DECLINED, which is a reply state, and UNKNOWN_OUTCOME, which is ChannelUnavailable).

    `channel_code` is the channel's own code, kept raw; `raw` the exchange, kept for audit.
    """

    def __init__(
        self, kind: ChannelErrorKind, channel_code: str, message: str, raw: RawExchange | None = None
    ) -> None:
        super().__init__(f"{kind.value} ({channel_code}): {message}")
        self.kind = kind
        self.channel_code = channel_code
        self.raw = raw


class ChannelUnavailable(Exception):
    """The channel did not answer or answered garbage: the outcome is unknown
    (ChannelErrorKind.UNKNOWN_OUTCOME).

    `raw` is the exchange as far as it went (the garbage answer, if any), kept for audit.
    """

    def __init__(self, message: str, raw: RawExchange | None = None) -> None:
        super().__init__(message)
        self.raw = raw
