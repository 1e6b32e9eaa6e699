"""The only place that builds payment-core's real objects."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from paykit.db import create_engine_for, run_blocking, run_migrations, session_factory
from paykit.grpckit.periodic import PeriodicTask
from paykit.grpckit.runner import ServiceParts
from paykit.idempotency import IdempotencyInterceptor, IdempotencyJanitor, KeyRule, full_method
from paykit.messaging.consumer import ConsumerLoop
from paykit.messaging.relay import OutboxRelay
from paykit.messaging.topics import CHANNEL_NOTIFICATIONS
from paykit.payment.v1 import payment_pb2, payment_pb2_grpc
from sqlalchemy import Engine

from payment_core.adapters.gateway_client import ChannelGatewayClient
from payment_core.entrypoints.consumers import CONSUMER_NAME, EVENT_TYPES, handle_channel_notification
from payment_core.entrypoints.grpc_server import SERVICE_NAME, PaymentServicer
from payment_core.service_layer import monitoring, order_loss
from payment_core.service_layer.context import PaymentCore, UowFactory
from payment_core.service_layer.health import HealthBook
from payment_core.service_layer.unit_of_work import PaymentUnitOfWork
from payment_core.settings import PaymentCoreSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
# How often the stuck-payments gauge is recounted; the alert waits minutes anyway.
STUCK_COUNT_INTERVAL_S = 30.0


def migrate(database_url: str) -> None:
    run_migrations(MIGRATIONS, database_url)


def idempotency(engine: Engine, settings: PaymentCoreSettings) -> IdempotencyInterceptor:
    """Every mutating RPC: the key in the request where the contract has one, else in metadata."""
    service = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"]
    in_request = KeyRule(request_field="idempotency_key", required=True)
    in_metadata = KeyRule()
    return IdempotencyInterceptor(
        engine,
        {
            full_method(service, "CreatePayment"): in_request,
            full_method(service, "RefundPayment"): in_request,
            full_method(service, "ClosePayment"): in_metadata,
            full_method(service, "SetChannelHealth"): in_metadata,
        },
        ttl_s=settings.idempotency_ttl_s,
        in_progress_timeout_s=settings.idempotency_in_progress_timeout_s,
    )


def build(settings: PaymentCoreSettings) -> ServiceParts:
    if settings.migrate_on_start:
        migrate(settings.database_url)
    engine = create_engine_for(settings.database_url, application_name="payment-core")
    sessions = session_factory(engine)
    relay = OutboxRelay(engine, settings.kafka_bootstrap_servers, "payment-core-relay")
    consumer = ConsumerLoop(
        name=CONSUMER_NAME,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id="payment-core",
        topics=[CHANNEL_NOTIFICATIONS],
        session_factory=sessions,
        handler=handle_channel_notification,
        event_types=EVENT_TYPES,
        after_commit=relay.wake,
    )

    def uow_factory() -> PaymentUnitOfWork:
        return PaymentUnitOfWork(sessions, relay.wake)

    rules = settings.rules()
    gateway = ChannelGatewayClient(settings.channel_gateway_target)
    health = HealthBook(
        uow_factory, settings.health_policy(), [name for rule in rules for name, _ in rule.channels]
    )
    core = PaymentCore(uow_factory, gateway, rules, health, settings.lifecycle())
    scheduler = PeriodicTask(
        "order-loss-prevention", settings.scheduler_poll_s, lambda: order_loss.tick(core)
    )
    servicer = PaymentServicer(core, health)
    janitor = IdempotencyJanitor(engine).periodic_task()
    stuck = _stuck_payments_task(uow_factory, settings, [name for rule in rules for name, _ in rule.channels])
    return ServiceParts(
        name="payment-core",
        grpc_services=[(payment_pb2_grpc.add_PaymentServiceServicer_to_server, servicer, SERVICE_NAME)],
        workers=[relay, consumer] if settings.outbox_relay_enabled else [consumer],
        interceptors=[idempotency(engine, settings)],
        extra_start=[scheduler.start, janitor.start, stuck.start],
        extra_stop=[scheduler.stop, janitor.stop, stuck.stop, gateway.close_channel],
        on_stop=[engine.dispose],
    )


def _stuck_payments_task(
    uow_factory: UowFactory, settings: PaymentCoreSettings, channels: list[str]
) -> PeriodicTask:
    stuck_after = timedelta(seconds=settings.stuck_after_s)
    known = sorted(set(channels))

    async def tick() -> int:
        await run_blocking(monitoring.measure_stuck_payments, uow_factory, stuck_after, known)
        return 0  # a measurement, not a backlog: always wait for the interval

    return PeriodicTask("stuck-payments-gauge", STUCK_COUNT_INTERVAL_S, tick)
