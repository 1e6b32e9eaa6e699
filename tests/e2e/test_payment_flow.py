"""An order paid through every service, against real Postgres, Kafka, gRPC and HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from channel_gateway.adapters.connectors.simulator import transformers
from paykit.devstack.suite import Suite
from paykit.messaging.topics import ORDER_EVENTS, PAYMENT_EVENTS

from tests.e2e.helpers import (
    count_events,
    eventually,
    get_payment,
    new_order,
    pay,
    payment_status,
    query,
    simulator,
    simulator_trade,
    wait_order_status,
)


def test_order_paid_end_to_end_with_exactly_one_payment_succeeded_event(suite: Suite) -> None:
    order = new_order(suite)
    paid = pay(suite, order.order_id)
    assert paid.payment_status == "PROCESSING"
    assert paid.pay_url.startswith("simpay://qr/")
    wait_order_status(suite, order.order_id, "PAID")
    assert payment_status(suite, paid.payment_id) == "SUCCEEDED"
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", paid.payment_id) == 1
    assert count_events(suite, ORDER_EVENTS, "order.paid", order.order_id) == 1
    changes = query(
        suite,
        "payment_core",
        "select from_status, to_status from payment_state_changes where payment_id=:p order by id",
        p=paid.payment_id,
    )
    assert [tuple(c) for c in changes] == [("INIT", "PROCESSING"), ("PROCESSING", "SUCCEEDED")]


def test_same_notification_delivered_five_times_changes_state_once(
    suite: Suite, channel_behaviour: None
) -> None:
    simulator(suite, "/v1/admin/config", {"duplicate_notifications": 5})
    order = new_order(suite)
    paid = pay(suite, order.order_id)
    eventually(
        lambda: simulator_trade(suite, paid.payment_id)["notifications_acked"] == 5,
        "the channel to have its 5 notifications acknowledged",
    )
    wait_order_status(suite, order.order_id, "PAID")
    published = query(
        suite,
        "channel_gateway",
        "select verdict, published_event_id from notifications where payment_id=:p",
        p=paid.payment_id,
    )
    assert len(published) == 5
    assert {row.verdict for row in published} == {"PUBLISHED"}
    assert len({row.published_event_id for row in published}) == 1, "one channel notification, one event id"
    time.sleep(1.0)  # let any duplicate, were there one, reach payment-core
    changes = query(
        suite,
        "payment_core",
        "select count(*) from payment_state_changes where payment_id=:p and to_status='SUCCEEDED'",
        p=paid.payment_id,
    )
    assert changes[0][0] == 1
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", paid.payment_id) == 1


# The suite's channels are the simulator's merchant accounts.
MERCHANT_OF_CHANNEL = {"simulator": "SIM-MERCHANT-1", "simulator_b": "SIM-MERCHANT-2"}


def _post_notification(suite: Suite, body: dict[str, object], key: bytes) -> tuple[int, str]:
    """Post as the channel the payment was routed to would."""
    raw = json.dumps(body).encode()
    channel = get_payment(suite, str(body["out_trade_no"])).channel
    path = f"/webhooks/{channel}"
    merchant = MERCHANT_OF_CHANNEL[channel]
    headers = transformers.auth_headers(merchant, key, "POST", path, raw, int(time.time()))
    url = suite.webhook_url.rsplit("/webhooks/", 1)[0] + path
    request = urllib.request.Request(url, data=raw, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _unpaid_payment(suite: Suite) -> tuple[str, str]:
    simulator(suite, "/v1/admin/config", {"drop_notifications": True})
    order = new_order(suite)
    paid = pay(suite, order.order_id)
    return order.order_id, paid.payment_id


def _notification(
    payment_id: str, amount: str, currency: str = "CNY", notify_id: str = ""
) -> dict[str, object]:
    return {
        "notify_id": notify_id or f"N-{payment_id}-{amount}-{currency}",
        "trade_no": "SIMFORGED",
        "out_trade_no": payment_id,
        "status": "SUCCESS",
        "amount": amount,
        "currency": currency,
        "paid_at": "2026-11-25T10:00:00+00:00",
    }


def test_forged_notification_is_rejected_stored_and_changes_nothing(
    suite: Suite, channel_behaviour: None
) -> None:
    _order_id, payment_id = _unpaid_payment(suite)
    status, body = _post_notification(suite, _notification(payment_id, "19.99"), b"not-the-channel-key")
    assert (status, body) == (400, "fail")
    rows = query(
        suite,
        "channel_gateway",
        "select verdict, reject_reason from notifications where payment_id is null and body like :b",
        b=f"%{payment_id}%",
    )
    assert [(r.verdict, r.reject_reason) for r in rows] == [("REJECTED", "signature does not match")]
    time.sleep(0.5)
    assert payment_status(suite, payment_id) == "PROCESSING"
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", payment_id) == 0


@pytest.mark.parametrize(("amount", "currency"), [("0.01", "CNY"), ("19.99", "USD")])
def test_notification_with_another_amount_or_currency_is_flagged_never_success(
    suite: Suite, channel_behaviour: None, amount: str, currency: str
) -> None:
    _order_id, payment_id = _unpaid_payment(suite)
    status, body = _post_notification(
        suite, _notification(payment_id, amount, currency), suite.simulator_secret.encode()
    )
    assert (status, body) == (
        200,
        "success",
    )  # the channel's message is authentic; its content is what is wrong
    eventually(
        lambda: query(
            suite,
            "payment_core",
            "select reason from payment_flags where payment_id=:p",
            p=payment_id,
        ),
        "the payment to be flagged",
    )
    flags = query(suite, "payment_core", "select reason from payment_flags where payment_id=:p", p=payment_id)
    assert [f.reason for f in flags] == ["FLAGGED_AMOUNT_MISMATCH"]
    assert payment_status(suite, payment_id) == "PROCESSING"
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", payment_id) == 0
    assert count_events(suite, PAYMENT_EVENTS, "payment.flagged", payment_id) == 1


def test_notification_with_inexact_amount_is_rejected_as_malformed(
    suite: Suite, channel_behaviour: None
) -> None:
    _, payment_id = _unpaid_payment(suite)
    status, _ = _post_notification(
        suite, _notification(payment_id, "19.999"), suite.simulator_secret.encode()
    )
    assert status == 400
    rows = query(
        suite,
        "channel_gateway",
        "select verdict, reject_reason from notifications where body like :b",
        b=f"%{payment_id}%19.999%",
    )
    assert len(rows) == 1 and rows[0].verdict == "REJECTED"
    assert "amount in wrong format" in rows[0].reject_reason
    assert payment_status(suite, payment_id) == "PROCESSING"
