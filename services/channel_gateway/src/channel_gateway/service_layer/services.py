"""channel-gateway use cases: charge, query, receive a notification."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from paykit.db import run_blocking
from paykit.errors import InvalidArgument, NotFound, Unavailable
from paykit.ids import IdKind, deterministic_id, new_id
from paykit.telemetry import inject_carrier
from sqlalchemy.orm import Session, sessionmaker

from channel_gateway.adapters.connectors.base import ChannelConnector
from channel_gateway.adapters.repository import GatewayRepository
from channel_gateway.domain.channel import (
    ChannelUnavailable,
    ChargeCommand,
    ChargeReply,
    NotificationRejected,
    QueryReply,
    RawExchange,
    VerifiedNotification,
)

log = logging.getLogger(__name__)


class NotificationSink(Protocol):
    """Where verified notifications go (Kafka); must not return before they are durable."""

    def publish(
        self,
        notification: VerifiedNotification,
        channel: str,
        order_id: str,
        event_id: str,
        trace_headers: Mapping[str, str],
    ) -> None: ...


@dataclass
class Gateway:
    sessions: sessionmaker[Session]
    connectors: Mapping[str, ChannelConnector]
    sink: NotificationSink
    notify_url_for: Callable[[str], str]

    def connector(self, channel: str) -> ChannelConnector:
        found = self.connectors.get(channel)
        if found is None:
            raise InvalidArgument("channel", f"unknown channel {channel!r}; known: {sorted(self.connectors)}")
        return found

    # -- charge ------------------------------------------------------------
    def _prepare_charge(
        self, command: ChargeCommand, channel: str, trace: dict[str, str]
    ) -> ChargeReply | None:
        with self.sessions.begin() as session:
            repo = GatewayRepository(session)
            if repo.add_charge_if_absent(command, channel, trace):
                return None  # new: nothing answered yet
            stored = repo.get_charge(command.payment_id)
        # A charge the channel already answered is answered the same way again.
        return stored.reply if stored else None

    def _record(self, payment_id: str, channel: str, raw: RawExchange, reply: ChargeReply | None) -> None:
        with self.sessions.begin() as session:
            repo = GatewayRepository(session)
            repo.record_exchange(payment_id, channel, raw)
            if reply is not None:
                repo.record_reply(payment_id, reply)

    async def charge(self, command: ChargeCommand, channel: str) -> ChargeReply:
        connector = self.connector(channel)
        previous = await run_blocking(self._prepare_charge, command, channel, inject_carrier())
        if previous is not None:
            return previous
        try:
            reply, raw = await connector.charge(command)
        except ChannelUnavailable as exc:
            await run_blocking(
                self._record,
                command.payment_id,
                channel,
                RawExchange("charge", "", 0, "", 0, error=str(exc)),
                None,
            )
            raise Unavailable(f"channel {channel} did not answer the charge: {exc}") from exc
        await run_blocking(self._record, command.payment_id, channel, raw, reply)
        return reply

    async def query(self, payment_id: str, channel: str) -> QueryReply:
        connector = self.connector(channel)
        try:
            reply, raw = await connector.query(payment_id)
        except ChannelUnavailable as exc:
            raise Unavailable(f"channel {channel} did not answer the query: {exc}") from exc
        await run_blocking(self._record, payment_id, channel, raw, None)
        return reply

    # -- notification ------------------------------------------------------
    def _store_rejected(self, channel: str, headers: dict[str, str], body: bytes, reason: str) -> None:
        with self.sessions.begin() as session:
            GatewayRepository(session).record_notification(
                notification_id=new_id(IdKind.NOTIFICATION),
                channel=channel,
                headers=headers,
                body=body,
                verdict="REJECTED",
                reject_reason=reason,
            )

    def _store_verified(
        self, channel: str, headers: dict[str, str], body: bytes, note: VerifiedNotification
    ) -> tuple[str, str, dict[str, str]] | None:
        """Store the raw notification; (notification id, order id, trace), or None for an unknown payment."""
        notification_id = new_id(IdKind.NOTIFICATION)
        with self.sessions.begin() as session:
            repo = GatewayRepository(session)
            charge = repo.get_charge(note.payment_id)
            if charge is None or charge.channel != channel:
                repo.record_notification(
                    notification_id=notification_id,
                    channel=channel,
                    headers=headers,
                    body=body,
                    verdict="REJECTED",
                    reject_reason=f"no charge {note.payment_id} at {channel}",
                    channel_notify_id=note.channel_notify_id,
                    payment_id=note.payment_id,
                )
                return None
            repo.record_notification(
                notification_id=notification_id,
                channel=channel,
                headers=headers,
                body=body,
                verdict="VERIFIED",
                channel_notify_id=note.channel_notify_id,
                payment_id=note.payment_id,
            )
            return notification_id, charge.order_id, charge.trace_headers

    def _publish(
        self,
        notification_id: str,
        note: VerifiedNotification,
        channel: str,
        order_id: str,
        trace: Mapping[str, str],
    ) -> None:
        # Same channel notification id -> same event id, so a channel that
        # repeats itself produces events the consumers' inbox collapses.
        event_id = deterministic_id(IdKind.EVENT, channel, note.channel_notify_id)
        self.sink.publish(note, channel, order_id, event_id, trace)
        with self.sessions.begin() as session:
            GatewayRepository(session).mark_published(notification_id, event_id)

    async def receive_notification(
        self, channel: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str]:
        """Verify, store raw, publish, and only then return the acknowledgement for the channel."""
        connector = self.connector(channel)
        kept_headers = {k: v for k, v in headers.items() if k.lower().startswith(("x-", "content-"))}
        try:
            note = connector.verify_notification(path, headers, body)
        except NotificationRejected as exc:
            log.warning("notification rejected", extra={"channel": channel, "reason": exc.reason})
            await run_blocking(self._store_rejected, channel, kept_headers, body, exc.reason)
            return connector.acknowledgement(False)
        stored = await run_blocking(self._store_verified, channel, kept_headers, body, note)
        if stored is None:
            raise NotFound(f"notification names unknown payment {note.payment_id}")
        notification_id, order_id, trace = stored
        await run_blocking(self._publish, notification_id, note, channel, order_id, trace)
        return connector.acknowledgement(True)
