"""The JSON body merchants receive: the documented schema, stable across event types."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from notification.domain.payload import (
    API_VERSION,
    EventFacts,
    OrderFacts,
    RefundFacts,
    encode_payload,
)
from paykit.money import Money

AT = datetime(2026, 11, 1, 8, 30, 15, 123456, tzinfo=UTC)


def test_paid_order_payload_has_the_documented_shape() -> None:
    facts = EventFacts(
        event_id="evt_1",
        event_type="order.paid",
        merchant_id="m1",
        occurred_at=AT,
        order=OrderFacts("ord_1", "no-1", "PAID", Money(1999, "CNY")),
        payment_id="pay_1",
    )
    body = json.loads(encode_payload(facts))
    assert body == {
        "id": "evt_1",
        "type": "order.paid",
        "created": "2026-11-01T08:30:15.123Z",
        "api_version": API_VERSION,
        "data": {
            "order": {
                "id": "ord_1",
                "merchant_order_no": "no-1",
                "status": "PAID",
                "amount": {"minor": 1999, "currency": "CNY", "display": "19.99"},
                "refunded_total": None,
                "close_reason": None,
            },
            "payment_id": "pay_1",
            "refund": None,
        },
    }


def test_refund_payload_carries_the_refund_and_zero_decimal_currencies_display_whole() -> None:
    facts = EventFacts(
        event_id="evt_2",
        event_type="refund.failed",
        merchant_id="m1",
        occurred_at=AT,
        order=OrderFacts("ord_1"),
        payment_id="pay_1",
        refund=RefundFacts("rfd_1", Money(500, "JPY"), "FAILED", "NO_FUNDS", "the channel refused"),
    )
    refund = json.loads(encode_payload(facts))["data"]["refund"]
    assert refund == {
        "id": "rfd_1",
        "amount": {"minor": 500, "currency": "JPY", "display": "500"},
        "status": "FAILED",
        "failure_code": "NO_FUNDS",
        "failure_message": "the channel refused",
    }


def test_the_same_facts_encode_to_the_same_bytes() -> None:
    facts = EventFacts("evt_3", "order.closed", "m1", AT, OrderFacts("ord_3", close_reason="expired"))
    assert encode_payload(facts) == encode_payload(facts)
    assert json.loads(encode_payload(facts))["data"]["order"]["close_reason"] == "expired"
