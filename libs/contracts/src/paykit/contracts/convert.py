"""Conversions between protobuf wire types and domain values, used at the edges only."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.errors import InvalidArgument
from paykit.money import AmountError, CurrencyError, Money


def money_to_proto(amount: Money) -> MoneyProto:
    return MoneyProto(minor=amount.minor, currency=amount.currency)


def money_from_proto(message: MoneyProto, field: str) -> Money:
    """A Money from the wire; a bad currency or an impossible amount is INVALID_ARGUMENT naming the field."""
    if not message.currency:
        raise InvalidArgument(f"{field}.currency", "is required (an ISO 4217 code such as CNY)")
    try:
        return Money(message.minor, message.currency)
    except CurrencyError as exc:
        raise InvalidArgument(f"{field}.currency", str(exc)) from exc
    except AmountError as exc:
        # Beyond what any Money may hold (10**15 minor units): garbage, not a payment.
        raise InvalidArgument(f"{field}.minor", str(exc)) from exc


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)
