"""The only place that builds notification's real objects."""

from __future__ import annotations

import asyncio
from pathlib import Path

from paykit.db import create_engine_for, run_migrations, session_factory
from paykit.grpckit.periodic import PeriodicTask
from paykit.grpckit.runner import ServiceParts
from paykit.idempotency import IdempotencyInterceptor, IdempotencyJanitor, KeyRule, full_method
from paykit.messaging.consumer import ConsumerLoop
from paykit.messaging.relay import OutboxRelay
from paykit.messaging.topics import ORDER_EVENTS, REFUND_EVENTS
from paykit.notification.v1 import notification_pb2, notification_pb2_grpc
from sqlalchemy import Engine

from notification.adapters.http_sender import WebhookSender
from notification.adapters.resolver import resolve
from notification.entrypoints.consumers import CONSUMER_NAME, EVENT_TYPES, batch_handler
from notification.entrypoints.grpc_server import SERVICE_NAME, NotificationServicer
from notification.service_layer.dispatch import Dispatcher
from notification.service_layer.endpoints import UrlPolicy
from notification.service_layer.unit_of_work import NotificationUnitOfWork
from notification.settings import NotificationSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def migrate(database_url: str) -> None:
    run_migrations(MIGRATIONS, database_url)


def idempotency(engine: Engine, settings: NotificationSettings) -> IdempotencyInterceptor:
    service = notification_pb2.DESCRIPTOR.services_by_name["NotificationService"]
    return IdempotencyInterceptor(
        engine,
        {full_method(service, "RegisterEndpoint"): KeyRule(request_field="idempotency_key", required=True)},
        ttl_s=settings.idempotency_ttl_s,
        in_progress_timeout_s=settings.idempotency_in_progress_timeout_s,
    )


def build(settings: NotificationSettings) -> ServiceParts:
    if settings.migrate_on_start:
        migrate(settings.database_url)
    engine = create_engine_for(settings.database_url, application_name="notification")
    sessions = session_factory(engine)
    relay = OutboxRelay(engine, settings.kafka_bootstrap_servers, "notification-relay")
    loop = asyncio.get_running_loop()  # build runs inside the service's loop (paykit.grpckit.runner)

    def uow_factory() -> NotificationUnitOfWork:
        return NotificationUnitOfWork(sessions, relay.wake)

    sender = WebhookSender()
    # The worker ticks the dispatcher, and a settled delivery (which may unblock the next
    # one of its order) wakes the worker: bound late to break the cycle.
    worker = PeriodicTask("deliveries", settings.poll_s, lambda: dispatcher.tick())
    dispatcher = Dispatcher(uow_factory, sender, settings.dispatch_policy(), on_settled=worker.wake)

    def after_consumed() -> None:
        relay.wake()
        # The consumer runs on its own thread; the worker's wake-up belongs to the loop.
        loop.call_soon_threadsafe(worker.wake)

    consumer = ConsumerLoop(
        name=CONSUMER_NAME,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id="notification",
        topics=[ORDER_EVENTS, REFUND_EVENTS],
        session_factory=sessions,
        batch_handler=batch_handler(),
        event_types=EVENT_TYPES,
        after_commit=after_consumed,
    )
    policy = UrlPolicy(resolve, settings.allow_insecure_urls)
    janitor = IdempotencyJanitor(engine).periodic_task()

    async def stop_worker() -> None:
        await worker.stop()
        await dispatcher.stop()
        await sender.close()

    return ServiceParts(
        name="notification",
        grpc_services=[
            (
                notification_pb2_grpc.add_NotificationServiceServicer_to_server,
                NotificationServicer(uow_factory, policy),
                SERVICE_NAME,
            )
        ],
        workers=[relay, consumer] if settings.outbox_relay_enabled else [consumer],
        interceptors=[idempotency(engine, settings)],
        extra_start=[worker.start, janitor.start],
        extra_stop=[stop_worker, janitor.stop],
        on_stop=[engine.dispose],
    )
