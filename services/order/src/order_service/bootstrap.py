"""The only place that builds the order service's real objects."""

from __future__ import annotations

from pathlib import Path

from paykit.db import create_engine_for, run_migrations, session_factory
from paykit.grpckit.runner import ServiceParts
from paykit.messaging.consumer import ConsumerLoop
from paykit.messaging.relay import OutboxRelay
from paykit.messaging.topics import PAYMENT_EVENTS
from paykit.order.v1 import order_pb2_grpc

from order_service.adapters.payment_client import PaymentCoreClient
from order_service.entrypoints.consumers import CONSUMER_NAME, EVENT_TYPES, handle_payment_event
from order_service.entrypoints.grpc_server import SERVICE_NAME, OrderServicer
from order_service.service_layer.unit_of_work import OrderUnitOfWork
from order_service.settings import OrderSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def migrate(database_url: str) -> None:
    run_migrations(MIGRATIONS, database_url)


def build(settings: OrderSettings) -> ServiceParts:
    if settings.migrate_on_start:
        migrate(settings.database_url)
    engine = create_engine_for(settings.database_url, application_name="order")
    sessions = session_factory(engine)
    relay = OutboxRelay(engine, settings.kafka_bootstrap_servers, "order-relay")
    consumer = ConsumerLoop(
        name=CONSUMER_NAME,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id="order",
        topics=[PAYMENT_EVENTS],
        session_factory=sessions,
        handler=handle_payment_event,
        event_types=EVENT_TYPES,
        after_commit=relay.wake,
    )
    payments = PaymentCoreClient(settings.payment_core_target)
    servicer = OrderServicer(lambda: OrderUnitOfWork(sessions, relay.wake), payments)
    return ServiceParts(
        name="order",
        grpc_services=[(order_pb2_grpc.add_OrderServiceServicer_to_server, servicer, SERVICE_NAME)],
        workers=[relay, consumer],
        extra_stop=[payments.close],
        on_stop=[engine.dispose],
    )
