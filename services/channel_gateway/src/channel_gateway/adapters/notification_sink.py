"""Verified channel notifications onto channel.notifications, acknowledged by Kafka."""

from __future__ import annotations

from collections.abc import Mapping

from paykit.contracts.convert import money_to_proto, timestamp
from paykit.events.v1.channel_events_pb2 import ChannelNotificationReceived
from paykit.messaging.envelope import pack
from paykit.messaging.publisher import AcknowledgedPublisher
from paykit.messaging.topics import CHANNEL_NOTIFICATIONS
from paykit.telemetry import headers_from_carrier

from channel_gateway.domain.channel import VerifiedNotification


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
        payload = ChannelNotificationReceived(
            notification_id=notification.channel_notify_id,
            channel=channel,
            payment_id=notification.payment_id,
            order_id=order_id,
            channel_trade_no=notification.channel_trade_no,
            status="SUCCEEDED" if notification.succeeded else "FAILED",
            amount=money_to_proto(notification.amount),
            occurred_at=timestamp(notification.occurred_at),
        )
        event = pack(
            topic=CHANNEL_NOTIFICATIONS,
            key=order_id,
            event_type="channel.notification_received",
            aggregate_type="payment",
            aggregate_id=notification.payment_id,
            payload=payload,
            producer="channel-gateway",
            event_id=event_id,
        )
        self._publisher.publish(event.topic, event.key, event.value, headers_from_carrier(trace_headers))
