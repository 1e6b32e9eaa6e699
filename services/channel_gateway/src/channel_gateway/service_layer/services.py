"""channel-gateway use cases: charge, query, close, refund, query a refund, pay a settlement out,
receive a notification.

Every exchange with a channel is stored raw (channel_exchanges), answered
or not. Charges, refunds and payouts are stored before the channel is
called, so a repeated request finds them and the channel's idempotency key
is ours.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Protocol, TypeVar

from paykit.db import run_blocking
from paykit.errors import (
    AlreadyExists,
    DomainError,
    ErrorInfo,
    FailedPrecondition,
    InvalidArgument,
    InvariantViolation,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from paykit.ids import IdKind, deterministic_id, new_id
from paykit.telemetry import inject_carrier
from sqlalchemy.orm import Session, sessionmaker

from channel_gateway.adapters import statements
from channel_gateway.adapters.connectors.base import ChannelConnector
from channel_gateway.adapters.repository import GatewayRepository
from channel_gateway.adapters.statements import StoredStatement
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChannelConflict,
    ChannelErrorKind,
    ChannelRefused,
    ChannelUnavailable,
    ChargeCommand,
    ChargeReply,
    CloseReply,
    CloseResult,
    NotificationRejected,
    PayoutCommand,
    PayoutReply,
    QueryReply,
    RawExchange,
    RefundCommand,
    RefundNotification,
    RefundReply,
    StatementFile,
    VerifiedNotification,
)
from channel_gateway.service_layer.notifications import Subject, refund_id_of, refund_reply_of, subject_of

log = logging.getLogger(__name__)
_NOT_KEPT_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
R = TypeVar("R")
# Work done with the exchange's record, in the same transaction.
Apply = Callable[[GatewayRepository], None]


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


@dataclass(frozen=True)
class ExchangeAbout:
    """What one exchange with a channel is about: a payment (and maybe one of its refunds) or a
    settlement's payout. channel_exchanges is keyed by these."""

    payment_id: str | None = None
    refund_id: str | None = None
    settlement_id: str | None = None
    statement_day: date | None = None


def _failed_exchange(
    operation: str, exc: ChannelUnavailable | ChannelConflict | ChannelRefused
) -> RawExchange:
    if exc.raw is None:
        return RawExchange(operation, "", 0, "", 0, error=str(exc))
    return dataclasses.replace(exc.raw, error=str(exc))


def refusal_error(channel: str, operation: str, exc: ChannelRefused) -> DomainError:
    """The status a refusal becomes: never UNAVAILABLE (which callers read as "may have
    happened"), since a refusal proves nothing happened. payment-core fails over on
    FAILED_PRECONDITION and RESOURCE_EXHAUSTED; ErrorInfo carries the kind and the raw code."""
    message = f"channel {channel} refused the {operation}: {exc}"
    info = ErrorInfo(f"CHANNEL_{exc.kind.value}", {"channel": channel, "channel_code": exc.channel_code})
    if exc.kind is ChannelErrorKind.RATE_LIMITED:
        return ResourceExhausted(message, info=info)
    return FailedPrecondition(message, info=info)


class StatementSink(Protocol):
    """Where downloaded statements are announced (channel.statements); durable on return."""

    def announce(self, stored: StoredStatement) -> None: ...


@dataclass
class Gateway:
    sessions: sessionmaker[Session]
    connectors: Mapping[str, ChannelConnector]
    sink: NotificationSink
    notify_url_for: Callable[[str], str]
    # None: downloads are stored but announced nowhere (tests that do not download).
    statement_sink: StatementSink | None = None

    def connector(self, channel: str) -> ChannelConnector:
        found = self.connectors.get(channel)
        if found is None:
            raise InvalidArgument("channel", f"unknown channel {channel!r}; known: {sorted(self.connectors)}")
        return found

    # -- every exchange -----------------------------------------------------------------
    def _store_exchange(
        self, about: ExchangeAbout, channel: str, raw: RawExchange, apply: Apply | None
    ) -> None:
        with self.sessions.begin() as session:
            repo = GatewayRepository(session)
            repo.record_exchange(
                about.payment_id, channel, raw, about.refund_id, about.settlement_id, about.statement_day
            )
            if apply is not None:
                apply(repo)

    async def _exchange(
        self,
        operation: str,
        channel: str,
        about: ExchangeAbout,
        call: Awaitable[tuple[R, RawExchange]],
        apply: Callable[[R], Apply | None],
    ) -> R:
        """Await the channel; store the raw exchange with `apply(reply)`; UNAVAILABLE if unanswered,
        ALREADY_EXISTS if the channel holds something else under our key (nothing applied)."""
        try:
            reply, raw = await call
        except ChannelUnavailable as exc:
            failed = _failed_exchange(operation, exc)
            await run_blocking(self._store_exchange, about, channel, failed, None)
            raise Unavailable(f"channel {channel} did not answer the {operation}: {exc}") from exc
        except ChannelRefused as exc:
            log.warning(
                "channel refused",
                extra={"channel": channel, "operation": operation, "kind": exc.kind.value,
                       "channel_code": exc.channel_code},
            )  # fmt: skip
            await run_blocking(self._store_exchange, about, channel, _failed_exchange(operation, exc), None)
            raise refusal_error(channel, operation, exc) from exc
        except ChannelConflict as exc:
            log.error(
                "channel conflict", extra={"channel": channel, "operation": operation, "error": str(exc)}
            )
            await run_blocking(self._store_exchange, about, channel, _failed_exchange(operation, exc), None)
            raise AlreadyExists(f"channel {channel} refused the {operation}: {exc}") from exc
        await run_blocking(self._store_exchange, about, channel, raw, apply(reply))
        return reply

    # -- charge, query, close -----------------------------------------------------------
    def _prepare_charge(
        self, command: ChargeCommand, channel: str, trace: dict[str, str]
    ) -> ChargeReply | None:
        with self.sessions.begin() as session:
            repo = GatewayRepository(session)
            if repo.add_charge_if_absent(command, channel, trace):
                return None  # new: nothing answered yet
            stored = repo.get_charge(command.payment_id, channel)
        # A charge the channel already answered is answered the same way again.
        return stored.reply if stored else None

    async def charge(self, command: ChargeCommand, channel: str) -> ChargeReply:
        connector = self.connector(channel)
        previous = await run_blocking(self._prepare_charge, command, channel, inject_carrier())
        if previous is not None:
            return previous

        def apply(reply: ChargeReply) -> Apply:
            return lambda repo: repo.record_reply(command.payment_id, channel, reply)

        about = ExchangeAbout(command.payment_id)
        return await self._exchange("charge", channel, about, connector.charge(command), apply)

    async def query(self, payment_id: str, channel: str) -> QueryReply:
        connector = self.connector(channel)
        about = ExchangeAbout(payment_id)
        return await self._exchange("query", channel, about, connector.query(payment_id), lambda _: None)

    async def close(self, payment_id: str, channel: str) -> CloseReply:
        """Close the charge at the channel; CLOSED also when the channel never received it."""
        connector = self.connector(channel)

        def apply(reply: CloseReply) -> Apply | None:
            if reply.result is not CloseResult.CLOSED:
                return None
            return lambda repo: repo.record_charge_closed(payment_id, channel)

        return await self._exchange(
            "close", channel, ExchangeAbout(payment_id), connector.close(payment_id), apply
        )

    # -- refunds ------------------------------------------------------------------------
    def _prepare_refund(
        self, command: RefundCommand, channel: str, trace: dict[str, str]
    ) -> RefundReply | None:
        with self.sessions.begin() as session:
            repo = GatewayRepository(session)
            if repo.add_refund_if_absent(command, channel, trace):
                return None
            stored = repo.get_refund(command.refund_id)
        if stored is None:
            # The insert found a conflicting row, so the row exists: a bug, never a user error.
            raise InvariantViolation(f"refund {command.refund_id} neither inserted nor found")
        asked = (command.payment_id, channel, command.amount)
        if (stored.payment_id, stored.channel, stored.amount) != asked:
            raise AlreadyExists(
                f"refund {command.refund_id} exists for payment {stored.payment_id} at {stored.channel} "
                f"for {stored.amount}; this request is for {command.payment_id} at {channel} "
                f"for {command.amount}"
            )
        # None: the channel never answered it; asking again is safe, it is idempotent on refund_id.
        return stored.reply

    @staticmethod
    def _advance(refund_id: str, payment_id: str, channel: str) -> Callable[[RefundReply], Apply]:
        """Record a refund answer on the stored refund, when it moves the refund forward."""

        def apply(reply: RefundReply) -> Apply:
            def advance(repo: GatewayRepository) -> None:
                repo.advance_refund(refund_id, payment_id, channel, reply)

            return advance

        return apply

    async def refund(self, command: RefundCommand, channel: str) -> RefundReply:
        connector = self.connector(channel)
        previous = await run_blocking(self._prepare_refund, command, channel, inject_carrier())
        if previous is not None:
            return previous
        return await self._exchange(
            "refund",
            channel,
            ExchangeAbout(command.payment_id, command.refund_id),
            connector.refund(command),
            self._advance(command.refund_id, command.payment_id, channel),
        )

    async def query_refund(self, refund_id: str, payment_id: str, channel: str) -> RefundReply:
        connector = self.connector(channel)
        return await self._exchange(
            "query_refund",
            channel,
            ExchangeAbout(payment_id, refund_id),
            connector.query_refund(refund_id, payment_id),
            self._advance(refund_id, payment_id, channel),
        )

    # -- payouts ------------------------------------------------------------------------
    def _prepare_payout(self, command: PayoutCommand, channel: str) -> PayoutReply | None:
        """Store the payout before the channel hears of it; the stored answer when it already has one."""
        with self.sessions.begin() as session:
            repo = GatewayRepository(session)
            if repo.add_payout_if_absent(command, channel):
                return None  # new: nothing answered yet
            stored = repo.get_payout(command.settlement_id)
        if stored is None:
            # The insert found a conflicting row, so the row exists: a bug, never a user error.
            raise InvariantViolation(f"payout of {command.settlement_id} neither inserted nor found")
        asked = (command.merchant_id, channel, command.amount)
        if (stored.merchant_id, stored.channel, stored.amount) != asked:
            raise AlreadyExists(
                f"settlement {command.settlement_id} is paid out to {stored.merchant_id} at "
                f"{stored.channel} for {stored.amount}; this request is for {command.merchant_id} at "
                f"{channel} for {command.amount}",
                field="settlement_id",
            )
        # None: the channel never answered; asking again is safe, it is idempotent on settlement_id.
        return stored.reply

    async def payout(self, command: PayoutCommand, channel: str) -> PayoutReply:
        """Pay a settlement out, once: the row is stored before the channel is asked, a settlement
        the channel answered is answered from the row, and one it did not (UNAVAILABLE) is asked
        again with the same out_payout_no, which the channel deduplicates."""
        connector = self.connector(channel)
        previous = await run_blocking(self._prepare_payout, command, channel)
        if previous is not None:
            return previous
        standing: list[PayoutReply] = []

        def apply(reply: PayoutReply) -> Apply:
            def record(repo: GatewayRepository) -> None:
                recorded = repo.record_payout_reply(command.settlement_id, reply)
                if recorded is None:
                    # Stored by _prepare_payout and never deleted: a bug, never a user error.
                    raise InvariantViolation(f"payout of {command.settlement_id} vanished")
                standing.append(recorded)

            return record

        about = ExchangeAbout(settlement_id=command.settlement_id)
        reply = await self._exchange("payout", channel, about, connector.payout(command), apply)
        # A concurrent retry may have recorded the channel's answer first: that one stands.
        return standing[0] if standing else reply

    # -- statements ---------------------------------------------------------------------
    async def download_statement(self, channel: str, day: date) -> StoredStatement:
        """Fetch the channel's statement of `day`, keep the bytes, announce it. The same bytes
        downloaded again are the same statement (and the same event, which consumers dedupe)."""
        connector = self.connector(channel)
        kept: list[StoredStatement] = []

        def apply(file: StatementFile) -> Apply:
            if file.day != day:
                raise InvariantViolation(f"{channel} answered the statement of {file.day} for {day}")

            def keep(repo: GatewayRepository) -> None:
                kept.append(repo.store_statement(channel, file))

            return keep

        # The exchange record keeps the request and status; the bytes go to statement_files.
        await self._exchange(
            "download_statement",
            channel,
            ExchangeAbout(statement_day=day),
            connector.download_statement(day),
            apply,
        )
        stored = kept[0]
        if self.statement_sink is not None:
            await run_blocking(self.statement_sink.announce, stored)
        return stored

    def statement(self, statement_id: str) -> StoredStatement:
        with self.sessions() as session:
            found = statements.get(session, statement_id)
        if found is None:
            raise NotFound(f"no statement {statement_id}")
        return found

    def statement_chunk(self, statement_id: str, start: int) -> bytes:
        with self.sessions() as session:
            return statements.chunk(session, statement_id, start)

    # -- notifications ------------------------------------------------------------------
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

    def _store_acknowledged_only(
        self, channel: str, headers: dict[str, str], body: bytes, note: AcknowledgedOnly
    ) -> None:
        with self.sessions.begin() as session:
            GatewayRepository(session).record_notification(
                notification_id=new_id(IdKind.NOTIFICATION),
                channel=channel,
                headers=headers,
                body=body,
                verdict="ACKNOWLEDGED_ONLY",
                reject_reason=note.reason,
                channel_notify_id=note.channel_notify_id,
            )

    def _store_verified(
        self, channel: str, headers: dict[str, str], body: bytes, note: VerifiedNotification
    ) -> tuple[str, Subject | str]:
        """Store the raw notification: (notification id, its subject or why it has none)."""
        notification_id = new_id(IdKind.NOTIFICATION)
        with self.sessions.begin() as session:
            repo = GatewayRepository(session)
            subject = subject_of(repo, channel, note)
            repo.record_notification(
                notification_id=notification_id,
                channel=channel,
                headers=headers,
                body=body,
                verdict="VERIFIED" if isinstance(subject, Subject) else "REJECTED",
                reject_reason=subject if isinstance(subject, str) else None,
                channel_notify_id=note.channel_notify_id,
                payment_id=note.payment_id,
                refund_id=refund_id_of(note),
            )
        return notification_id, subject

    def _publish(
        self, notification_id: str, note: VerifiedNotification, channel: str, subject: Subject
    ) -> None:
        # Same channel notification id -> same event id, so a channel that
        # repeats itself produces events the consumers' inbox collapses.
        event_id = deterministic_id(IdKind.EVENT, channel, note.channel_notify_id)
        self.sink.publish(note, channel, subject.order_id, event_id, subject.trace_headers)
        with self.sessions.begin() as session:
            repo = GatewayRepository(session)
            repo.mark_published(notification_id, event_id)
            if isinstance(note, RefundNotification):
                repo.advance_refund(note.refund_id, note.payment_id, channel, refund_reply_of(note))

    async def receive_notification(
        self, channel: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str]:
        """Verify, store raw, publish, and only then return the acknowledgement for the channel."""
        connector = self.connector(channel)
        # Every header is kept (the channel's signature headers let an audit verify the raw
        # notification again), except those that could carry our own or a proxy's credentials.
        kept_headers = {k: v for k, v in headers.items() if k.lower() not in _NOT_KEPT_HEADERS}
        try:
            note = connector.verify_notification(path, headers, body)
        except NotificationRejected as exc:
            log.warning("notification rejected", extra={"channel": channel, "reason": exc.reason})
            await run_blocking(self._store_rejected, channel, kept_headers, body, exc.reason)
            return connector.acknowledgement(False)
        if isinstance(note, AcknowledgedOnly):
            log.info(
                "notification acknowledged, nothing to act on",
                extra={"channel": channel, "reason": note.reason},
            )
            await run_blocking(self._store_acknowledged_only, channel, kept_headers, body, note)
            return connector.acknowledgement(True)
        notification_id, subject = await run_blocking(self._store_verified, channel, kept_headers, body, note)
        if isinstance(subject, str):
            raise NotFound(f"notification names nothing of ours: {subject}")
        await run_blocking(self._publish, notification_id, note, channel, subject)
        return connector.acknowledgement(True)
