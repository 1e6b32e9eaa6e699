"""Storing charges, raw exchanges and raw notifications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from channel_gateway.adapters.tables import channel_exchanges, charges, notifications
from channel_gateway.domain.channel import ChargeCommand, ChargeReply, ChargeState, RawExchange


@dataclass(frozen=True)
class StoredCharge:
    payment_id: str
    order_id: str
    channel: str
    reply: ChargeReply | None
    trace_headers: dict[str, str]


def _stored(row: Any) -> StoredCharge:
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


# Built once and executed with parameters: no statement construction per call.
_ADD_CHARGE = insert(charges).on_conflict_do_nothing().returning(charges.c.payment_id)
_CHARGE_BY_PAYMENT = select(charges).where(charges.c.payment_id == bindparam("b_payment_id"))
_RECORD_REPLY = update(charges).where(charges.c.payment_id == bindparam("b_payment_id"))
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

    def add_charge_if_absent(
        self, command: ChargeCommand, channel: str, trace_headers: dict[str, str]
    ) -> bool:
        """Store the charge unless the payment already has one; True when stored now."""
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

    def get_charge(self, payment_id: str) -> StoredCharge | None:
        row = self._session.execute(_CHARGE_BY_PAYMENT, {"b_payment_id": payment_id}).first()
        return _stored(row) if row else None

    def record_reply(self, payment_id: str, reply: ChargeReply) -> None:
        self._session.execute(
            _RECORD_REPLY,
            {
                "b_payment_id": payment_id,
                "state": reply.state.value,
                "channel_trade_no": reply.channel_trade_no,
                "pay_url": reply.pay_url,
                "decline_code": reply.decline_code,
                "decline_message": reply.decline_message,
            },
        )

    def record_exchange(self, payment_id: str, channel: str, raw: RawExchange) -> None:
        self._session.execute(
            _RECORD_EXCHANGE,
            {
                "payment_id": payment_id,
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
            },
        )

    def mark_published(self, notification_id: str, event_id: str) -> None:
        self._session.execute(
            _MARK_PUBLISHED, {"b_notification_id": notification_id, "published_event_id": event_id}
        )
