"""What the channel does, whatever protocol was asked: charge, query, close, refund, pay out.

Each protocol parses its own wire format into the requests here, calls these
functions with its own name, and formats the outcome (or the Refused raised)
in its own wire format. The functions decide and change state (accounts.py)
and schedule the asynchronous side (lifecycle.py): the payer, refunds
finishing, and notifications, which go out in the protocol that created the
trade. They hold the channel's rules, the same through every protocol:

- a new charge's fate is drawn once, directives first, then the account's
  rates in a fixed order (seeded runs stay comparable): LOST (no trade, no
  answer), DECLINED (no trade), ANSWER_LOST (the trade is created and paid,
  the answer never leaves), or ANSWERED;
- out_trade_no, out_refund_no and out_payout_no are idempotency keys per
  protocol and account: the same request gets the same record back, another
  request with the same number is refused;
- closing an unknown out_trade_no leaves a CLOSED tombstone: a charge with it
  arriving later is refused and never takes money;
- only a paid trade is refunded, in its own currency, and its refunds that
  have not FAILED never add up to more than it;
- out of order (directive or rate): the notification is delivered (and
  acknowledged) before the answer, which shows the record as it stood before.

A LOST or ANSWER_LOST outcome asks the protocol to lose its answer
(edge.lose_answer). The account's `behaviour.unavailable` (an outage) is the
protocol edge's to answer, before anything is read.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paykit.money import Money

from channel_simulator.accounts import MerchantAccount, Payout, Refund, Trade, TradeStatus
from channel_simulator.directives import NONE, DirectiveError, Directives, parse_directives
from channel_simulator.lifecycle import finish_refund, notify_payment, notify_refund, payer, settle_refund
from channel_simulator.limits import MAX_PAYOUTS, MAX_REFUNDS, MAX_TRADES
from channel_simulator.sandbox import Sandbox

# What a declined charge is told (RISK_DECLINED); protocols translate it to their own code.
DECLINE_CODE = "RISK_DECLINED"
DECLINE_MESSAGE = "declined by sandbox"


class Refusal(enum.Enum):
    """Why a request is refused, for the protocol to pick its own status (simpay: 400, 409, 503)."""

    INVALID = "invalid"  # the request itself is wrong
    CONFLICT = "conflict"  # a number already used otherwise, or the record's state forbids it
    FULL = "full"  # the sandbox stores no more


class Refused(Exception):
    """The channel refuses the request outright; nothing changed."""

    def __init__(self, code: str, message: str, kind: Refusal = Refusal.INVALID) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.kind = kind


# -- charges -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeRequest:
    out_trade_no: str
    amount: Money
    notify_url: str
    subject: str = ""
    directives: Directives = NONE
    # True for a channel that takes the money while it answers (a card authorised and captured):
    # the payer pays at once instead of after pay_delay_ms, and the answer shows the paid trade.
    settles_at_once: bool = False
    # Kept on the trade for the protocol (Trade.extra).
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def with_directives(
        cls, out_trade_no: str, amount: Money, notify_url: str, subject: str = "", **options: Any
    ) -> ChargeRequest:
        """The request with the `sim:` directives read from `subject`; Refused(INVALID_DIRECTIVE)."""
        try:
            directives = parse_directives(subject)
        except DirectiveError as exc:
            raise Refused("INVALID_DIRECTIVE", str(exc)) from exc
        return cls(out_trade_no, amount, notify_url, subject, directives, **options)


class Fate(enum.Enum):
    """What becomes of one new charge request, decided once when it arrives."""

    LOST = "lost"  # no trade, no answer
    DECLINED = "declined"  # answered DECLINED, no trade
    ANSWER_LOST = "answer_lost"  # trade created (and paid), answer never sent
    ANSWERED = "answered"


@dataclass(frozen=True)
class ChargeOutcome:
    fate: Fate
    # The trade as stored; None when LOST or DECLINED.
    trade: Trade | None = None
    # What the answer shows: the trade itself, or a copy taken before the payer paid when the
    # notification overtook the answer (out of order).
    shown: Trade | None = None
    # The out_trade_no was known: the answer is the existing trade, nothing new happened.
    repeated: bool = False


def _fate(merchant: MerchantAccount, directives: Directives) -> Fate:
    """Directives first; otherwise the merchant's rates, drawn in this fixed order."""
    behaviour = merchant.behaviour
    if directives.timeout or merchant.chance(behaviour.timeout_rate):
        return Fate.LOST
    if directives.decline or merchant.chance(behaviour.decline_rate):
        return Fate.DECLINED
    if directives.success_after_timeout or merchant.chance(behaviour.success_after_timeout_rate):
        return Fate.ANSWER_LOST
    return Fate.ANSWERED


def _repeat(existing: Trade, ask: ChargeRequest) -> ChargeOutcome:
    """Channels answer a repeated out_trade_no with the trade they already have, if it matches."""
    if existing.status is TradeStatus.CLOSED:
        raise Refused("TRADE_CLOSED", f"trade {existing.out_trade_no} is closed", Refusal.CONFLICT)
    if existing.amount != ask.amount:
        raise Refused("OUT_TRADE_NO_USED", "out_trade_no was used with another amount", Refusal.CONFLICT)
    return ChargeOutcome(Fate.ANSWERED, existing, existing, repeated=True)


def _room_for_trade(merchant: MerchantAccount) -> None:
    if len(merchant.trades) >= MAX_TRADES:
        raise Refused("SANDBOX_FULL", f"{MAX_TRADES} trades stored", Refusal.FULL)


async def create_charge(
    sandbox: Sandbox, merchant: MerchantAccount, protocol: str, ask: ChargeRequest
) -> ChargeOutcome:
    """A new charge (or the answer to a repeated one) at `merchant`, through `protocol`."""
    existing = merchant.trade(protocol, ask.out_trade_no)
    if existing is not None:
        return _repeat(existing, ask)
    _room_for_trade(merchant)
    fate = _fate(merchant, ask.directives)
    if fate in (Fate.LOST, Fate.DECLINED):
        return ChargeOutcome(fate)
    trade = Trade(
        protocol=protocol,
        merchant_id=merchant.merchant_id,
        trade_no=merchant.next_trade_no(),
        out_trade_no=ask.out_trade_no,
        amount=ask.amount,
        notify_url=ask.notify_url,
        subject=ask.subject,
        directives=ask.directives,
        extra=dict(ask.extra),
    )
    return await _open_trade(sandbox, merchant, trade, ask.settles_at_once, fate)


async def _open_trade(
    sandbox: Sandbox, merchant: MerchantAccount, trade: Trade, at_once: bool, fate: Fate
) -> ChargeOutcome:
    directives, behaviour = trade.directives, merchant.behaviour
    pays = not directives.no_pay and merchant.chance(behaviour.pay_rate)
    reorder = directives.out_of_order or merchant.chance(behaviour.out_of_order_rate)
    # Out of order only when an answer leaves at all.
    notify_first = pays and reorder and fate is Fate.ANSWERED
    shown = trade.snapshot() if notify_first and not at_once else trade
    task: asyncio.Task[None] | None = None
    if pays and at_once:
        trade.pay()
        # Spawned before the trade is stored: a busy sandbox refuses the charge and keeps nothing.
        task = sandbox.spawn(notify_payment(sandbox, merchant, trade))
    elif pays:
        delay_ms = behaviour.pay_delay_ms if directives.pay_delay_ms is None else directives.pay_delay_ms
        task = sandbox.spawn(payer(sandbox, merchant, trade, 0 if notify_first else delay_ms))
    merchant.add_trade(trade)
    if notify_first and task is not None:
        # Paid and notified (and acknowledged) before the charge's own answer leaves.
        await asyncio.wait({task})
    return ChargeOutcome(fate, trade, shown)


def query_charge(
    merchant: MerchantAccount, protocol: str, *, out_trade_no: str | None = None, trade_no: str | None = None
) -> Trade | None:
    """The trade `protocol` created, by the merchant's number or by the channel's; None if unknown."""
    if out_trade_no is not None:
        return merchant.trade(protocol, out_trade_no)
    if trade_no is not None:
        return merchant.trade_by_no(protocol, trade_no)
    raise ValueError("query_charge needs out_trade_no or trade_no")


def close_charge(merchant: MerchantAccount, protocol: str, out_trade_no: str) -> Trade:
    """The trade, now CLOSED; an unknown number leaves a CLOSED tombstone (Trade.is_tombstone).

    Refused TRADE_ALREADY_PAID (CONFLICT) when it is paid.
    """
    trade = merchant.trade(protocol, out_trade_no)
    if trade is None:
        _room_for_trade(merchant)
        # A tombstone: a charge with this number arriving later (a request that overtook
        # its own close on the network) is refused and can never take money.
        tombstone = Trade.tombstone(protocol, merchant.merchant_id, merchant.next_trade_no(), out_trade_no)
        merchant.add_trade(tombstone)
        return tombstone
    if not trade.close():
        raise Refused("TRADE_ALREADY_PAID", f"trade {out_trade_no} is paid", Refusal.CONFLICT)
    return trade


# -- refunds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundRequest:
    out_refund_no: str
    out_trade_no: str
    amount: Money
    notify_url: str
    reason: str = ""
    # True for a channel that settles refunds while it answers (Alipay's trade refund):
    # the answer shows SUCCESS or FAILED at once.
    settles_at_once: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRejected:
    """A refund the channel turns down without storing it: TRADE_NOT_FOUND, TRADE_NOT_PAID,
    REFUND_AMOUNT_EXCEEDED (simpay answers these with result FAILED)."""

    code: str
    message: str


@dataclass(frozen=True)
class RefundAccepted:
    refund: Refund
    # What the answer shows: the refund, or a copy taken before it finished when the
    # notification overtook the answer (out of order).
    shown: Refund
    # The out_refund_no was known: the answer is the existing refund, nothing new happened.
    repeated: bool = False


RefundOutcome = RefundAccepted | RefundRejected


def _rejection(merchant: MerchantAccount, protocol: str, ask: RefundRequest) -> RefundRejected | None:
    """Why the channel turns this new refund down, or None when it accepts it."""
    trade = merchant.trade(protocol, ask.out_trade_no)
    if trade is None:
        return RefundRejected("TRADE_NOT_FOUND", f"no trade {ask.out_trade_no}")
    if trade.status is not TradeStatus.SUCCESS or trade.amount is None:
        return RefundRejected("TRADE_NOT_PAID", f"trade {ask.out_trade_no} is {trade.status.value}")
    if ask.amount.currency != trade.amount.currency:
        raise Refused("CURRENCY_MISMATCH", f"the trade is in {trade.amount.currency}")
    refundable = merchant.refundable(trade)
    if ask.amount > refundable:
        return RefundRejected(
            "REFUND_AMOUNT_EXCEEDED", f"at most {refundable.format()} may still be refunded"
        )
    return None


async def create_refund(
    sandbox: Sandbox, merchant: MerchantAccount, protocol: str, ask: RefundRequest
) -> RefundOutcome:
    """A new refund of a trade `protocol` created (or the answer to a repeated one)."""
    existing = merchant.refund(protocol, ask.out_refund_no)
    if existing is not None:
        if (existing.out_trade_no, existing.amount) != (ask.out_trade_no, ask.amount):
            raise Refused("OUT_REFUND_NO_USED", "out_refund_no was used for another refund", Refusal.CONFLICT)
        return RefundAccepted(existing, existing, repeated=True)
    rejection = _rejection(merchant, protocol, ask)
    if rejection is not None:
        return rejection
    if len(merchant.refunds) >= MAX_REFUNDS:
        raise Refused("SANDBOX_FULL", f"{MAX_REFUNDS} refunds stored", Refusal.FULL)
    refund = Refund(
        protocol=protocol,
        merchant_id=merchant.merchant_id,
        refund_no=merchant.next_refund_no(),
        out_refund_no=ask.out_refund_no,
        out_trade_no=ask.out_trade_no,
        amount=ask.amount,
        notify_url=ask.notify_url,
        reason=ask.reason,
        extra=dict(ask.extra),
    )
    return await _start_refund(sandbox, merchant, refund, ask.settles_at_once)


async def _start_refund(
    sandbox: Sandbox, merchant: MerchantAccount, refund: Refund, at_once: bool
) -> RefundAccepted:
    trade = merchant.trades[refund.trade_key]
    reorder = trade.directives.out_of_order or merchant.chance(merchant.behaviour.out_of_order_rate)
    if at_once:
        settle_refund(merchant, refund)
        work = notify_refund(sandbox, merchant, trade, refund)
    else:
        delay_ms = 0 if reorder else merchant.behaviour.refund_delay_ms
        work = finish_refund(sandbox, merchant, trade, refund, delay_ms)
    shown = refund if at_once else refund.snapshot()
    # Spawned before the refund is stored: a busy sandbox refuses the refund and keeps nothing.
    finishing = sandbox.spawn(work)
    merchant.add_refund(refund)
    if reorder:
        # Finished and notified (and acknowledged) before the answer leaves.
        await asyncio.wait({finishing})
    return RefundAccepted(refund, shown)


def query_refund(
    merchant: MerchantAccount,
    protocol: str,
    *,
    out_refund_no: str | None = None,
    refund_no: str | None = None,
) -> Refund | None:
    if out_refund_no is not None:
        return merchant.refund(protocol, out_refund_no)
    if refund_no is not None:
        return merchant.refund_by_no(protocol, refund_no)
    raise ValueError("query_refund needs out_refund_no or refund_no")


# -- payouts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutRequest:
    out_payout_no: str
    # The beneficiary as the merchant names it (its own merchant id or bank reference).
    merchant_ref: str
    amount: Money


@dataclass(frozen=True)
class PayoutOutcome:
    payout: Payout
    repeated: bool = False


def create_payout(merchant: MerchantAccount, protocol: str, ask: PayoutRequest) -> PayoutOutcome:
    """Paid or declined at once (payout_decline_rate, drawn once per new payout), never changed after."""
    existing = merchant.payout(protocol, ask.out_payout_no)
    if existing is not None:
        if (existing.merchant_ref, existing.amount) != (ask.merchant_ref, ask.amount):
            raise Refused("OUT_PAYOUT_NO_USED", "out_payout_no was used for another payout", Refusal.CONFLICT)
        return PayoutOutcome(existing, repeated=True)
    if len(merchant.payouts) >= MAX_PAYOUTS:
        raise Refused("SANDBOX_FULL", f"{MAX_PAYOUTS} payouts stored", Refusal.FULL)
    declined = merchant.chance(merchant.behaviour.payout_decline_rate)
    payout = Payout.decided(
        protocol,
        merchant.merchant_id,
        merchant.next_payout_no(),
        ask.out_payout_no,
        ask.merchant_ref,
        ask.amount,
        declined=declined,
    )
    merchant.add_payout(payout)
    return PayoutOutcome(payout)


def query_payout(merchant: MerchantAccount, protocol: str, out_payout_no: str) -> Payout | None:
    return merchant.payout(protocol, out_payout_no)


__all__ = [
    "DECLINE_CODE",
    "DECLINE_MESSAGE",
    "ChargeOutcome",
    "ChargeRequest",
    "Fate",
    "PayoutOutcome",
    "PayoutRequest",
    "RefundAccepted",
    "RefundOutcome",
    "RefundRejected",
    "RefundRequest",
    "Refusal",
    "Refused",
    "close_charge",
    "create_charge",
    "create_payout",
    "create_refund",
    "query_charge",
    "query_payout",
    "query_refund",
]
