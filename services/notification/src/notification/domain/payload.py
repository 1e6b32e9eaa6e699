"""The JSON body merchants receive: a stable, documented schema (README.md, "Payload").

Every key is always present (null when it does not apply), so a receiver can
parse every type with one model. Amounts are {"minor", "currency", "display"}:
minor units as an integer, never a float.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paykit.money import Money

API_VERSION = "2026-11-01"


@dataclass(frozen=True)
class OrderFacts:
    order_id: str
    merchant_order_no: str | None = None
    status: str | None = None
    amount: Money | None = None
    refunded_total: Money | None = None
    close_reason: str | None = None


@dataclass(frozen=True)
class RefundFacts:
    refund_id: str
    amount: Money
    status: str
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class EventFacts:
    """What a consumed event says, in the domain's words (the protobuf stops at the consumer)."""

    event_id: str
    event_type: str
    merchant_id: str
    occurred_at: datetime
    order: OrderFacts
    payment_id: str | None = None
    refund: RefundFacts | None = None
    # The W3C carrier of the span that consumed it; not part of the payload.
    trace_context: Mapping[str, str] | None = field(default=None, compare=False)


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def amount_json(amount: Money | None) -> dict[str, Any] | None:
    if amount is None:
        return None
    return {"minor": amount.minor, "currency": amount.currency, "display": amount.format()}


def payload_of(facts: EventFacts) -> dict[str, Any]:
    order = facts.order
    refund = facts.refund
    return {
        "id": facts.event_id,
        "type": facts.event_type,
        "created": rfc3339(facts.occurred_at),
        "api_version": API_VERSION,
        "data": {
            "order": {
                "id": order.order_id,
                "merchant_order_no": order.merchant_order_no,
                "status": order.status,
                "amount": amount_json(order.amount),
                "refunded_total": amount_json(order.refunded_total),
                "close_reason": order.close_reason,
            },
            "payment_id": facts.payment_id,
            "refund": None
            if refund is None
            else {
                "id": refund.refund_id,
                "amount": amount_json(refund.amount),
                "status": refund.status,
                "failure_code": refund.failure_code,
                "failure_message": refund.failure_message,
            },
        },
    }


def encode_payload(facts: EventFacts) -> bytes:
    """The exact bytes that are stored, signed and sent (every attempt sends the same bytes)."""
    return json.dumps(payload_of(facts), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
