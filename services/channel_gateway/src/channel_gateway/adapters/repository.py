"""Storing charges, refunds, payouts, raw exchanges and raw notifications."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from paykit.money import Money
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from channel_gateway.adapters import statements
from channel_gateway.adapters.statements import StoredStatement
from channel_gateway.adapters.tables import channel_exchanges, charges, notifications, payouts, refunds
from channel_gateway.domain.channel import (
    ChargeCommand,
    ChargeReply,
    ChargeState,
    PayoutCommand,
    PayoutReply,
    PayoutState,
    RawExchange,
    RefundCommand,
    RefundReply,
    RefundState,
    StatementFile,
    payout_state_after,
    refund_state_after,
)


@dataclass(frozen=True)
class StoredCharge:
    payment_id: str
    order_id: str
    channel: str
    reply: ChargeReply | None
    trace_headers: dict[str, str]


@dataclass(frozen=True)
class StoredRefund:
    refund_id: str
    payment_id: str
    order_id: str
    channel: str
    amount: Money
    # The channel's latest word on the refund; None until it answered.
    reply: RefundReply | None
    trace_headers: dict[str, str]


@dataclass(frozen=True)
class StoredPayout:
    settlement_id: str
    merchant_id: str
    channel: str
    amount: Money
    # The channel's answer; None until it answered.
    reply: PayoutReply | None


def _stored_charge(row: Any) -> StoredCharge:
    reply = None
    if row.state is not None:
        reply = ChargeReply(
            ChargeState(row.state),
            row.channel_trade_no or "",
            row.pay_url or "",
            row.decline_code or "",
            row.decline_message or "",
        )
    return StoredCharge(row.payment_id, row.order_id, row.channel, reply, dict(row.trace_headers))


def _stored_refund(row: Any) -> StoredRefund:
    amount = Money(row.amount_minor, row.currency)
    reply = None
    if row.state is not None:
        reply = RefundReply(
            RefundState(row.state),
            row.channel_refund_no or "",
            row.failure_code or "",
            row.failure_message or "",
            amount,
            row.refunded_at,
        )
    return StoredRefund(
        row.refund_id, row.payment_id, row.order_id, row.channel, amount, reply, dict(row.trace_headers)
    )


def _stored_payout(row: Any) -> StoredPayout:
    reply = None
    if row.state is not None:
        reply = PayoutReply(
            PayoutState(row.state),
            row.payout_reference or "",
            row.failure_code or "",
            row.failure_message or "",
        )
    return StoredPayout(
        row.settlement_id, row.merchant_id, row.channel, Money(row.amount_minor, row.currency), reply
    )


# Built once and executed with parameters: no statement construction per call.
_ADD_CHARGE = insert(charges).on_conflict_do_nothing().returning(charges.c.payment_id)
_CHARGE = select(charges).where(
    charges.c.payment_id == bindparam("b_payment_id"), charges.c.channel == bindparam("b_channel")
)
_RECORD_REPLY = update(charges).where(
    charges.c.payment_id == bindparam("b_payment_id"), charges.c.channel == bindparam("b_channel")
)
_ADD_REFUND = insert(refunds).on_conflict_do_nothing().returning(refunds.c.refund_id)
_REFUND = select(refunds).where(refunds.c.refund_id == bindparam("b_refund_id"))
_REFUND_FOR_UPDATE = _REFUND.with_for_update()
_RECORD_REFUND_REPLY = (
    update(refunds).where(refunds.c.refund_id == bindparam("b_refund_id")).values(updated_at=func.now())
)
_ADD_PAYOUT = insert(payouts).on_conflict_do_nothing().returning(payouts.c.settlement_id)
_PAYOUT = select(payouts).where(payouts.c.settlement_id == bindparam("b_settlement_id"))
_PAYOUT_FOR_UPDATE = _PAYOUT.with_for_update()
_RECORD_PAYOUT_REPLY = (
    update(payouts)
    .where(payouts.c.settlement_id == bindparam("b_settlement_id"))
    .values(updated_at=func.now())
)
_RECORD_EXCHANGE = channel_exchanges.insert()
_RECORD_NOTIFICATION = notifications.insert()
_MARK_PUBLISHED = (
    update(notifications)
    .where(notifications.c.notification_id == bindparam("b_notification_id"))
    .values(verdict="PUBLISHED")
)


class GatewayRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def store_statement(self, channel: str, file: StatementFile) -> StoredStatement:
        return statements.store(self._session, channel, file)

    # -- charges ----------------------------------------------------------------------
    def add_charge_if_absent(
        self, command: ChargeCommand, channel: str, trace_headers: dict[str, str]
    ) -> bool:
        """Store the charge unless the payment already has one at this channel; True when stored now."""
        inserted = self._session.execute(
            _ADD_CHARGE,
            {
                "payment_id": command.payment_id,
                "order_id": command.order_id,
                "channel": channel,
                "amount_minor": command.amount.minor,
                "currency": command.amount.currency,
                "trace_headers": trace_headers,
            },
        ).first()
        return inserted is not None

    def get_charge(self, payment_id: str, channel: str) -> StoredCharge | None:
        row = self._session.execute(_CHARGE, {"b_payment_id": payment_id, "b_channel": channel}).first()
        return _stored_charge(row) if row else None

    def record_reply(self, payment_id: str, channel: str, reply: ChargeReply) -> None:
        self._session.execute(
            _RECORD_REPLY,
            {
                "b_payment_id": payment_id,
                "b_channel": channel,
                "state": reply.state.value,
                "channel_trade_no": reply.channel_trade_no,
                "pay_url": reply.pay_url,
                "decline_code": reply.decline_code,
                "decline_message": reply.decline_message,
            },
        )

    def record_charge_closed(self, payment_id: str, channel: str) -> None:
        """The channel closed the charge: a repeated Charge is answered CLOSED from now on."""
        self._session.execute(
            _RECORD_REPLY,
            {"b_payment_id": payment_id, "b_channel": channel, "state": ChargeState.CLOSED.value},
        )

    # -- refunds ----------------------------------------------------------------------
    def add_refund_if_absent(
        self, command: RefundCommand, channel: str, trace_headers: dict[str, str]
    ) -> bool:
        """Store the refund unless one with its refund_id exists; True when stored now."""
        inserted = self._session.execute(
            _ADD_REFUND,
            {
                "refund_id": command.refund_id,
                "payment_id": command.payment_id,
                "order_id": command.order_id,
                "channel": channel,
                "amount_minor": command.amount.minor,
                "currency": command.amount.currency,
                "trace_headers": trace_headers,
            },
        ).first()
        return inserted is not None

    def get_refund(self, refund_id: str, *, for_update: bool = False) -> StoredRefund | None:
        """The stored refund; `for_update` locks the row until commit (state changes read-then-write)."""
        statement = _REFUND_FOR_UPDATE if for_update else _REFUND
        row = self._session.execute(statement, {"b_refund_id": refund_id}).first()
        return _stored_refund(row) if row else None

    def advance_refund(self, refund_id: str, payment_id: str, channel: str, reply: RefundReply) -> bool:
        """Record what the channel now says of a refund we stored, if it moves the refund forward.

        The row is locked while read and written: a notification and a query
        answer arriving together cannot lose one another's update.
        """
        stored = self.get_refund(refund_id, for_update=True)
        if stored is None or (stored.payment_id, stored.channel) != (payment_id, channel):
            return False
        new_state = refund_state_after(stored.reply.state if stored.reply else None, reply.state)
        if new_state is None:
            return False
        self._record_refund_reply(refund_id, new_state, reply)
        return True

    def _record_refund_reply(self, refund_id: str, state: RefundState, reply: RefundReply) -> None:
        self._session.execute(
            _RECORD_REFUND_REPLY,
            {
                "b_refund_id": refund_id,
                "state": state.value,
                "channel_refund_no": reply.channel_refund_no or None,
                "failure_code": reply.failure_code or None,
                "failure_message": reply.failure_message or None,
                "refunded_at": reply.refunded_at,
            },
        )

    # -- payouts ----------------------------------------------------------------------
    def add_payout_if_absent(self, command: PayoutCommand, channel: str) -> bool:
        """Store the payout, unanswered, unless its settlement has one; True when stored now."""
        inserted = self._session.execute(
            _ADD_PAYOUT,
            {
                "settlement_id": command.settlement_id,
                "merchant_id": command.merchant_id,
                "channel": channel,
                "amount_minor": command.amount.minor,
                "currency": command.amount.currency,
            },
        ).first()
        return inserted is not None

    def get_payout(self, settlement_id: str, *, for_update: bool = False) -> StoredPayout | None:
        statement = _PAYOUT_FOR_UPDATE if for_update else _PAYOUT
        row = self._session.execute(statement, {"b_settlement_id": settlement_id}).first()
        return _stored_payout(row) if row else None

    def record_payout_reply(self, settlement_id: str, reply: PayoutReply) -> PayoutReply | None:
        """Record the channel's answer on the stored payout; the answer that stands, which is an
        earlier one when a concurrent request recorded it first. None: no such payout stored.

        The row is locked while read and written, so two answers cannot both be recorded.
        """
        stored = self.get_payout(settlement_id, for_update=True)
        if stored is None:
            return None
        current = stored.reply.state if stored.reply else None
        if payout_state_after(current, reply.state) is None:
            return stored.reply
        self._session.execute(
            _RECORD_PAYOUT_REPLY,
            {
                "b_settlement_id": settlement_id,
                "state": reply.state.value,
                "payout_reference": reply.payout_reference or None,
                "failure_code": reply.failure_code or None,
                "failure_message": reply.failure_message or None,
            },
        )
        return reply

    # -- raw records ------------------------------------------------------------------
    def record_exchange(
        self,
        payment_id: str | None,
        channel: str,
        raw: RawExchange,
        refund_id: str | None = None,
        settlement_id: str | None = None,
        statement_day: date | None = None,
    ) -> None:
        """Store one exchange, about a payment (and maybe its refund), a settlement's payout or
        a day's statement."""
        self._session.execute(
            _RECORD_EXCHANGE,
            {
                "payment_id": payment_id,
                "refund_id": refund_id,
                "settlement_id": settlement_id,
                "statement_day": statement_day,
                "channel": channel,
                "operation": raw.operation,
                "request_body": raw.request_body,
                "response_status": raw.response_status,
                "response_body": raw.response_body,
                "latency_ms": raw.latency_ms,
                "error": raw.error or None,
            },
        )

    def record_notification(
        self,
        *,
        notification_id: str,
        channel: str,
        headers: dict[str, str],
        body: bytes,
        verdict: str,
        reject_reason: str | None = None,
        channel_notify_id: str | None = None,
        payment_id: str | None = None,
        refund_id: str | None = None,
    ) -> None:
        self._session.execute(
            _RECORD_NOTIFICATION,
            {
                "notification_id": notification_id,
                "channel": channel,
                "headers": headers,
                "body": body,
                "verdict": verdict,
                "reject_reason": reject_reason,
                "channel_notify_id": channel_notify_id,
                "payment_id": payment_id,
                "refund_id": refund_id,
            },
        )

    def mark_published(self, notification_id: str, event_id: str) -> None:
        self._session.execute(
            _MARK_PUBLISHED, {"b_notification_id": notification_id, "published_event_id": event_id}
        )
