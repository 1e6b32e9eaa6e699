"""channel.notifications -> payment and refund state, inside the consumer loop's transaction."""

from __future__ import annotations

from paykit.contracts.convert import from_timestamp, money_from_proto
from paykit.events.v1.channel_events_pb2 import (
    ChannelNotificationReceived,
    ChannelRefundNotificationReceived,
)
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.messaging.envelope import unpack
from sqlalchemy.orm import Session

from payment_core.domain.payment import ChannelResult
from payment_core.domain.refund import RefundAnswer, RefundResult
from payment_core.service_layer import payments, refunds
from payment_core.service_layer.unit_of_work import SessionTx

CONSUMER_NAME = "payment-core.channel-notifications"
EVENT_TYPES = ("channel.notification_received", "channel.refund_notification_received")


def handle_channel_notification(session: Session, envelope: Envelope) -> None:
    match envelope.event_type:
        case "channel.notification_received":
            note = unpack(envelope, ChannelNotificationReceived)
            result = ChannelResult(
                succeeded=note.status == "SUCCEEDED",
                amount=money_from_proto(note.amount, "amount"),
                channel_trade_no=note.channel_trade_no,
                occurred_at=from_timestamp(note.occurred_at),
                failure_code="" if note.status == "SUCCEEDED" else note.status,
                channel=note.channel,
            )
            payments.apply_notification(SessionTx(session), note.payment_id, result, note.notification_id)
        case "channel.refund_notification_received":
            refund_note = unpack(envelope, ChannelRefundNotificationReceived)
            succeeded = refund_note.status == "SUCCEEDED"
            refund_result = RefundResult(
                answer=RefundAnswer.SUCCEEDED if succeeded else RefundAnswer.FAILED,
                channel_refund_no=refund_note.channel_refund_no,
                amount=money_from_proto(refund_note.amount, "amount"),
                occurred_at=from_timestamp(refund_note.occurred_at),
                failure_code="" if succeeded else refund_note.status,
            )
            refunds.apply_result(
                SessionTx(session), refund_note.refund_id, refund_result, refund_note.notification_id
            )
        case _:
            pass
