"""channel.notifications -> payment state, inside the consumer loop's transaction."""

from __future__ import annotations

from paykit.contracts.convert import from_timestamp, money_from_proto
from paykit.events.v1.channel_events_pb2 import ChannelNotificationReceived
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.messaging.envelope import unpack
from sqlalchemy.orm import Session

from payment_core.domain.payment import ChannelResult
from payment_core.service_layer import services
from payment_core.service_layer.unit_of_work import SessionTx

CONSUMER_NAME = "payment-core.channel-notifications"
EVENT_TYPES = ("channel.notification_received",)


def handle_channel_notification(session: Session, envelope: Envelope) -> None:
    if envelope.event_type != "channel.notification_received":
        return
    note = unpack(envelope, ChannelNotificationReceived)
    result = ChannelResult(
        succeeded=note.status == "SUCCEEDED",
        amount=money_from_proto(note.amount, "amount"),
        channel_trade_no=note.channel_trade_no,
        occurred_at=from_timestamp(note.occurred_at),
        failure_code="" if note.status == "SUCCEEDED" else note.status,
    )
    services.apply_notification(SessionTx(session), note.payment_id, result, note.notification_id)
