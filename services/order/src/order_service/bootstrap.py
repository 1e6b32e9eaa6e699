"""The only place that builds the order service's real objects."""

from __future__ import annotations

from pathlib import Path

from paykit.db import create_engine_for, run_migrations, session_factory
from paykit.grpckit.periodic import PeriodicTask
from paykit.grpckit.runner import ServiceParts
from paykit.idempotency import IdempotencyInterceptor, IdempotencyJanitor, KeyRule, full_method
from paykit.messaging.consumer import ConsumerLoop
from paykit.messaging.relay import OutboxRelay
from paykit.messaging.topics import PAYMENT_EVENTS, REFUND_EVENTS
from paykit.order.v1 import order_pb2, order_pb2_grpc
from sqlalchemy import Engine

from order_service.adapters.payment_client import PaymentCoreClient
from order_service.entrypoints.consumers import CONSUMER_NAME, EVENT_TYPES, handle_event
from order_service.entrypoints.grpc_server import SERVICE_NAME, OrderServicer
from order_service.service_layer.expiry import ExpiryPolicy, close_expired_orders
from order_service.service_layer.services import PaymentPort, UowFactory
from order_service.service_layer.unit_of_work import OrderUnitOfWork
from order_service.settings import OrderSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def migrate(database_url: str) -> None:
    run_migrations(MIGRATIONS, database_url)


def idempotency(engine: Engine, settings: OrderSettings) -> IdempotencyInterceptor:
    """Every mutating RPC. RefundOrder must carry its key (a retried refund refunds once);
    the others take one from metadata when given and are idempotent by nature besides."""
    service = order_pb2.DESCRIPTOR.services_by_name["OrderService"]
    in_metadata = KeyRule()
    return IdempotencyInterceptor(
        engine,
        {
            full_method(service, "CreateOrder"): in_metadata,
            full_method(service, "PayOrder"): in_metadata,
            full_method(service, "CloseOrder"): in_metadata,
            full_method(service, "RefundOrder"): KeyRule(request_field="idempotency_key", required=True),
        },
        ttl_s=settings.idempotency_ttl_s,
        in_progress_timeout_s=settings.idempotency_in_progress_timeout_s,
    )


def build(settings: OrderSettings) -> ServiceParts:
    if settings.migrate_on_start:
        migrate(settings.database_url)
    engine = create_engine_for(settings.database_url, application_name="order")
    sessions = session_factory(engine)
    relay = OutboxRelay(engine, settings.kafka_bootstrap_servers, "order-relay")
    # One loop for both topics: both are keyed by order id, and one order's
    # payment and refund events touch the same row.
    consumer = ConsumerLoop(
        name=CONSUMER_NAME,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id="order",
        topics=[PAYMENT_EVENTS, REFUND_EVENTS],
        session_factory=sessions,
        handler=handle_event,
        event_types=EVENT_TYPES,
        after_commit=relay.wake,
    )
    payments = PaymentCoreClient(settings.payment_core_target)

    def uow_factory() -> OrderUnitOfWork:
        return OrderUnitOfWork(sessions, relay.wake)

    expiry = _expiry_task(settings, uow_factory, payments)
    servicer = OrderServicer(uow_factory, payments, frozenset(settings.payment_methods))
    janitor = IdempotencyJanitor(engine).periodic_task()
    return ServiceParts(
        name="order",
        grpc_services=[(order_pb2_grpc.add_OrderServiceServicer_to_server, servicer, SERVICE_NAME)],
        workers=[relay, consumer],
        interceptors=[idempotency(engine, settings)],
        extra_start=[expiry.start, janitor.start],
        # The scheduler stops before the channel it calls payment-core on closes.
        extra_stop=[expiry.stop, janitor.stop, payments.close],
        on_stop=[engine.dispose],
    )


def _expiry_task(settings: OrderSettings, uow_factory: UowFactory, payments: PaymentPort) -> PeriodicTask:
    policy = ExpiryPolicy(
        retry_schedule_s=settings.close_retry_s, force_after_attempts=settings.close_force_after
    )

    async def tick() -> int:
        return await close_expired_orders(uow_factory, payments, policy)

    return PeriodicTask("order-expiry", settings.expiry_poll_s, tick)
