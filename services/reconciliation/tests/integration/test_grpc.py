"""ReconciliationService over real gRPC (in process, port 0) and PostgreSQL: reports of stored
runs, discrepancies filtered and paged, field-level statuses for bad input, and an operator's
resolution (ResolveDiscrepancy) with its refusals, audit row and idempotency. The run itself is
test_run.py's."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
import pytest
from paykit.grpckit.testing import in_process_caller, rpc_error, violated_field
from paykit.reconciliation.v1 import reconciliation_pb2 as pb
from paykit.reconciliation.v1 import reconciliation_pb2_grpc
from reconciliation.bootstrap import idempotency
from reconciliation.entrypoints.grpc_server import SERVICE_NAME, ReconciliationServicer
from reconciliation.service_layer.resolution import Resolver
from reconciliation.service_layer.runs import Runner
from reconciliation.service_layer.unit_of_work import UowFactory
from reconciliation.settings import ReconciliationSettings
from sqlalchemy import Engine, text

T = TypeVar("T")
Stub = reconciliation_pb2_grpc.ReconciliationServiceStub
T0 = datetime(2026, 4, 2, 1, 0, tzinfo=UTC)
COUNTS = {
    "statement_lines": 3,
    "internal_records": 4,
    "outcomes": [
        {"type": "MATCHED", "side": "CHANNEL", "currency": "CNY", "records": 2, "amount_minor": 3000},
        {"type": "MATCHED", "side": "INTERNAL", "currency": "CNY", "records": 2, "amount_minor": 3000},
        {"type": "CHANNEL_ONLY", "side": "CHANNEL", "currency": "CNY", "records": 1, "amount_minor": 999},
        {"type": "INTERNAL_ONLY", "side": "INTERNAL", "currency": "CNY", "records": 2, "amount_minor": 400},
    ],
}


@pytest.fixture(scope="module")
def stored(recon_engine: Engine) -> None:
    """Two runs of alipay's 2026-04-01 (the second is the day's answer), one of wechatpay's, and
    their discrepancies."""
    with recon_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO statement_files (file_id, channel, business_day, format, filename, sha256, "
                "account, line_count, imported_at) VALUES ('stm_grpc', 'alipay', '2026-04-01', "
                "'alipay_trade_bill', 'bill.csv', :sha, 'acct', 3, :t)"
            ),
            {"sha": "d" * 64, "t": T0},
        )
        for run_id, channel, minutes in (
            ("run_a1", "alipay", 0),
            ("run_a2", "alipay", 5),
            ("run_w1", "wechatpay", 1),
        ):
            conn.execute(
                text(
                    "INSERT INTO recon_runs (run_id, channel, business_day, status, statement_file_id, "
                    "started_at, finished_at, counts) VALUES (:r, :c, '2026-04-01', 'SUCCEEDED', :f, "
                    ":s, :s, CAST(:counts AS jsonb))"
                ),
                {
                    "r": run_id,
                    "c": channel,
                    "f": "stm_grpc" if channel == "alipay" else None,
                    "s": T0.replace(minute=minutes),
                    "counts": json.dumps(COUNTS),
                },
            )
        rows = [
            ("dsc_01", "run_a2", "alipay", "CHANNEL_ONLY", "CHANNEL", "OPEN", None, 999),
            ("dsc_02", "run_a2", "alipay", "INTERNAL_ONLY", "INTERNAL", "OPEN", 100, None),
            ("dsc_03", "run_a2", "alipay", "INTERNAL_ONLY", "INTERNAL", "RESOLVED", 300, None),
            ("dsc_04", "run_w1", "wechatpay", "AMOUNT_MISMATCH", "BOTH", "OPEN", 500, 501),
        ]
        for d_id, run_id, channel, kind, side, status, ours, theirs in rows:
            resolved = status != "OPEN"
            conn.execute(
                text(
                    "INSERT INTO discrepancies (discrepancy_id, run_id, channel, business_day, type, side, "
                    "kind, our_id, channel_txn_id, currency, internal_amount_minor, channel_amount_minor, "
                    "status, resolution, actor, reason, created_at, updated_at, resolved_at) VALUES (:d, :r, "
                    ":c, '2026-04-01', :ty, :side, 'PAYMENT', :our, :txn, 'CNY', :ours, :theirs, :st, :res, "
                    ":actor, :why, :t, :t, :rt)"
                ),
                {
                    "d": d_id,
                    "r": run_id,
                    "c": channel,
                    "ty": kind,
                    "side": side,
                    "st": status,
                    "our": f"pay_{d_id}",
                    "txn": f"T_{d_id}",
                    "ours": ours,
                    "theirs": theirs,
                    "t": T0,
                    "res": "written_off" if resolved else None,
                    "actor": "ops@paykit" if resolved else None,
                    "why": "test" if resolved else None,
                    "rt": T0 if resolved else None,
                },
            )


@pytest.fixture
def call(uow_factory: UowFactory, recon_engine: Engine, stored: None) -> Callable[..., Any]:
    settings = ReconciliationSettings(database_url="unused", kafka_bootstrap_servers="unused")
    return in_process_caller(
        reconciliation_pb2_grpc.add_ReconciliationServiceServicer_to_server,
        # No run here: nothing to download from, nobody to ask (test_run.py runs days).
        ReconciliationServicer(
            uow_factory,
            Runner(uow_factory, settings, None),
            Resolver(uow_factory, None, None, 0),  # type: ignore[arg-type]
        ),
        SERVICE_NAME,
        Stub,
        [idempotency(recon_engine, settings)],
    )


def test_get_report_by_run_id_and_the_latest_run_of_a_day(call: Callable[..., Any]) -> None:
    async def use(stub: Stub) -> tuple[pb.Report, pb.Report]:
        by_id = await stub.GetReport(pb.GetReportRequest(run_id="run_a1"))
        latest = await stub.GetReport(pb.GetReportRequest(channel="alipay", business_day="2026-04-01"))
        return by_id, latest

    by_id, latest = call(use)
    assert by_id.run_id == "run_a1" and latest.run_id == "run_a2"
    assert latest.status == pb.RUN_STATUS_SUCCEEDED and latest.business_day == "2026-04-01"
    assert latest.statement_sha256 == "d" * 64
    assert (latest.statement_lines, latest.internal_records) == (3, 4)
    assert (latest.discrepancies_open, latest.discrepancies_resolved) == (2, 1)
    channel_only = [o for o in latest.outcomes if o.type == "CHANNEL_ONLY"]
    assert len(channel_only) == 1 and channel_only[0].side == pb.SIDE_CHANNEL
    assert (channel_only[0].amount.minor, channel_only[0].amount.currency) == (999, "CNY")


@pytest.mark.parametrize(
    ("request_fields", "code", "field", "says"),
    [
        (
            {"run_id": "run_unknown"},
            grpc.StatusCode.NOT_FOUND,
            None,
            "reconciliation run 'run_unknown' not found",
        ),
        (
            {"channel": "alipay", "business_day": "2026-04-02"},
            grpc.StatusCode.NOT_FOUND,
            None,
            "no reconciliation run for channel 'alipay' on 2026-04-02",
        ),
        ({}, grpc.StatusCode.INVALID_ARGUMENT, "run_id", "give run_id, or channel and business_day"),
        ({"channel": "alipay"}, grpc.StatusCode.INVALID_ARGUMENT, "business_day", "is required"),
        (
            {"channel": "alipay", "business_day": "2026-4-1"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "business_day",
            "not a date as yyyy-mm-dd",
        ),
        ({"run_id": "run_a1", "channel": "alipay"}, grpc.StatusCode.INVALID_ARGUMENT, "run_id", "not both"),
    ],
)
def test_get_report_refuses_what_it_cannot_answer_with_a_clear_status(
    call: Callable[..., Any],
    request_fields: dict[str, str],
    code: grpc.StatusCode,
    field: str | None,
    says: str,
) -> None:
    error = rpc_error(call, lambda stub: stub.GetReport(pb.GetReportRequest(**request_fields)))
    assert error.code() is code
    assert says in error.details()
    if field is not None:
        assert violated_field(error) == field


def test_list_discrepancies_filters_and_pages(call: Callable[..., Any]) -> None:
    async def use(stub: Stub) -> dict[str, Any]:
        everything = await stub.ListDiscrepancies(pb.ListDiscrepanciesRequest())
        open_alipay = await stub.ListDiscrepancies(
            pb.ListDiscrepanciesRequest(
                channel="alipay", business_day="2026-04-01", status=pb.DISCREPANCY_STATUS_OPEN
            )
        )
        internal_only = await stub.ListDiscrepancies(
            pb.ListDiscrepanciesRequest(type=pb.DISCREPANCY_TYPE_INTERNAL_ONLY)
        )
        pages, token = [], ""
        while True:
            page = await stub.ListDiscrepancies(pb.ListDiscrepanciesRequest(page_size=3, page_token=token))
            pages.append([d.discrepancy_id for d in page.discrepancies])
            token = page.next_page_token
            if not token:
                break
        return {"all": everything, "open": open_alipay, "internal": internal_only, "pages": pages}

    got = call(use)
    assert [d.discrepancy_id for d in got["all"].discrepancies] == ["dsc_01", "dsc_02", "dsc_03", "dsc_04"]
    assert [d.discrepancy_id for d in got["open"].discrepancies] == ["dsc_01", "dsc_02"]
    assert [d.discrepancy_id for d in got["internal"].discrepancies] == ["dsc_02", "dsc_03"]
    assert got["pages"] == [["dsc_01", "dsc_02", "dsc_03"], ["dsc_04"]]
    mismatch = got["all"].discrepancies[3]
    assert mismatch.type == pb.DISCREPANCY_TYPE_AMOUNT_MISMATCH and mismatch.side == pb.SIDE_BOTH
    assert (mismatch.internal_amount.minor, mismatch.channel_amount.minor) == (500, 501)
    channel_only = got["all"].discrepancies[0]
    assert not channel_only.HasField("internal_amount") and channel_only.channel_amount.minor == 999
    resolved = got["all"].discrepancies[2]
    assert resolved.status == pb.DISCREPANCY_STATUS_RESOLVED and resolved.actor == "ops@paykit"
    assert resolved.HasField("resolved_at")


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": 501}, "page_size"),
        ({"business_day": "yesterday"}, "business_day"),
        ({"type": 99}, "type"),
    ],
)
def test_list_discrepancies_names_the_bad_field(
    call: Callable[..., Any], request_fields: dict[str, Any], field: str
) -> None:
    error = rpc_error(
        call, lambda stub: stub.ListDiscrepancies(pb.ListDiscrepanciesRequest(**request_fields))
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violated_field(error) == field


def test_an_operator_resolves_an_open_discrepancy_once_with_an_audit_row(
    call: Callable[..., Any], recon_engine: Engine
) -> None:
    def resolve(
        discrepancy_id: str, key: str, actor: str = "ops@paykit", reason: str = "refunded by hand"
    ) -> Any:
        request = pb.ResolveDiscrepancyRequest(
            discrepancy_id=discrepancy_id,
            resolution="written_off",
            actor=actor,
            reason=reason,
            idempotency_key=key,
        )
        return lambda stub: stub.ResolveDiscrepancy(request)

    # Its idempotency key is required, as for every mutating call.
    missing_key = rpc_error(
        call, lambda stub: stub.ResolveDiscrepancy(pb.ResolveDiscrepancyRequest(discrepancy_id="dsc_04"))
    )
    assert missing_key.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violated_field(missing_key) == "idempotency_key"
    for kwargs, field in (({"actor": " "}, "actor"), ({"reason": ""}, "reason")):
        error = rpc_error(call, resolve("dsc_04", f"k-{field}", **kwargs))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and violated_field(error) == field
    unknown = rpc_error(call, resolve("dsc_nobody", "k-unknown"))
    assert unknown.code() is grpc.StatusCode.NOT_FOUND
    already = rpc_error(call, resolve("dsc_03", "k-already"))
    assert already.code() is grpc.StatusCode.FAILED_PRECONDITION

    first = call(resolve("dsc_04", "k-resolve"))
    assert first.status == pb.DISCREPANCY_STATUS_RESOLVED and first.resolution == "written_off"
    assert (first.actor, first.reason) == ("ops@paykit", "refunded by hand") and first.HasField("resolved_at")
    assert call(resolve("dsc_04", "k-resolve")) == first  # the same key: the first answer again
    again = rpc_error(call, resolve("dsc_04", "k-resolve-2"))
    assert again.code() is grpc.StatusCode.FAILED_PRECONDITION
    with recon_engine.connect() as conn:
        trail = conn.execute(
            text(
                "SELECT action, from_status, to_status, resolution, actor, reason, idempotency_key "
                "FROM discrepancy_audit WHERE discrepancy_id = 'dsc_04' ORDER BY audit_id"
            )
        ).all()
        events = conn.execute(
            text("SELECT count(*) FROM outbox WHERE event_type = 'recon.discrepancy_resolved'")
        ).scalar_one()
    assert [tuple(row) for row in trail] == [
        ("resolved", "OPEN", "RESOLVED", "written_off", "ops@paykit", "refunded by hand", "k-resolve")
    ]
    assert events == 1
