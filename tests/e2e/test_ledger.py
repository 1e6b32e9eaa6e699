"""The ledger against the whole suite: after real traffic (payments, refunds, a duplicate
payment) the trial balance is zero and each merchant's balance equals its captures minus
fees and refunds, computed here independently; a replayed event stream changes nothing."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict

import grpc
from confluent_kafka import Consumer, Producer, TopicPartition
from paykit.accounting.v1 import accounting_pb2 as pb
from paykit.accounting.v1 import accounting_pb2_grpc
from paykit.devstack.fixtures import committed_offsets
from paykit.devstack.suite import Suite
from paykit.messaging.topics import PAYMENT_EVENTS, REFUND_EVENTS

from tests.e2e.helpers import (
    configure_channel,
    events_on,
    eventually,
    new_order,
    pay,
    query,
    refund_order,
    rpc_error,
    simulator,
    wait_order_status,
)

MERCHANT_BPS = 60  # the suite's default fee schedule (ACCOUNTING_FEES)
WAIT_S = 90.0


def ledger(suite: Suite) -> accounting_pb2_grpc.AccountingServiceStub:
    return accounting_pb2_grpc.AccountingServiceStub(grpc.insecure_channel(suite.grpc_target("accounting")))


def fee(minor: int) -> int:
    """Half-up fee in minor units, computed without the service's money library."""
    return (minor * MERCHANT_BPS * 2 + 10_000) // 20_000


def expected_merchant_balances(suite: Suite) -> dict[tuple[str, str], int]:
    """Per (merchant, currency): captured net of fee, minus refunds net of the fee returned on them."""
    owed: dict[tuple[str, str], int] = defaultdict(int)
    for p in query(
        suite,
        "payment_core",
        "select merchant_id, currency, amount_minor from payments "
        "where status in ('SUCCEEDED','PARTIALLY_REFUNDED','REFUNDED') and duplicate_reason is null",
    ):
        owed[(p.merchant_id, p.currency)] += p.amount_minor - fee(p.amount_minor)
    # The fee returned is the fee on all that was refunded of a payment, never more than charged.
    for r in query(
        suite,
        "payment_core",
        "select r.merchant_id, r.currency, p.amount_minor as paid, sum(r.amount_minor) as refunded "
        "from refunds r join payments p using (payment_id) "
        "where r.status = 'SUCCEEDED' and not r.automatic "
        "group by r.merchant_id, r.currency, r.payment_id, p.amount_minor",
    ):
        refunded = int(r.refunded)
        owed[(r.merchant_id, r.currency)] -= refunded - min(fee(refunded), fee(r.paid))
    return dict(owed)


def ledger_balances(suite: Suite, merchants: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    found = {}
    paid_out = {
        (r.merchant_id, r.currency): int(r.total)
        for r in query(
            suite,
            "accounting",
            "select merchant_id, currency, sum(amount_minor) as total from settlements "
            "where status = 'PAID_OUT' group by merchant_id, currency",
        )
    }
    for merchant, currency in merchants:
        balance = ledger(suite).GetBalance(
            pb.GetBalanceRequest(merchant_id=merchant, currency=currency), timeout=10
        )
        found[(merchant, currency)] = (
            balance.pending.minor
            + balance.available.minor
            + balance.in_transit.minor
            + paid_out.get((merchant, currency), 0)
        )
    return found


def end_offsets(suite: Suite, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": suite.kafka_bootstrap, "group.id": "e2e-ends"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
    finally:
        consumer.close()


def posted_everything(suite: Suite) -> bool:
    """Every payment.succeeded and refund.succeeded on Kafka has its journal entry."""
    wanted = {
        e.event_id
        for topic in (PAYMENT_EVENTS, REFUND_EVENTS)
        for _, e in events_on(suite, topic)
        if e.event_type in ("payment.succeeded", "refund.succeeded")
    }
    posted = {r.event_id for r in query(suite, "accounting", "select event_id from journal_entries")}
    failed = {r.event_id for r in query(suite, "accounting", "select event_id from posting_failures")}
    return wanted <= posted | failed


def test_trial_balance_is_zero_and_merchant_balances_match_after_traffic(suite: Suite) -> None:
    # Traffic of its own besides what earlier tests left: payments, partial and full refunds.
    paid_orders = []
    for minor in (10_000, 1_999, 333, 12_345):
        order = new_order(suite, minor=minor, subject="ledger tea")
        pay(suite, order.order_id)
        paid_orders.append(order)
    for order in paid_orders:
        wait_order_status(suite, order.order_id, "PAID")
    refund_order(suite, paid_orders[0].order_id, 3_000, "ledger-r1")
    refund_order(suite, paid_orders[1].order_id, 1_999, "ledger-r2")
    wait_order_status(suite, paid_orders[1].order_id, "REFUNDED")
    eventually(lambda: posted_everything(suite), "the ledger to post every money event", WAIT_S)

    trial = ledger(suite).TrialBalance(pb.TrialBalanceRequest(), timeout=10)
    assert trial.balanced and trial.entries > 0
    assert all(c.difference.minor == 0 and c.debits.minor == c.credits.minor for c in trial.currencies)
    failures = ledger(suite).ListPostingFailures(pb.ListPostingFailuresRequest(), timeout=10)
    assert list(failures.failures) == []

    expected = expected_merchant_balances(suite)
    found = ledger_balances(suite, set(expected))
    print(
        "\nledger after the e2e traffic: "
        + json.dumps(
            {
                "entries": trial.entries,
                "trial_balance": {c.currency: c.difference.minor for c in trial.currencies},
                "merchants": {f"{m}/{c}": v for (m, c), v in sorted(found.items())},
            }
        )
    )
    assert found == expected


def settle(suite: Suite, key: str, merchant: str) -> pb.Settlement:
    return ledger(suite).RunSettlement(
        pb.RunSettlementRequest(idempotency_key=key, merchant_id=merchant, currency="CNY"), timeout=30
    )


def merchant_balance(suite: Suite, merchant: str) -> pb.Balance:
    return ledger(suite).GetBalance(pb.GetBalanceRequest(merchant_id=merchant, currency="CNY"), timeout=10)


def test_settlement_pays_out_available_funds_and_a_refused_payout_returns_them(suite: Suite) -> None:
    merchant = f"m-settle-{uuid.uuid4().hex[:6]}"
    orders = [new_order(suite, minor=minor, merchant_id=merchant) for minor in (10_000, 5_000)]
    for order in orders:
        pay(suite, order.order_id)
        wait_order_status(suite, order.order_id, "PAID")
    net = sum(minor - fee(minor) for minor in (10_000, 5_000))
    # Released for settlement after the suite's T+N (3 s).
    eventually(lambda: merchant_balance(suite, merchant).available.minor == net, "funds released", WAIT_S)

    settled = settle(suite, "settle-1", merchant)
    assert pb.SettlementStatus.Name(settled.status) == "SETTLEMENT_STATUS_PAID_OUT"
    assert settled.amount.minor == net and settled.payout_reference and len(settled.entry_ids) == 2
    after = merchant_balance(suite, merchant)
    assert (after.pending.minor, after.available.minor, after.in_transit.minor) == (0, 0, 0)
    payouts = simulator(suite, "/v1/admin/payouts?merchant=SIM-MERCHANT-1")
    assert [p["amount"] for p in payouts if p["out_payout_no"] == settled.settlement_id] == [
        f"{net / 100:.2f}"
    ]
    again = settle(suite, "settle-1", merchant)
    assert again.settlement_id == settled.settlement_id
    nothing = rpc_error(lambda: settle(suite, "settle-2", merchant)).code()
    assert nothing == grpc.StatusCode.FAILED_PRECONDITION

    third = new_order(suite, minor=2_000, merchant_id=merchant)
    pay(suite, third.order_id)
    eventually(lambda: merchant_balance(suite, merchant).available.minor == 2_000 - fee(2_000), "released")
    configure_channel(suite, "SIM-MERCHANT-1", payout_decline_rate=1.0)
    try:
        refused = settle(suite, "settle-3", merchant)
    finally:
        configure_channel(suite, "SIM-MERCHANT-1", payout_decline_rate=0.0)
    assert pb.SettlementStatus.Name(refused.status) == "SETTLEMENT_STATUS_FAILED"
    assert "PAYOUT_DECLINED" in refused.failure
    assert merchant_balance(suite, merchant).available.minor == 2_000 - fee(2_000)
    assert ledger(suite).TrialBalance(pb.TrialBalanceRequest(), timeout=10).balanced


def test_a_replayed_event_stream_changes_no_balance(suite: Suite) -> None:
    order = new_order(suite, minor=8_000, subject="replayed tea")
    pay(suite, order.order_id)
    wait_order_status(suite, order.order_id, "PAID")
    refund_order(suite, order.order_id, 2_000, "replay-r1")
    wait_order_status(suite, order.order_id, "PARTIALLY_REFUNDED")
    eventually(lambda: posted_everything(suite), "the ledger to post every money event", WAIT_S)

    def snapshot() -> tuple[list[tuple[str, int]], int]:
        balances = [
            (r.account_id, r.balance_minor)
            for r in query(suite, "accounting", "select account_id, balance_minor from accounts order by 1")
        ]
        entries = query(suite, "accounting", "select count(*) from journal_entries")[0][0]
        return balances, entries

    before = snapshot()
    producer = Producer({"bootstrap.servers": suite.kafka_bootstrap})
    replayed = 0
    for topic in (PAYMENT_EVENTS, REFUND_EVENTS):
        for key, envelope in events_on(suite, topic):
            producer.produce(topic, key=key.encode(), value=envelope.SerializeToString())
            replayed += 1
    producer.flush(30)
    assert replayed > 0
    # The ledger's consumer group has read past every copy once its committed offsets
    # reach the topics' ends; then the ledger must look exactly as before.
    ends = {topic: end_offsets(suite, topic) for topic in (PAYMENT_EVENTS, REFUND_EVENTS)}

    def behind() -> dict[str, dict[int, tuple[int, int]]]:
        lag = {}
        for topic, partitions in ends.items():
            committed = committed_offsets(suite.kafka_bootstrap, "accounting", topic)
            lag[topic] = {
                p: (committed.get(p, -1), end)
                for p, end in partitions.items()
                if max(committed.get(p, 0), 0) < end
            }
        return {t: v for t, v in lag.items() if v}

    try:
        eventually(lambda: not behind(), "accounting to consume the replayed copies", WAIT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: (committed, end) per lagging partition {behind()}") from exc
    assert snapshot() == before


def line(account_id: str, side: int, minor: int, currency: str = "CNY") -> pb.JournalLine:
    from paykit.common.v1.money_pb2 import Money

    return pb.JournalLine(account_id=account_id, side=side, amount=Money(minor=minor, currency=currency))


def test_operator_adjustments_are_checked_recorded_and_reversible(suite: Suite) -> None:
    stub = ledger(suite)
    suspense, bank = "liability:suspense:CNY", "asset:settlement_bank:CNY"

    def adjust(
        key: str, *lines: pb.JournalLine, reason: str = "statement difference", actor: str = "ops@paykit"
    ):
        return stub.PostAdjustment(
            pb.PostAdjustmentRequest(idempotency_key=key, lines=list(lines), reason=reason, actor=actor),
            timeout=10,
        )

    before = query(suite, "accounting", "select count(*) from journal_entries")[0][0]
    bad = {
        "unbalanced": lambda: adjust(
            "bad-1", line(suspense, pb.SIDE_DEBIT, 100), line(bank, pb.SIDE_CREDIT, 99)
        ),
        "one line": lambda: adjust("bad-2", line(suspense, pb.SIDE_DEBIT, 100)),
        "unknown account": lambda: adjust(
            "bad-3", line("asset:cash_drawer:CNY", pb.SIDE_DEBIT, 100), line(bank, pb.SIDE_CREDIT, 100)
        ),
        "mixed currencies": lambda: adjust(
            "bad-4",
            line(suspense, pb.SIDE_DEBIT, 100),
            line("asset:settlement_bank:USD", pb.SIDE_CREDIT, 100, "USD"),
        ),
        "no actor": lambda: adjust(
            "bad-5", line(suspense, pb.SIDE_DEBIT, 1), line(bank, pb.SIDE_CREDIT, 1), actor=""
        ),
    }
    for what, call in bad.items():
        assert rpc_error(call).code() == grpc.StatusCode.INVALID_ARGUMENT, what
    assert query(suite, "accounting", "select count(*) from journal_entries")[0][0] == before

    entry = adjust("adj-1", line(bank, pb.SIDE_DEBIT, 250), line(suspense, pb.SIDE_CREDIT, 250))
    assert (entry.kind, entry.actor, entry.reason) == ("adjustment", "ops@paykit", "statement difference")
    assert adjust("adj-1", line(bank, pb.SIDE_DEBIT, 250), line(suspense, pb.SIDE_CREDIT, 250)) == entry
    reused = rpc_error(
        lambda: adjust("adj-1", line(bank, pb.SIDE_DEBIT, 1), line(suspense, pb.SIDE_CREDIT, 1))
    )
    assert reused.code() == grpc.StatusCode.ALREADY_EXISTS

    reversal = stub.ReverseEntry(
        pb.ReverseEntryRequest(
            idempotency_key="rev-1", entry_id=entry.entry_id, reason="posted twice", actor="ops"
        ),
        timeout=10,
    )
    assert reversal.reverses_entry_id == entry.entry_id
    assert {(x.account_id, x.side) for x in reversal.lines} == {
        (bank, pb.SIDE_CREDIT),
        (suspense, pb.SIDE_DEBIT),
    }
    again = rpc_error(
        lambda: stub.ReverseEntry(
            pb.ReverseEntryRequest(idempotency_key="rev-2", entry_id=entry.entry_id, reason="x", actor="ops"),
            timeout=10,
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stub.TrialBalance(pb.TrialBalanceRequest(), timeout=10).balanced
