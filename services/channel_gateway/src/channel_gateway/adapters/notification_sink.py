"""Verified channel notifications onto channel.notifications, acknowledged by Kafka."""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

from google.protobuf.message import Message
from paykit.contracts.convert import money_to_proto, timestamp
from paykit.events.v1.channel_events_pb2 import (
    ChannelNotificationReceived,
    ChannelRefundNotificationReceived,
)
from paykit.messaging.envelope import pack
from paykit.messaging.publisher import AcknowledgedPublisher
from paykit.messaging.topics import CHANNEL_NOTIFICATIONS
from paykit.telemetry import headers_from_carrier

from channel_gateway.domain.channel import PaymentNotification, RefundNotification, VerifiedNotification

PAYMENT_NOTIFICATION_EVENT = "channel.notification_received"
REFUND_NOTIFICATION_EVENT = "channel.refund_notification_received"


def _status(succeeded: bool) -> str:
    return "SUCCEEDED" if succeeded else "FAILED"


def event_for(
    notification: VerifiedNotification, channel: str, order_id: str
) -> tuple[str, str, str, Message]:
    """(event type, aggregate type, aggregate id, payload) of a verified notification."""
    match notification:
        case PaymentNotification():
            payment = ChannelNotificationReceived(
                notification_id=notification.channel_notify_id,
                channel=channel,
                payment_id=notification.payment_id,
                order_id=order_id,
                channel_trade_no=notification.channel_trade_no,
                status=_status(notification.succeeded),
                amount=money_to_proto(notification.amount),
                occurred_at=timestamp(notification.occurred_at),
            )
            return PAYMENT_NOTIFICATION_EVENT, "payment", notification.payment_id, payment
        case RefundNotification():
            refund = ChannelRefundNotificationReceived(
                notification_id=notification.channel_notify_id,
                channel=channel,
                refund_id=notification.refund_id,
                payment_id=notification.payment_id,
                order_id=order_id,
                channel_refund_no=notification.channel_refund_no,
                status=_status(notification.succeeded),
                amount=money_to_proto(notification.amount),
                occurred_at=timestamp(notification.occurred_at),
            )
            return REFUND_NOTIFICATION_EVENT, "refund", notification.refund_id, refund
        case _:
            assert_never(notification)


class KafkaNotificationSink:
    def __init__(self, publisher: AcknowledgedPublisher) -> None:
        self._publisher = publisher

    def publish(
        self,
        notification: VerifiedNotification,
        channel: str,
        order_id: str,
        event_id: str,
        trace_headers: Mapping[str, str],
    ) -> None:
        event_type, aggregate_type, aggregate_id, payload = event_for(notification, channel, order_id)
        event = pack(
            topic=CHANNEL_NOTIFICATIONS,
            key=order_id,
            event_type=event_type,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            payload=payload,
            producer="channel-gateway",
            event_id=event_id,
        )
        self._publisher.publish(event.topic, event.key, event.value, headers_from_carrier(trace_headers))
