"""The only place that builds reconciliation's real objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paykit.db import create_engine_for, run_blocking, run_migrations, session_factory
from paykit.grpckit.periodic import PeriodicTask
from paykit.grpckit.runner import ServiceParts
from paykit.idempotency import IdempotencyInterceptor, IdempotencyJanitor, KeyRule, full_method
from paykit.messaging.relay import OutboxRelay
from paykit.reconciliation.v1 import reconciliation_pb2, reconciliation_pb2_grpc
from sqlalchemy import Engine

from reconciliation.adapters.clients import AccountingClient, PaymentCoreClient, StatementGateway
from reconciliation.capture.worker import build_capture
from reconciliation.entrypoints.grpc_server import SERVICE_NAME, ReconciliationServicer
from reconciliation.service_layer import resolution
from reconciliation.service_layer.resolution import Resolver
from reconciliation.service_layer.runs import Runner
from reconciliation.service_layer.unit_of_work import ReconciliationUnitOfWork
from reconciliation.settings import ReconciliationSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def migrate(database_url: str) -> None:
    run_migrations(MIGRATIONS, database_url)


def idempotency(engine: Engine, settings: ReconciliationSettings) -> IdempotencyInterceptor:
    service = reconciliation_pb2.DESCRIPTOR.services_by_name["ReconciliationService"]
    return IdempotencyInterceptor(
        engine,
        {full_method(service, "ResolveDiscrepancy"): KeyRule(request_field="idempotency_key", required=True)},
        ttl_s=settings.idempotency_ttl_s,
        in_progress_timeout_s=settings.idempotency_in_progress_timeout_s,
    )


def build(settings: ReconciliationSettings) -> ServiceParts:
    if settings.migrate_on_start:
        migrate(settings.database_url)
    engine = create_engine_for(settings.database_url, application_name="reconciliation")
    sessions = session_factory(engine)
    relay = OutboxRelay(engine, settings.kafka_bootstrap_servers, "reconciliation-relay")

    def uow_factory() -> ReconciliationUnitOfWork:
        return ReconciliationUnitOfWork(sessions, relay.wake)

    janitor = IdempotencyJanitor(engine).periodic_task()
    gateway = StatementGateway(settings.channel_gateway_target)
    payments = PaymentCoreClient(settings.payment_core_target)
    accounting = AccountingClient(settings.accounting_target)
    runner = Runner(uow_factory, settings, gateway)
    resolver = Resolver(uow_factory, payments, accounting, settings.auto_adjust_max_minor)

    async def measure_open() -> int:
        await run_blocking(resolution.measure_open, uow_factory)
        return 0  # a measurement, not a backlog: always wait for the interval

    gauge = PeriodicTask("recon-open-discrepancies-gauge", settings.open_gauge_interval_s, measure_open)
    extra_start: list[Any] = [janitor.start, gauge.start]
    extra_stop: list[Any] = [janitor.stop, gauge.stop, gateway.close, payments.close, accounting.close]
    if settings.capture_in_process:
        # faust's app is a service of this loop (built inside it, paykit.grpckit.runner).
        capture_app, _ = build_capture(settings, sessions)

        async def start_capture() -> dict[str, Any]:
            await capture_app.start()
            return {"capture": "in_process"}

        async def stop_capture() -> None:
            await capture_app.stop()

        extra_start.append(start_capture)
        extra_stop.insert(0, stop_capture)

    return ServiceParts(
        name="reconciliation",
        grpc_services=[
            (
                reconciliation_pb2_grpc.add_ReconciliationServiceServicer_to_server,
                ReconciliationServicer(uow_factory, runner, resolver),
                SERVICE_NAME,
            )
        ],
        workers=[relay] if settings.outbox_relay_enabled else [],
        interceptors=[idempotency(engine, settings)],
        extra_start=extra_start,
        extra_stop=extra_stop,
        on_stop=[engine.dispose],
    )
