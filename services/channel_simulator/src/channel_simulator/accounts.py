"""What the channel keeps per merchant account: trades, refunds, payouts, and their guarded transitions.

Pure state, no I/O. Amounts are Money inside; the decimal strings of the
wire format appear only in views.py.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from paykit.money import Money

from channel_simulator.behaviour import Behaviour
from channel_simulator.directives import NONE, Directives


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class TradeStatus(enum.StrEnum):
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"


class RefundStatus(enum.StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class PayoutStatus(enum.StrEnum):
    PAID = "PAID"
    FAILED = "FAILED"


@dataclass
class Deliveries:
    """How often the channel posted a notification, and how many copies were acknowledged."""

    sent: int = 0
    acked: int = 0


@dataclass
class Trade:
    trade_no: str
    out_trade_no: str
    # None only for a tombstone: a close that arrived before any charge.
    amount: Money | None
    notify_url: str
    subject: str = ""
    directives: Directives = NONE
    status: TradeStatus = TradeStatus.PENDING
    paid_at: str | None = None
    closed_at: str | None = None
    deliveries: Deliveries = field(default_factory=Deliveries)
    out_refund_nos: list[str] = field(default_factory=list)

    @classmethod
    def tombstone(cls, trade_no: str, out_trade_no: str) -> Trade:
        """A closed trade for a number never charged: a later charge with it is refused."""
        return cls(trade_no, out_trade_no, None, "", status=TradeStatus.CLOSED, closed_at=now_text())

    @property
    def notify_id(self) -> str:
        return f"N{self.trade_no}"

    def pay(self) -> bool:
        """PENDING -> SUCCESS; False (and nothing changes) when the trade was closed meanwhile."""
        if self.status is not TradeStatus.PENDING or self.amount is None:
            return False
        self.status = TradeStatus.SUCCESS
        self.paid_at = now_text()
        return True

    def close(self) -> bool:
        """PENDING or CLOSED -> CLOSED; False when it is already paid."""
        if self.status is TradeStatus.SUCCESS:
            return False
        if self.status is TradeStatus.PENDING:
            self.status = TradeStatus.CLOSED
            self.closed_at = now_text()
        return True


@dataclass
class Refund:
    refund_no: str
    out_refund_no: str
    out_trade_no: str
    amount: Money
    notify_url: str
    reason: str = ""
    status: RefundStatus = RefundStatus.PROCESSING
    code: str | None = None
    refunded_at: str | None = None
    deliveries: Deliveries = field(default_factory=Deliveries)

    @property
    def notify_id(self) -> str:
        return f"N{self.refund_no}"

    def finish(self, succeeded: bool) -> bool:
        """PROCESSING -> SUCCESS | FAILED, once; False if it already finished."""
        if self.status is not RefundStatus.PROCESSING:
            return False
        self.status = RefundStatus.SUCCESS if succeeded else RefundStatus.FAILED
        self.code = None if succeeded else "REFUND_DECLINED"
        # The time the refund reached its final status (the notification's refunded_at).
        self.refunded_at = now_text()
        return True


@dataclass(frozen=True)
class Payout:
    """Money sent from the merchant's account at the channel to its bank account.

    Decided once, when first asked for, and never changed: a repeated request
    with the same out_payout_no gets this same payout back.
    """

    payout_no: str
    out_payout_no: str
    # The beneficiary as the merchant names it (its own merchant id or bank reference).
    merchant_ref: str
    amount: Money
    status: PayoutStatus
    code: str | None = None
    message: str | None = None
    paid_at: str | None = None
    created_at: str = field(default_factory=now_text)

    @classmethod
    def decided(
        cls, payout_no: str, out_payout_no: str, merchant_ref: str, amount: Money, *, declined: bool
    ) -> Payout:
        if declined:
            return cls(
                payout_no,
                out_payout_no,
                merchant_ref,
                amount,
                PayoutStatus.FAILED,
                code="PAYOUT_DECLINED",
                message="payout declined by sandbox",
            )
        return cls(payout_no, out_payout_no, merchant_ref, amount, PayoutStatus.PAID, paid_at=now_text())


@dataclass
class MerchantAccount:
    merchant_id: str
    # Position among the sandbox's merchants: keeps trade numbers unique across accounts.
    number: int
    behaviour: Behaviour = field(default_factory=Behaviour)
    rng: random.Random = field(default_factory=random.Random)
    trades: dict[str, Trade] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    payouts: dict[str, Payout] = field(default_factory=dict)
    _seq: int = 0

    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{datetime.now(UTC):%Y%m%d}{self.number:02d}{self._seq:010d}"

    def next_trade_no(self) -> str:
        return self._next("SIM")

    def next_refund_no(self) -> str:
        return self._next("SIMR")

    def next_payout_no(self) -> str:
        return self._next("SIMP")

    def chance(self, rate: float) -> bool:
        """True with probability `rate`; no draw at all for 0 and 1, so seeded runs stay comparable."""
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        return self.rng.random() < rate

    def refunds_of(self, trade: Trade) -> list[Refund]:
        return [self.refunds[no] for no in trade.out_refund_nos]

    def refundable(self, trade: Trade) -> Money:
        """What may still be refunded: the trade amount less every refund that has not FAILED."""
        if trade.amount is None:
            raise ValueError(f"trade {trade.out_trade_no} has no amount")
        committed = Money.zero(trade.amount.currency)
        for refund in self.refunds_of(trade):
            if refund.status is not RefundStatus.FAILED:
                committed = committed + refund.amount
        return trade.amount - committed
