"""ReconciliationService over gRPC: protobuf messages stop here."""

from __future__ import annotations

import grpc
from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.contracts.convert import timestamp
from paykit.db import run_blocking
from paykit.errors import InvalidArgument
from paykit.reconciliation.v1 import reconciliation_pb2 as pb
from paykit.reconciliation.v1 import reconciliation_pb2_grpc

from reconciliation.adapters.repository import DiscrepancyFilter, DiscrepancyRecord, RunRecord
from reconciliation.service_layer import reports, resolution, runs
from reconciliation.service_layer.resolution import ResolveDiscrepancy, Resolver
from reconciliation.service_layer.runs import Runner
from reconciliation.service_layer.unit_of_work import UowFactory

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ReconciliationService"].full_name
_RUN_STATUS = {s: pb.RunStatus.Value(f"RUN_STATUS_{s}") for s in ("RUNNING", "SUCCEEDED", "FAILED")}
_SIDE = {s: pb.Side.Value(f"SIDE_{s}") for s in ("INTERNAL", "CHANNEL", "BOTH")}
_TYPES = {
    name: value for name, value in pb.DiscrepancyType.items() if value != pb.DISCREPANCY_TYPE_UNSPECIFIED
}
_TYPE_OUT = {name.removeprefix("DISCREPANCY_TYPE_"): value for name, value in _TYPES.items()}
_TYPE_IN = {value: name for name, value in _TYPE_OUT.items()}
_STATUS_OUT = {
    name.removeprefix("DISCREPANCY_STATUS_"): value
    for name, value in pb.DiscrepancyStatus.items()
    if value != pb.DISCREPANCY_STATUS_UNSPECIFIED
}
_STATUS_IN = {value: name for name, value in _STATUS_OUT.items()}


def _money(minor: int | None, currency: str) -> MoneyProto | None:
    return None if minor is None else MoneyProto(minor=minor, currency=currency)


def report_to_proto(run: RunRecord) -> pb.Report:
    by_status = run.discrepancies_by_status
    return pb.Report(
        run_id=run.run_id,
        channel=run.channel,
        business_day=run.business_day.isoformat(),
        status=_RUN_STATUS.get(run.status, pb.RUN_STATUS_UNSPECIFIED),
        started_at=timestamp(run.started_at),
        finished_at=timestamp(run.finished_at),
        statement_sha256=run.statement_sha256 or "",
        statement_lines=run.statement_lines,
        internal_records=run.internal_records,
        outcomes=[
            pb.OutcomeCount(
                type=o.type,
                side=_SIDE.get(o.side, pb.SIDE_UNSPECIFIED),
                records=o.records,
                amount=MoneyProto(minor=o.amount_minor, currency=o.currency),
            )
            for o in run.outcomes
        ],
        discrepancies_open=by_status.get("OPEN", 0),
        discrepancies_resolved=by_status.get("RESOLVED", 0) + by_status.get("AUTO_RESOLVED", 0),
        error=run.error or "",
    )


def discrepancy_to_proto(d: DiscrepancyRecord) -> pb.Discrepancy:
    return pb.Discrepancy(
        discrepancy_id=d.discrepancy_id,
        run_id=d.run_id,
        channel=d.channel,
        business_day=d.business_day.isoformat(),
        type=_TYPE_OUT.get(d.type, pb.DISCREPANCY_TYPE_UNSPECIFIED),
        side=_SIDE.get(d.side, pb.SIDE_UNSPECIFIED),
        kind=d.kind,
        our_id=d.our_id or "",
        channel_txn_id=d.channel_txn_id or "",
        internal_amount=_money(d.internal_amount_minor, d.currency),
        channel_amount=_money(d.channel_amount_minor, d.currency),
        internal_fee=_money(d.internal_fee_minor, d.currency),
        channel_fee=_money(d.channel_fee_minor, d.currency),
        status=_STATUS_OUT.get(d.status, pb.DISCREPANCY_STATUS_UNSPECIFIED),
        resolution=d.resolution or "",
        actor=d.actor or "",
        reason=d.reason or "",
        created_at=timestamp(d.created_at),
        resolved_at=timestamp(d.resolved_at),
    )


def discrepancy_filter(request: pb.ListDiscrepanciesRequest) -> DiscrepancyFilter:
    if request.type != pb.DISCREPANCY_TYPE_UNSPECIFIED and request.type not in _TYPE_IN:
        raise InvalidArgument("type", f"unknown discrepancy type {request.type}")
    if request.status != pb.DISCREPANCY_STATUS_UNSPECIFIED and request.status not in _STATUS_IN:
        raise InvalidArgument("status", f"unknown discrepancy status {request.status}")
    return DiscrepancyFilter(
        channel=request.channel or None,
        business_day=reports.parse_day(request.business_day, "business_day")
        if request.business_day
        else None,
        type=_TYPE_IN.get(request.type),
        status=_STATUS_IN.get(request.status),
        run_id=request.run_id or None,
    )


class ReconciliationServicer(reconciliation_pb2_grpc.ReconciliationServiceServicer):
    def __init__(self, uow_factory: UowFactory, runner: Runner, resolver: Resolver) -> None:
        self._uow_factory = uow_factory
        self._runner = runner
        self._resolver = resolver

    async def RunReconciliation(
        self, request: pb.RunReconciliationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Report:
        channel, day = runs.validate(request.channel, request.business_day)
        # One run of a channel's day at a time in this process (the database refuses a second
        # RUNNING one from another replica).
        async with self._runner.lock(channel, day):
            try:
                stored = await runs.run_and_store(self._runner, channel, day)
                await resolution.resolve_after_run(self._resolver, stored)
            finally:
                await run_blocking(resolution.measure_open, self._uow_factory)
        run = await run_blocking(runs.report_of, self._uow_factory, stored.run_id)
        return report_to_proto(run)

    async def GetReport(self, request: pb.GetReportRequest, context: grpc.aio.ServicerContext) -> pb.Report:
        run = await run_blocking(
            reports.report, self._uow_factory, request.run_id, request.channel, request.business_day
        )
        return report_to_proto(run)

    async def ListDiscrepancies(
        self, request: pb.ListDiscrepanciesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDiscrepanciesResponse:
        page = await run_blocking(
            reports.discrepancies,
            self._uow_factory,
            discrepancy_filter(request),
            request.page_size,
            request.page_token,
        )
        return pb.ListDiscrepanciesResponse(
            discrepancies=[discrepancy_to_proto(d) for d in page.discrepancies],
            next_page_token=page.next_page_token,
        )

    async def ResolveDiscrepancy(
        self, request: pb.ResolveDiscrepancyRequest, context: grpc.aio.ServicerContext
    ) -> pb.Discrepancy:
        command = ResolveDiscrepancy(
            discrepancy_id=request.discrepancy_id,
            resolution=request.resolution,
            actor=request.actor,
            reason=request.reason,
            idempotency_key=request.idempotency_key,
        )
        resolved = await run_blocking(resolution.resolve_discrepancy, self._uow_factory, command)
        await run_blocking(resolution.measure_open, self._uow_factory)
        return discrepancy_to_proto(resolved)
