"""Reconciliation of a day of Alipay, end to end: orders paid on the Alipay protocol, two of them
with their notification dropped (payment-core, its scheduled query pushed an hour away, still
thinks them PROCESSING), a payment the channel invents on its bill; RunReconciliation downloads
the bill through channel-gateway, matches it against what the capture recorded, has payment-core
ask the channel about the two it never saw succeed (now SUCCEEDED, their orders PAID), leaves
the invented one OPEN for a human, who resolves it with an audit trail."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
import pytest
from paykit.devstack.suite import Suite
from paykit.reconciliation.v1 import reconciliation_pb2 as pb
from paykit.reconciliation.v1 import reconciliation_pb2_grpc

from tests.e2e.helpers import (
    eventually,
    new_order,
    order_status,
    pay,
    payment_status,
    query,
    rpc_error,
    simulator,
    simulator_trade,
)

CHINA = timezone(timedelta(hours=8))
CHANNEL = "alipay"
WAIT_S = 60.0
RUN_TIMEOUT_S = 120.0
# Order-loss prevention would query the dropped payments within seconds in the suite: an hour.
LONG_QUERY_SCHEDULE = {"PAYMENT_QUERY_SCHEDULE_S": "3600,3600"}


def recon(suite: Suite) -> reconciliation_pb2_grpc.ReconciliationServiceStub:
    channel = grpc.insecure_channel(suite.grpc_target("reconciliation"))
    return reconciliation_pb2_grpc.ReconciliationServiceStub(channel)  # type: ignore[no-untyped-call]


def alipay_account(suite: Suite) -> str:
    """The simulator account channel-gateway's sandbox seeding picked for Alipay (the first)."""
    credentials = simulator(suite, "/v1/admin/sandbox-credentials")[CHANNEL]
    accounts = credentials.get("merchants", credentials)
    return sorted(accounts)[0]


@pytest.fixture
def slow_order_loss(suite: Suite) -> Iterator[None]:
    suite.start_service("payment_core", LONG_QUERY_SCHEDULE)
    try:
        yield
    finally:
        suite.start_service("payment_core", {})  # the suite's own environment again


def discrepancies(suite: Suite, day: str, **filters: Any) -> list[pb.Discrepancy]:
    found: list[pb.Discrepancy] = []
    token = ""
    while True:
        page = recon(suite).ListDiscrepancies(
            pb.ListDiscrepanciesRequest(
                channel=CHANNEL, business_day=day, page_size=500, page_token=token, **filters
            ),
            timeout=10,
        )
        found.extend(page.discrepancies)
        token = page.next_page_token
        if not token:
            return found


def run(suite: Suite, day: str) -> pb.Report:
    return recon(suite).RunReconciliation(
        pb.RunReconciliationRequest(channel=CHANNEL, business_day=day), timeout=RUN_TIMEOUT_S
    )


def outcome_counts(report: pb.Report) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for o in report.outcomes:
        counts[f"{o.type}/{pb.Side.Name(o.side).removeprefix('SIDE_')}"] += o.records
    return dict(sorted(counts.items()))


def run_counts(suite: Suite, run_id: str) -> dict[str, Any]:
    return dict(
        query(suite, "reconciliation", "SELECT counts FROM recon_runs WHERE run_id = :r", r=run_id)[0][0]
    )


def print_report(title: str, suite: Suite, report: pb.Report) -> None:
    counts = run_counts(suite, report.run_id)
    print(
        f"\n{title}: run {report.run_id} {CHANNEL} {report.business_day} "
        f"{pb.RunStatus.Name(report.status)}; statement {report.statement_sha256[:12]}… "
        f"{report.statement_lines} lines, {report.internal_records} internal records"
        f"\n  outcomes: {outcome_counts(report)}"
        f"\n  discrepancies: {counts.get('discrepancies_found')} found, "
        f"{counts.get('discrepancies_new')} new, "
        f"{counts.get('discrepancies_known')} known before; this run's open {report.discrepancies_open}, "
        f"resolved {report.discrepancies_resolved}"
        f"\n  automatic resolutions: {counts.get('resolutions')}; funds released: {counts.get('releases')}"
    )


@pytest.mark.usefixtures("slow_order_loss")
def test_a_day_of_alipay_is_reconciled_lost_notifications_fixed_and_an_invented_payment_left_to_a_human(
    suite: Suite,
) -> None:
    tag = uuid.uuid4().hex[:6]
    merchant = f"m-e2e-recon-{tag}"
    paid, dropped = [], []
    for i, minor in enumerate((1_200, 3_450, 990, 12_000, 560)):
        drop = i in (1, 3)
        subject = f"e2e recon {i}" + (" sim:drop_notify" if drop else "")
        order = new_order(suite, minor=minor, subject=subject, merchant_id=merchant)
        payment = pay(suite, order.order_id, method="alipay_qr")
        (dropped if drop else paid).append((order.order_id, payment.payment_id))
    for order_id, _ in paid:
        eventually(lambda o=order_id: order_status(suite, o) == "PAID", f"order {order_id} PAID", WAIT_S)
    for _, payment_id in dropped:
        eventually(
            lambda p=payment_id: simulator_trade(suite, p)["paid_at"],
            f"the channel to have taken {payment_id}",
            WAIT_S,
        )
        assert payment_status(suite, payment_id) == "PROCESSING"  # the notification never came

    day = datetime.now(CHINA).date().isoformat()
    invented = f"pay_invented_{tag}"
    simulator(
        suite,
        f"/v1/admin/statement-extras?merchant={alipay_account(suite)}",
        {"protocol": CHANNEL, "day": day, "kind": "PAYMENT", "out_trade_no": invented,
         "amount": "66.60", "currency": "CNY"},
    )  # fmt: skip
    # The capture must have recorded the notified payments before the day is matched.
    ids = [p for _, p in paid]
    eventually(
        lambda: query(
            suite, "reconciliation",
            "SELECT count(*) FROM internal_records WHERE our_id = ANY(:ids) AND status = 'SUCCEEDED'",
            ids=ids,
        )[0][0] == len(ids),
        "the capture to record the notified payments",
        WAIT_S,
    )  # fmt: skip

    first = run(suite, day)
    print_report("first run", suite, first)
    assert first.status == pb.RUN_STATUS_SUCCEEDED and first.statement_lines >= 5

    mine = {p for _, p in paid + dropped} | {invented}
    found = {d.our_id: d for d in discrepancies(suite, day) if d.our_id in mine}
    assert set(found) == {p for _, p in dropped} | {invented}, found
    for order_id, payment_id in dropped:
        d = found[payment_id]
        assert d.type == pb.DISCREPANCY_TYPE_CHANNEL_ONLY and d.side == pb.SIDE_CHANNEL
        assert d.status == pb.DISCREPANCY_STATUS_AUTO_RESOLVED and d.resolution == "payment_fixed"
        assert payment_status(suite, payment_id) == "SUCCEEDED"
        eventually(lambda o=order_id: order_status(suite, o) == "PAID", f"order {order_id} PAID", WAIT_S)
    lost = found[invented]
    assert lost.type == pb.DISCREPANCY_TYPE_CHANNEL_ONLY and lost.status == pb.DISCREPANCY_STATUS_OPEN
    assert lost.channel_amount.minor == 6_660 and not lost.HasField("internal_amount")
    # Everything else of this test reconciled: no discrepancy names the notified payments.
    assert not any(p in found for p in ids)

    # Once the capture has the two successes, a second run finds nothing new.
    dropped_ids = [p for _, p in dropped]
    eventually(
        lambda: query(
            suite, "reconciliation",
            "SELECT count(*) FROM internal_records WHERE our_id = ANY(:ids) AND status = 'SUCCEEDED'",
            ids=dropped_ids,
        )[0][0] == len(dropped_ids),
        "the capture to record the payments fixed by the channel query",
        WAIT_S,
    )  # fmt: skip
    second = run(suite, day)
    print_report("second run", suite, second)
    assert second.status == pb.RUN_STATUS_SUCCEEDED and second.run_id != first.run_id
    assert run_counts(suite, second.run_id)["discrepancies_new"] == 0
    assert not discrepancies(suite, day, run_id=second.run_id)
    again = {d.our_id: d for d in discrepancies(suite, day) if d.our_id in mine}
    assert set(again) == set(found)  # the same ones, not added twice
    assert again[invented].discrepancy_id == lost.discrepancy_id
    assert again[invented].status == pb.DISCREPANCY_STATUS_OPEN

    # An operator resolves the invented payment; the audit trail shows who and why.
    stub = recon(suite)
    request = pb.ResolveDiscrepancyRequest(
        discrepancy_id=lost.discrepancy_id,
        resolution="written_off",
        actor="ops@paykit",
        reason=f"Alipay confirmed {invented} is not ours (ticket {tag})",
        idempotency_key=f"e2e-resolve-{tag}",
    )
    resolved = stub.ResolveDiscrepancy(request, timeout=10)
    assert resolved.status == pb.DISCREPANCY_STATUS_RESOLVED and resolved.actor == "ops@paykit"
    assert stub.ResolveDiscrepancy(request, timeout=10) == resolved  # the same key: the first answer
    refused = rpc_error(
        lambda: stub.ResolveDiscrepancy(
            pb.ResolveDiscrepancyRequest(
                discrepancy_id=lost.discrepancy_id, resolution="written_off", actor="ops@paykit",
                reason="again", idempotency_key=f"e2e-resolve-{tag}-2",
            ),
            timeout=10,
        )
    )  # fmt: skip
    assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION
    trail = query(
        suite, "reconciliation",
        "SELECT action, from_status, to_status, actor, reason FROM discrepancy_audit "
        "WHERE discrepancy_id = :d ORDER BY audit_id", d=lost.discrepancy_id,
    )  # fmt: skip
    assert [(a, f, t, who) for a, f, t, who, _ in trail] == [
        ("found", None, "OPEN", "reconciliation"),
        ("resolved", "OPEN", "RESOLVED", "ops@paykit"),
    ]
    print(f"\naudit trail of {lost.discrepancy_id} ({invented}):")
    for row in trail:
        print(f"  {row[0]:<9} {row[1] or '-':>5} -> {row[2]:<8} by {row[3]}: {row[4]}")
    for order_id, payment_id in dropped:
        print(
            f"  fixed: {payment_id} {payment_status(suite, payment_id)}, "
            f"order {order_id} {order_status(suite, order_id)}"
        )
