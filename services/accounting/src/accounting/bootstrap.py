"""The only place that builds accounting's real objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from paykit.accounting.v1 import accounting_pb2, accounting_pb2_grpc
from paykit.db import create_engine_for, run_blocking, run_migrations, session_factory
from paykit.grpckit.periodic import PeriodicTask
from paykit.grpckit.runner import ServiceParts
from paykit.idempotency import IdempotencyInterceptor, IdempotencyJanitor, KeyRule, full_method
from paykit.messaging.consumer import ConsumerLoop
from paykit.messaging.relay import OutboxRelay
from paykit.messaging.topics import PAYMENT_EVENTS, REFUND_EVENTS
from sqlalchemy import Engine

from accounting.adapters.gateway_client import GatewayPayouts
from accounting.entrypoints.consumers import CONSUMER_NAME, EVENT_TYPES, handler
from accounting.entrypoints.grpc_server import SERVICE_NAME, AccountingServicer
from accounting.service_layer import monitoring
from accounting.service_layer.ledger import Policy, release_due
from accounting.service_layer.settlement import Settlements
from accounting.service_layer.unit_of_work import LedgerUnitOfWork
from accounting.settings import AccountingSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
RELEASE_BATCH = 200


def migrate(database_url: str) -> None:
    run_migrations(MIGRATIONS, database_url)


def idempotency(engine: Engine, settings: AccountingSettings) -> IdempotencyInterceptor:
    service = accounting_pb2.DESCRIPTOR.services_by_name["AccountingService"]
    in_request = KeyRule(request_field="idempotency_key", required=True)
    return IdempotencyInterceptor(
        engine,
        {
            full_method(service, name): in_request
            for name in ("PostAdjustment", "ReverseEntry", "ReleaseFunds", "RunSettlement")
        },
        ttl_s=settings.idempotency_ttl_s,
        in_progress_timeout_s=settings.idempotency_in_progress_timeout_s,
    )


def build(settings: AccountingSettings) -> ServiceParts:
    if settings.migrate_on_start:
        migrate(settings.database_url)
    engine = create_engine_for(settings.database_url, application_name="accounting")
    sessions = session_factory(engine)
    relay = OutboxRelay(engine, settings.kafka_bootstrap_servers, "accounting-relay")
    policy = Policy(settings.fee_schedule(), timedelta(seconds=settings.release_after_s))
    consumer = ConsumerLoop(
        name=CONSUMER_NAME,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id="accounting",
        topics=[PAYMENT_EVENTS, REFUND_EVENTS],
        session_factory=sessions,
        handler=handler(policy),
        event_types=EVENT_TYPES,
        after_commit=relay.wake,
    )

    def uow_factory() -> LedgerUnitOfWork:
        return LedgerUnitOfWork(sessions, relay.wake)

    def release_tick() -> int:
        with uow_factory() as uow:
            released = release_due(uow, datetime.now(UTC), RELEASE_BATCH)
            uow.commit()
            return released

    async def release_async() -> int:
        return await run_blocking(release_tick)

    gateway = GatewayPayouts(settings.channel_gateway_target)
    settlements = Settlements(uow_factory, gateway, settings.payout_channel)
    releases = PeriodicTask("release-funds", settings.scheduler_poll_s, release_async)
    payouts = PeriodicTask("payout-retries", settings.scheduler_poll_s, settlements.retry_due)
    janitor = IdempotencyJanitor(engine).periodic_task()

    async def trial_balance_tick() -> int:
        await run_blocking(monitoring.measure_trial_balance, uow_factory)
        return 0  # a measurement, not a backlog: always wait for the interval

    trial_balance = PeriodicTask("trial-balance-gauge", settings.trial_balance_poll_s, trial_balance_tick)
    return ServiceParts(
        name="accounting",
        grpc_services=[
            (
                accounting_pb2_grpc.add_AccountingServiceServicer_to_server,
                AccountingServicer(uow_factory, settlements),
                SERVICE_NAME,
            )
        ],
        workers=[relay, consumer] if settings.outbox_relay_enabled else [consumer],
        interceptors=[idempotency(engine, settings)],
        extra_start=[releases.start, payouts.start, janitor.start, trial_balance.start],
        extra_stop=[releases.stop, payouts.stop, janitor.stop, trial_balance.stop, gateway.close],
        on_stop=[engine.dispose],
    )
