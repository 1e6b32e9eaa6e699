"""Refunds through the real suite: partial and repeated, concurrent, asynchronous at the
channel (notification or query), never more in total than was captured."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from paykit.devstack.suite import Suite
from paykit.messaging.topics import ORDER_EVENTS, REFUND_EVENTS

from tests.e2e.helpers import (
    count_events,
    events_on,
    eventually,
    get_order,
    get_payment,
    history,
    new_order,
    order_status,
    pay,
    query,
    refund_order,
    refund_status_name,
    refunds_of,
    simulator_trade,
    wait_money_balanced,
    wait_order_status,
)

WAIT_S = 60.0


def paid_order(suite: Suite, minor: int = 10_000, subject: str = "e2e refund") -> tuple[str, str]:
    order = new_order(suite, minor=minor, subject=subject)
    paid = pay(suite, order.order_id)
    wait_order_status(suite, order.order_id, "PAID")
    return order.order_id, paid.payment_id


def refunds_settled(suite: Suite, order_id: str) -> bool:
    found = refunds_of(suite, order_id)
    return bool(found) and all(refund_status_name(r) in ("SUCCEEDED", "FAILED") for r in found)


def test_partial_and_repeated_refunds_never_exceed_the_payment(suite: Suite) -> None:
    order_id, payment_id = paid_order(suite)
    first = refund_order(suite, order_id, 3_000, "r1")
    assert first.refund_status in ("PROCESSING", "SUCCEEDED")
    eventually(lambda: order_status(suite, order_id) == "PARTIALLY_REFUNDED", "partially refunded", WAIT_S)
    refund_order(suite, order_id, 2_000, "r2")
    eventually(lambda: get_order(suite, order_id).refunded_amount.minor == 5_000, "5000 refunded", WAIT_S)

    with pytest.raises(grpc.RpcError) as too_much:
        refund_order(suite, order_id, 6_000, "r3")
    assert too_much.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "50.00" in (too_much.value.details() or "")

    refund_order(suite, order_id, 5_000, "r4")
    wait_order_status(suite, order_id, "REFUNDED")
    payment = get_payment(suite, payment_id)
    assert payment.refunded_amount.minor == 10_000
    assert history(payment)[-3:] == [
        ("SUCCEEDED", "PARTIALLY_REFUNDED"),
        ("PARTIALLY_REFUNDED", "PARTIALLY_REFUNDED"),
        ("PARTIALLY_REFUNDED", "REFUNDED"),
    ]
    refunds = refunds_of(suite, order_id)
    assert sorted(r.amount.minor for r in refunds) == [2_000, 3_000, 5_000]
    for refund in refunds:
        assert history(refund) == [("PENDING", "PROCESSING"), ("PROCESSING", "SUCCEEDED")]
        assert count_events(suite, REFUND_EVENTS, "refund.succeeded", refund.refund_id) == 1
    assert (
        sum(
            1
            for _, e in events_on(suite, ORDER_EVENTS)
            if e.event_type == "order.refunded" and e.aggregate_id == order_id
        )
        == 3
    )
    check = wait_money_balanced(suite, {order_id})
    assert check.channel_returned == 10_000


def test_twenty_concurrent_refunds_of_ten_against_one_hundred_exactly_ten_succeed(suite: Suite) -> None:
    order_id, payment_id = paid_order(suite)

    def attempt(i: int) -> str:
        try:
            refund_order(suite, order_id, 1_000, f"concurrent-{i}")
        except grpc.RpcError as exc:
            return exc.code().name
        return "OK"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    print(
        f"\n20 concurrent refunds of 10.00 against 100.00: {outcomes.count('OK')} accepted, "
        f"{outcomes.count('FAILED_PRECONDITION')} refused"
    )
    assert outcomes.count("OK") == 10
    assert outcomes.count("FAILED_PRECONDITION") == 10
    eventually(lambda: refunds_settled(suite, order_id), "every refund settled", WAIT_S)
    refunds = refunds_of(suite, order_id)
    assert len(refunds) == 10 and all(refund_status_name(r) == "SUCCEEDED" for r in refunds)
    wait_order_status(suite, order_id, "REFUNDED")
    assert get_payment(suite, payment_id).refunded_amount.minor == 10_000
    trade = simulator_trade(suite, payment_id)
    assert sum(1 for r in trade["refunds"] if r["status"] == "SUCCESS") == 10
    check = wait_money_balanced(suite, {order_id})
    assert check.channel_returned == check.recorded_refunded == 10_000
    print(
        f"total refunded: {check.recorded_refunded / 100:.2f} (channel: {check.channel_returned / 100:.2f})"
    )


def test_refund_notification_before_the_refund_answer_goes_through_processing(suite: Suite) -> None:
    order_id, _ = paid_order(suite, subject="tea sim:out_of_order")
    refund_order(suite, order_id, 4_000, "ooo")
    eventually(lambda: refunds_settled(suite, order_id), "refund settled", WAIT_S)
    (refund,) = refunds_of(suite, order_id)
    assert refund_status_name(refund) == "SUCCEEDED"
    assert history(refund) == [("PENDING", "PROCESSING"), ("PROCESSING", "SUCCEEDED")]
    assert count_events(suite, REFUND_EVENTS, "refund.succeeded", refund.refund_id) == 1
    wait_money_balanced(suite, {order_id})


def test_lost_refund_notification_is_recovered_by_query(suite: Suite) -> None:
    order_id, payment_id = paid_order(suite, subject="tea sim:drop_notify")
    refund_order(suite, order_id, 10_000, "lost")
    wait_order_status(suite, order_id, "REFUNDED")
    (refund,) = refunds_of(suite, order_id)
    assert refund_status_name(refund) == "SUCCEEDED"
    queries = query(
        suite,
        "channel_gateway",
        "select count(*) from channel_exchanges where payment_id = :p and operation = 'query_refund'",
        p=payment_id,
    )
    assert queries[0][0] >= 1
    wait_money_balanced(suite, {order_id})
