"""Wrapping domain events in the protobuf Envelope, and unwrapping them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.ids import IdKind, new_id

M = TypeVar("M", bound=Message)


class PoisonMessage(Exception):
    """A Kafka message that can never be processed (undecodable, wrong payload type)."""


@dataclass(frozen=True)
class OutgoingEvent:
    """An event ready for the outbox: where it goes, its key, its bytes and identity."""

    topic: str
    key: str
    event_id: str
    event_type: str
    value: bytes


def pack(
    *,
    topic: str,
    key: str,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: Message,
    producer: str,
    schema_version: int = 1,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> OutgoingEvent:
    envelope = Envelope(
        event_id=event_id or new_id(IdKind.EVENT),
        event_type=event_type,
        schema_version=schema_version,
        aggregate_id=aggregate_id,
        aggregate_type=aggregate_type,
        producer=producer,
    )
    envelope.occurred_at.FromDatetime(occurred_at or datetime.now(UTC))
    envelope.payload.Pack(payload)
    return OutgoingEvent(
        topic=topic,
        key=key,
        event_id=envelope.event_id,
        event_type=event_type,
        value=envelope.SerializeToString(deterministic=True),
    )


def decode_envelope(value: bytes | None) -> Envelope:
    if not value:
        raise PoisonMessage("empty message value")
    envelope = Envelope()
    try:
        envelope.ParseFromString(value)
    except DecodeError as exc:
        raise PoisonMessage(f"not an Envelope: {exc}") from exc
    if not envelope.event_id or not envelope.event_type:
        raise PoisonMessage("envelope without event_id or event_type")
    return envelope


def unpack(envelope: Envelope, message_type: type[M]) -> M:
    payload = message_type()
    if not envelope.payload.Unpack(payload):
        raise PoisonMessage(
            f"{envelope.event_type} carries {envelope.payload.TypeName()}, "
            f"expected {payload.DESCRIPTOR.full_name}"
        )
    return payload
