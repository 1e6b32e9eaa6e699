"""What the channel keeps per merchant account: trades, refunds, payouts, and their guarded transitions.

Pure state, no I/O. Amounts are Money and times are datetimes inside; each
protocol formats them its own way at its edge (simpay: protocols/simpay/views.py).

One merchant account is reachable through every enabled protocol (each maps
its own merchant identifier to the account, see Sandbox.register_merchant),
but each protocol keeps its own numbers: a trade, refund or payout is keyed
by (protocol, the merchant's own number), so the same out_trade_no sent
through simpay and through Alipay names two different trades, as it would at
two real channels. Every record remembers the protocol and the account that
created it: its notifications are formatted, signed and acknowledged by that
protocol.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from paykit.money import Money

from channel_simulator.behaviour import Behaviour
from channel_simulator.directives import NONE, Directives
from channel_simulator.limits import MAX_STATEMENT_EXTRAS

# (protocol name, the merchant's own number: out_trade_no, out_refund_no or out_payout_no).
Key = tuple[str, str]


def now() -> datetime:
    return datetime.now(UTC)


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
    # The protocol that created the trade (its registry name) and the merchant account it is at.
    protocol: str
    merchant_id: str
    trade_no: str
    out_trade_no: str
    # None only for a tombstone: a close that arrived before any charge.
    amount: Money | None
    notify_url: str
    subject: str = ""
    directives: Directives = NONE
    status: TradeStatus = TradeStatus.PENDING
    created_at: datetime = field(default_factory=now)
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    deliveries: Deliveries = field(default_factory=Deliveries)
    out_refund_nos: list[str] = field(default_factory=list)
    # What the protocol chose to keep from the request (e.g. an app id, a payer id); opaque here.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def tombstone(cls, protocol: str, merchant_id: str, trade_no: str, out_trade_no: str) -> Trade:
        """A closed trade for a number never charged: a later charge with it is refused."""
        closed_at = now()
        return cls(
            protocol,
            merchant_id,
            trade_no,
            out_trade_no,
            None,
            "",
            status=TradeStatus.CLOSED,
            created_at=closed_at,
            closed_at=closed_at,
        )

    @property
    def key(self) -> Key:
        return (self.protocol, self.out_trade_no)

    @property
    def is_tombstone(self) -> bool:
        return self.amount is None

    @property
    def notify_id(self) -> str:
        return f"N{self.trade_no}"

    def snapshot(self) -> Trade:
        """A copy as the trade stands now, for an answer that must not see later changes."""
        return dataclasses.replace(
            self,
            deliveries=dataclasses.replace(self.deliveries),
            out_refund_nos=list(self.out_refund_nos),
            extra=dict(self.extra),
        )

    def pay(self) -> bool:
        """PENDING -> SUCCESS; False (and nothing changes) when the trade was closed meanwhile."""
        if self.status is not TradeStatus.PENDING or self.amount is None:
            return False
        self.status = TradeStatus.SUCCESS
        self.paid_at = now()
        return True

    def close(self) -> bool:
        """PENDING or CLOSED -> CLOSED; False when it is already paid."""
        if self.status is TradeStatus.SUCCESS:
            return False
        if self.status is TradeStatus.PENDING:
            self.status = TradeStatus.CLOSED
            self.closed_at = now()
        return True


@dataclass
class Refund:
    protocol: str
    merchant_id: str
    refund_no: str
    out_refund_no: str
    out_trade_no: str
    amount: Money
    notify_url: str
    reason: str = ""
    status: RefundStatus = RefundStatus.PROCESSING
    code: str | None = None
    created_at: datetime = field(default_factory=now)
    refunded_at: datetime | None = None
    deliveries: Deliveries = field(default_factory=Deliveries)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.protocol, self.out_refund_no)

    @property
    def trade_key(self) -> Key:
        return (self.protocol, self.out_trade_no)

    @property
    def notify_id(self) -> str:
        return f"N{self.refund_no}"

    def snapshot(self) -> Refund:
        return dataclasses.replace(
            self, deliveries=dataclasses.replace(self.deliveries), extra=dict(self.extra)
        )

    def finish(self, succeeded: bool) -> bool:
        """PROCESSING -> SUCCESS | FAILED, once; False if it already finished."""
        if self.status is not RefundStatus.PROCESSING:
            return False
        self.status = RefundStatus.SUCCESS if succeeded else RefundStatus.FAILED
        self.code = None if succeeded else "REFUND_DECLINED"
        # The time the refund reached its final status (the notification's refunded_at).
        self.refunded_at = now()
        return True


@dataclass(frozen=True)
class Payout:
    """Money sent from the merchant's account at the channel to its bank account.

    Decided once, when first asked for, and never changed: a repeated request
    with the same out_payout_no gets this same payout back.
    """

    protocol: str
    merchant_id: str
    payout_no: str
    out_payout_no: str
    # The beneficiary as the merchant names it (its own merchant id or bank reference).
    merchant_ref: str
    amount: Money
    status: PayoutStatus
    code: str | None = None
    message: str | None = None
    paid_at: datetime | None = None
    created_at: datetime = field(default_factory=now)

    @property
    def key(self) -> Key:
        return (self.protocol, self.out_payout_no)

    @classmethod
    def decided(
        cls,
        protocol: str,
        merchant_id: str,
        payout_no: str,
        out_payout_no: str,
        merchant_ref: str,
        amount: Money,
        *,
        declined: bool,
    ) -> Payout:
        head = (protocol, merchant_id, payout_no, out_payout_no, merchant_ref, amount)
        if declined:
            return cls(
                *head, PayoutStatus.FAILED, code="PAYOUT_DECLINED", message="payout declined by sandbox"
            )
        return cls(*head, PayoutStatus.PAID, paid_at=now())


class StatementLineKind(enum.StrEnum):
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"


@dataclass(frozen=True)
class StatementExtra:
    """A line the channel lists on a day's statement with no trade or refund of its own behind it.

    Planted by the operator (POST /v1/admin/statement-extras) so reconciliation meets the
    discrepancies real channels produce: a payment the channel invents that the merchant never
    sent, a refund it lists twice, an amount that is not what was charged. Each protocol lists
    the extras of its own name on the statement of `day` (its business day, in its own zone),
    in its own format.
    """

    protocol: str
    day: date
    kind: StatementLineKind
    out_trade_no: str
    # The channel's trade number: the real trade's when out_trade_no names one, else invented.
    trade_no: str
    amount: Money
    out_refund_no: str = ""
    refund_no: str = ""
    # When the line says it happened; None: the protocol picks a moment within `day`.
    occurred_at: datetime | None = None
    subject: str = ""


@dataclass
class MerchantAccount:
    merchant_id: str
    # Position among the sandbox's merchants: keeps trade numbers unique across accounts.
    number: int
    behaviour: Behaviour = field(default_factory=Behaviour)
    rng: random.Random = field(default_factory=random.Random)
    trades: dict[Key, Trade] = field(default_factory=dict)
    refunds: dict[Key, Refund] = field(default_factory=dict)
    payouts: dict[Key, Payout] = field(default_factory=dict)
    # The channel's own numbers, for protocols that query by them (Alipay's trade_no, a PaymentIntent id).
    # Statement lines planted by the operator, every protocol's (StatementExtra.protocol).
    statement_extras: list[StatementExtra] = field(default_factory=list)
    _by_trade_no: dict[str, Trade] = field(default_factory=dict)
    _by_refund_no: dict[str, Refund] = field(default_factory=dict)
    _seq: int = 0

    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{now():%Y%m%d}{self.number:02d}{self._seq:010d}"

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

    # -- trades --------------------------------------------------------------------------
    def trade(self, protocol: str, out_trade_no: str) -> Trade | None:
        return self.trades.get((protocol, out_trade_no))

    def trade_by_no(self, protocol: str, trade_no: str) -> Trade | None:
        """The trade the channel numbered `trade_no`, if `protocol` created it."""
        trade = self._by_trade_no.get(trade_no)
        return trade if trade is not None and trade.protocol == protocol else None

    def add_trade(self, trade: Trade) -> None:
        if trade.merchant_id != self.merchant_id or trade.key in self.trades:
            raise ValueError(f"trade {trade.key} does not belong here or is already stored")
        self.trades[trade.key] = trade
        self._by_trade_no[trade.trade_no] = trade

    def trades_of(self, protocol: str) -> Iterator[Trade]:
        return (trade for trade in self.trades.values() if trade.protocol == protocol)

    # -- refunds -------------------------------------------------------------------------
    def refund(self, protocol: str, out_refund_no: str) -> Refund | None:
        return self.refunds.get((protocol, out_refund_no))

    def refund_by_no(self, protocol: str, refund_no: str) -> Refund | None:
        refund = self._by_refund_no.get(refund_no)
        return refund if refund is not None and refund.protocol == protocol else None

    def add_refund(self, refund: Refund) -> Trade:
        """Store `refund` against its trade (which must exist); returns the trade."""
        trade = self.trades.get(refund.trade_key)
        if trade is None or refund.merchant_id != self.merchant_id or refund.key in self.refunds:
            raise ValueError(f"refund {refund.key} has no trade here or is already stored")
        self.refunds[refund.key] = refund
        self._by_refund_no[refund.refund_no] = refund
        trade.out_refund_nos.append(refund.out_refund_no)
        return trade

    def refunds_of(self, trade: Trade) -> list[Refund]:
        return [self.refunds[(trade.protocol, no)] for no in trade.out_refund_nos]

    def refundable(self, trade: Trade) -> Money:
        """What may still be refunded: the trade amount less every refund that has not FAILED."""
        if trade.amount is None:
            raise ValueError(f"trade {trade.out_trade_no} has no amount")
        committed = Money.zero(trade.amount.currency)
        for refund in self.refunds_of(trade):
            if refund.status is not RefundStatus.FAILED:
                committed = committed + refund.amount
        return trade.amount - committed

    # -- payouts -------------------------------------------------------------------------
    def payout(self, protocol: str, out_payout_no: str) -> Payout | None:
        return self.payouts.get((protocol, out_payout_no))

    def add_payout(self, payout: Payout) -> None:
        if payout.merchant_id != self.merchant_id or payout.key in self.payouts:
            raise ValueError(f"payout {payout.key} does not belong here or is already stored")
        self.payouts[payout.key] = payout

    # -- statement extras ----------------------------------------------------------------
    def add_statement_extra(self, extra: StatementExtra) -> bool:
        """Keep `extra` for its protocol's statements; False (nothing kept) when the account holds
        MAX_STATEMENT_EXTRAS already."""
        if len(self.statement_extras) >= MAX_STATEMENT_EXTRAS:
            return False
        self.statement_extras.append(extra)
        return True

    def statement_extras_of(self, protocol: str, day: date) -> list[StatementExtra]:
        return [e for e in self.statement_extras if e.protocol == protocol and e.day == day]
