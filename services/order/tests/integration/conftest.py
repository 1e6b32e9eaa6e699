"""A real PostgreSQL for the order service's integration tests, and a stand-in
for payment-core (another team's service) behind the order service's PaymentPort.

The server is the session's shared one (root conftest: started on demand under
`<repo>/.run/test-shared`, or taken from PAYKIT_POSTGRES_URL). Each test module
gets a fresh database migrated by the service's own Alembic history, so the
migrations are tested too.

Fixture names carry an `order_` prefix where a repo-level conftest could
define the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from order_service.adapters.payment_client import ClosureOutcome, ClosureResult, PaymentView, RefundView
from order_service.bootstrap import migrate
from order_service.domain.order import Order, OrderStatus
from order_service.entrypoints.consumers import CONSUMER_NAME, EVENT_TYPES, handle_event
from order_service.service_layer.services import UowFactory
from order_service.service_layer.unit_of_work import OrderUnitOfWork
from paykit.db import create_engine_for, session_factory
from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer
from paykit.errors import DomainError
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.ids import IdKind, new_id
from paykit.messaging.envelope import OutgoingEvent, decode_envelope
from paykit.messaging.inbox import first_delivery
from paykit.money import Money
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

DATABASE_PREFIX = "ordertest_"


@pytest.fixture(scope="session")
def order_postgres(shared_postgres: PostgresServer) -> PostgresServer:
    return shared_postgres


@pytest.fixture(scope="module")
def order_engine(order_postgres: PostgresServer) -> Iterator[Engine]:
    """A fresh `ordertest_<random>` database at the head of the service's migrations."""
    name, url = create_fresh_database(order_postgres, DATABASE_PREFIX)
    migrate(url)
    engine = create_engine_for(url, application_name="ordertest", pool_size=8)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(order_postgres, name)


@pytest.fixture(scope="module")
def sessions(order_engine: Engine) -> sessionmaker[Session]:
    return session_factory(order_engine)


@pytest.fixture
def uow_factory(sessions: sessionmaker[Session]) -> UowFactory:
    return lambda: OrderUnitOfWork(sessions, lambda: None)


@pytest.fixture
def clean_tables(order_engine: Engine) -> None:
    """For tests that act on every row (the expiry scan): start from empty tables."""
    with order_engine.begin() as conn:
        conn.execute(text("TRUNCATE orders, duplicate_payments, order_refunds, outbox, inbox"))


# --- orders and what they published -------------------------------------------------


def now_utc() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def make_order(uow_factory: UowFactory) -> Callable[..., Order]:
    """Store an order (CREATED, CNY 19.99, expiring in 15 minutes unless changed) and return it."""

    def make(**changes: Any) -> Order:
        created_at = now_utc()
        order = Order(
            order_id=new_id(IdKind.ORDER),
            merchant_id="mch_it",
            merchant_order_no=new_id(IdKind.ORDER),
            amount=Money(1999, "CNY"),
            subject="integration",
            status=OrderStatus.CREATED,
            created_at=created_at,
            expires_at=created_at + timedelta(minutes=15),
            refunded=Money.zero("CNY"),
        )
        order = replace(order, **changes)
        with uow_factory() as uow:
            assert uow.orders.add_if_absent(order)
            uow.orders.save(order)  # the fields add_if_absent leaves to their defaults
            uow.commit()
        return order

    return make


@pytest.fixture
def get_order(uow_factory: UowFactory) -> Callable[[str], Order]:
    def get(order_id: str) -> Order:
        with uow_factory() as uow:
            order = uow.orders.get(order_id)
        assert order is not None
        return order

    return get


@pytest.fixture
def published(order_engine: Engine) -> Callable[[str], list[Envelope]]:
    """The envelopes an order put in the outbox, oldest first."""

    def read(order_id: str) -> list[Envelope]:
        with order_engine.connect() as conn:
            rows = conn.execute(
                text("SELECT payload FROM outbox WHERE message_key = :k ORDER BY id"), {"k": order_id}
            ).all()
        return [decode_envelope(row.payload) for row in rows]

    return read


@pytest.fixture
def deliver(sessions: sessionmaker[Session]) -> Callable[[OutgoingEvent], None]:
    """Hand an event to the handler exactly as ConsumerLoop does: type filter, then
    the inbox and the handler in one transaction."""

    def run(event: OutgoingEvent) -> None:
        envelope = decode_envelope(event.value)
        if envelope.event_type not in EVENT_TYPES:
            return
        with sessions() as session, session.begin():
            if first_delivery(session, CONSUMER_NAME, envelope.event_id, event.topic):
                handle_event(session, envelope)

    return run


# --- payment-core -------------------------------------------------------------------


class FakePaymentCore:
    """Answers as payment-core's contract says, with outcomes the test chooses.

    It keeps no payments of its own: it only records what it was asked, so the
    tests check what the order service sends and how it treats each answer.
    """

    def __init__(self) -> None:
        self.closure: dict[str, ClosureOutcome | DomainError] = {}  # by order id; default CLOSED
        self.create_error: DomainError | None = None
        self.refund_error: DomainError | None = None
        self.calls: list[tuple[Any, ...]] = []

    def calls_for(self, name: str) -> list[tuple[Any, ...]]:
        return [call[1:] for call in self.calls if call[0] == name]

    async def create_payment(self, order: Order, method: str) -> PaymentView:
        self.calls.append(("create_payment", order, method))
        if self.create_error is not None:
            raise self.create_error
        return PaymentView(f"pay_{order.payment_idempotency_key}", "PROCESSING", "qr://pay")

    async def close_payment(self, order_id: str, reason: str, *, force: bool = False) -> ClosureResult:
        self.calls.append(("close_payment", order_id, reason, force))
        answer = self.closure.get(order_id, ClosureOutcome.CLOSED)
        if isinstance(answer, DomainError):
            raise answer
        return ClosureResult(answer, "")

    async def refund_payment(
        self, idempotency_key: str, payment_id: str, amount: Money, reason: str
    ) -> RefundView:
        self.calls.append(("refund_payment", idempotency_key, payment_id, amount, reason))
        if self.refund_error is not None:
            raise self.refund_error
        return RefundView(refund_id=f"rfd_{idempotency_key}", status="PENDING")


@pytest.fixture
def payment_core() -> FakePaymentCore:
    return FakePaymentCore()
