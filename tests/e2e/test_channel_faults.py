"""Every fault mode of the channel simulator against the real suite. Each test asserts the
final states and that the money taken at the channel equals the money recorded, refunds included.

The suite runs payment-core with a query schedule of 1, 2, 3 s (order-loss prevention)
and the gateway's channel timeout of 5 s, so these finish in seconds.
"""

from __future__ import annotations

import time

from paykit.devstack.suite import Suite
from paykit.messaging.topics import ORDER_EVENTS, PAYMENT_EVENTS

from tests.e2e.helpers import (
    configure_channel,
    count_events,
    eventually,
    get_order,
    get_payment,
    history,
    new_order,
    order_status,
    pay,
    payments_of,
    query,
    simulator_trade,
    status_name,
    wait_money_balanced,
    wait_order_status,
)

LONG_WAIT_S = 60.0


def exchanges(suite: Suite, payment_id: str, operation: str) -> int:
    rows = query(
        suite,
        "channel_gateway",
        "select count(*) from channel_exchanges where payment_id = :p and operation = :o",
        p=payment_id,
        o=operation,
    )
    return int(rows[0][0])


def test_timeout_without_answer_goes_unknown_then_closes_at_its_deadline_never_failed_on_silence(
    suite: Suite,
) -> None:
    order = new_order(suite, subject="tea sim:timeout", expires_in_s=12)
    paid = pay(suite, order.order_id)
    # The gateway gave up after its channel timeout; the outcome is unknown, not failed.
    assert paid.payment_status == "UNKNOWN"
    payment = get_payment(suite, paid.payment_id)
    assert status_name(payment) == "UNKNOWN"
    assert history(payment) == [("INIT", "PROCESSING"), ("PROCESSING", "UNKNOWN")]

    # Queried on the schedule (the channel has no such trade) and only closed at the deadline.
    wait_order_status(suite, order.order_id, "CLOSED")
    payment = get_payment(suite, paid.payment_id)
    assert status_name(payment) == "FAILED" and payment.failure_code == "CLOSED"
    failed_at = payment.history[-1].at.ToDatetime()
    assert failed_at >= payment.expires_at.ToDatetime()
    assert payment.query_attempts >= 2 and exchanges(suite, paid.payment_id, "query") >= 3
    assert exchanges(suite, paid.payment_id, "close") >= 1
    # The channel keeps a closed tombstone, so the lost request can never take money later.
    assert simulator_trade(suite, paid.payment_id)["status"] == "CLOSED"
    check = wait_money_balanced(suite, {order.order_id})
    assert check.channel_taken == 0 and check.recorded_captured == 0


def test_success_after_timeout_is_found_by_query_when_the_notification_is_lost(suite: Suite) -> None:
    # The payer pays after the gateway gave up on the charge (5 s), so the payment is
    # UNKNOWN first; no notification ever comes, only the scheduled query finds the money.
    order = new_order(suite, subject="tea sim:success_after_timeout sim:drop_notify sim:pay_delay=7000")
    paid = pay(suite, order.order_id)
    assert paid.payment_status == "UNKNOWN"
    wait_order_status(suite, order.order_id, "PAID")
    payment = get_payment(suite, paid.payment_id)
    assert history(payment) == [("INIT", "PROCESSING"), ("PROCESSING", "UNKNOWN"), ("UNKNOWN", "SUCCEEDED")]
    assert simulator_trade(suite, paid.payment_id)["notifications_sent"] == 0
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", paid.payment_id) == 1
    check = wait_money_balanced(suite, {order.order_id})
    assert check.channel_taken == order.amount.minor


def test_success_after_timeout_with_its_notification_settles_once(suite: Suite) -> None:
    order = new_order(suite, subject="tea sim:success_after_timeout")
    paid = pay(suite, order.order_id)
    # The notification may settle the payment while the charge call still hangs.
    assert paid.payment_status in ("UNKNOWN", "SUCCEEDED")
    wait_order_status(suite, order.order_id, "PAID")
    assert status_name(get_payment(suite, paid.payment_id)) == "SUCCEEDED"
    time.sleep(1.0)
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", paid.payment_id) == 1
    wait_money_balanced(suite, {order.order_id})


def test_lost_notification_is_recovered_by_the_persisted_query_schedule(suite: Suite) -> None:
    order = new_order(suite, subject="tea sim:drop_notify")
    paid = pay(suite, order.order_id)
    assert paid.payment_status == "PROCESSING"
    wait_order_status(suite, order.order_id, "PAID")
    payment = get_payment(suite, paid.payment_id)
    assert history(payment) == [("INIT", "PROCESSING"), ("PROCESSING", "SUCCEEDED")]
    assert exchanges(suite, paid.payment_id, "query") >= 1
    assert simulator_trade(suite, paid.payment_id)["notifications_sent"] == 0
    wait_money_balanced(suite, {order.order_id})


def test_delayed_notification_after_the_query_changes_nothing(suite: Suite) -> None:
    order = new_order(suite, subject="tea sim:delay_notify=4000")
    paid = pay(suite, order.order_id)
    wait_order_status(suite, order.order_id, "PAID")
    # The query found it first; wait for the late notification to be acknowledged too.
    eventually(
        lambda: simulator_trade(suite, paid.payment_id)["notifications_acked"] >= 1,
        "the delayed notification to be delivered",
    )
    time.sleep(1.0)
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", paid.payment_id) == 1
    assert count_events(suite, ORDER_EVENTS, "order.paid", order.order_id) == 1
    wait_money_balanced(suite, {order.order_id})


def test_duplicated_notifications_change_state_once(suite: Suite) -> None:
    order = new_order(suite, subject="tea sim:duplicate_notify=4")
    paid = pay(suite, order.order_id)
    wait_order_status(suite, order.order_id, "PAID")
    eventually(
        lambda: simulator_trade(suite, paid.payment_id)["notifications_acked"] >= 4,
        "all four copies acknowledged",
    )
    time.sleep(1.0)
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", paid.payment_id) == 1
    assert count_events(suite, ORDER_EVENTS, "order.paid", order.order_id) == 1
    wait_money_balanced(suite, {order.order_id})


def test_notification_before_the_charge_answer_is_applied_once_and_the_stale_answer_is_ignored(
    suite: Suite,
) -> None:
    order = new_order(suite, subject="tea sim:out_of_order")
    paid = pay(suite, order.order_id)
    # The notification was acknowledged before the channel answered PENDING. Whichever
    # payment-core applies first, the stale answer never moves a SUCCEEDED payment back.
    assert simulator_trade(suite, paid.payment_id)["notifications_acked"] >= 1
    assert paid.payment_status in ("PROCESSING", "SUCCEEDED")
    wait_order_status(suite, order.order_id, "PAID")
    assert history(get_payment(suite, paid.payment_id)) == [
        ("INIT", "PROCESSING"),
        ("PROCESSING", "SUCCEEDED"),
    ]
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", paid.payment_id) == 1
    wait_money_balanced(suite, {order.order_id})


def test_decline_everywhere_fails_the_payment_and_reopens_the_order(suite: Suite) -> None:
    order = new_order(suite, subject="tea sim:decline")
    paid = pay(suite, order.order_id)
    assert paid.payment_status == "FAILED"
    payment = get_payment(suite, paid.payment_id)
    # Declined at the first channel, so it failed over; declined there too.
    reasons = [c.reason for c in payment.history]
    assert any("failing over" in r for r in reasons), reasons
    assert payment.failure_code == "RISK_DECLINED"
    wait_order_status(suite, order.order_id, "CREATED")
    check = wait_money_balanced(suite, {order.order_id})
    assert check.channel_taken == 0


def test_decline_at_one_channel_fails_over_to_the_other_and_is_paid_there(
    suite: Suite, channel_behaviour: None
) -> None:
    configure_channel(suite, "SIM-MERCHANT-1", decline_rate=1.0)
    orders = [new_order(suite) for _ in range(6)]
    paid = [pay(suite, o.order_id) for o in orders]
    for order in orders:
        wait_order_status(suite, order.order_id, "PAID")
    failed_over = 0
    for p in paid:
        payment = get_payment(suite, p.payment_id)
        assert payment.channel == "simulator_b"
        if any("failing over to simulator_b" in c.reason for c in payment.history):
            failed_over += 1
            assert history(payment) == [
                ("INIT", "PROCESSING"),
                ("PROCESSING", "PROCESSING"),
                ("PROCESSING", "SUCCEEDED"),
            ]
        trade = simulator_trade(suite, p.payment_id)
        assert trade["merchant"] == "SIM-MERCHANT-2"
    # Routing draws by weight (1:1), so some of six started at the declining channel.
    assert failed_over >= 1
    wait_money_balanced(suite, {o.order_id for o in orders})


def test_unpaid_order_expires_queried_once_more_then_closed_at_the_channel(suite: Suite) -> None:
    order = new_order(suite, subject="tea sim:no_pay", expires_in_s=4)
    paid = pay(suite, order.order_id)
    assert paid.payment_status == "PROCESSING"
    eventually(lambda: order_status(suite, order.order_id) == "CLOSED", "order closed", LONG_WAIT_S)
    closed = get_order(suite, order.order_id)
    assert closed.close_reason == "expired"
    payment = get_payment(suite, paid.payment_id)
    assert status_name(payment) == "FAILED" and payment.failure_code == "CLOSED"
    assert simulator_trade(suite, paid.payment_id)["status"] == "CLOSED"
    assert count_events(suite, ORDER_EVENTS, "order.closed", order.order_id) == 1
    assert exchanges(suite, paid.payment_id, "query") >= 1 and exchanges(suite, paid.payment_id, "close") >= 1
    check = wait_money_balanced(suite, {order.order_id})
    assert check.channel_taken == 0


def test_payer_paying_two_channels_gets_the_second_payment_refunded_automatically(suite: Suite) -> None:
    # The payer scans the QR code, switches to the wallet before paying, and pays both.
    order = new_order(suite, subject="tea sim:pay_delay=1500")
    first = pay(suite, order.order_id, method="qr")
    second = pay(suite, order.order_id, method="wallet")
    assert first.payment_id != second.payment_id
    wait_order_status(suite, order.order_id, "PAID")

    def settled() -> bool:
        found = payments_of(suite, order.order_id)
        return sorted(status_name(p) for p in found) == ["REFUNDED", "SUCCEEDED"]

    eventually(settled, "one payment kept, the duplicate refunded", LONG_WAIT_S)
    found = {p.payment_id: p for p in payments_of(suite, order.order_id)}
    kept = next(p for p in found.values() if status_name(p) == "SUCCEEDED")
    duplicate = next(p for p in found.values() if status_name(p) == "REFUNDED")
    assert get_order(suite, order.order_id).payment_id == kept.payment_id
    assert duplicate.duplicate_reason == f"ORDER_ALREADY_PAID by {kept.payment_id}"
    assert duplicate.auto_refund_id and duplicate.refunded_amount.minor == order.amount.minor
    assert list(get_order(suite, order.order_id).duplicate_payment_ids) == [duplicate.payment_id]
    assert count_events(suite, ORDER_EVENTS, "order.paid", order.order_id) == 1
    check = wait_money_balanced(suite, {order.order_id})
    assert check.channel_taken - check.channel_returned == order.amount.minor
