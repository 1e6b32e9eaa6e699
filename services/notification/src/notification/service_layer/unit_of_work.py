from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from paykit.messaging.envelope import OutgoingEvent
from paykit.messaging.unit_of_work import JoinedTx, OutboxUnitOfWork
from sqlalchemy.orm import Session

from notification.adapters.repository import DeliveryRepository, EndpointRepository


class NotificationTx(Protocol):
    endpoints: EndpointRepository
    deliveries: DeliveryRepository

    def publish(self, event: OutgoingEvent) -> None: ...

    def publish_many(self, events: Sequence[OutgoingEvent]) -> None: ...


def _attach(tx: NotificationUnitOfWork | SessionTx, session: Session) -> None:
    tx.endpoints = EndpointRepository(session)
    tx.deliveries = DeliveryRepository(session)


class NotificationUnitOfWork(OutboxUnitOfWork):
    endpoints: EndpointRepository
    deliveries: DeliveryRepository

    def attach(self, session: Session) -> None:
        _attach(self, session)


class SessionTx(JoinedTx):
    """The same repositories inside the consumer loop's transaction."""

    endpoints: EndpointRepository
    deliveries: DeliveryRepository

    def attach(self, session: Session) -> None:
        _attach(self, session)


UowFactory = Callable[[], NotificationUnitOfWork]


def now_utc() -> datetime:
    return datetime.now(UTC)
