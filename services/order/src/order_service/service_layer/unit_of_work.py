from __future__ import annotations

from typing import Protocol

from paykit.messaging.envelope import OutgoingEvent
from paykit.messaging.unit_of_work import JoinedTx, OutboxUnitOfWork
from sqlalchemy.orm import Session

from order_service.adapters.repository import OrderRepository


class OrderTx(Protocol):
    """What a use case needs of a transaction: the orders and a way to publish."""

    orders: OrderRepository

    def publish(self, event: OutgoingEvent) -> None: ...


class OrderUnitOfWork(OutboxUnitOfWork):
    orders: OrderRepository

    def attach(self, session: Session) -> None:
        self.orders = OrderRepository(session)


class SessionTx(JoinedTx):
    orders: OrderRepository

    def attach(self, session: Session) -> None:
        self.orders = OrderRepository(session)
