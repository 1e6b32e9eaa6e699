"""Publishing one message and waiting for Kafka's acknowledgement.

For the few places that must not answer before the event is durable in
Kafka (the channel webhook acknowledges the channel only after this).
Everything that changes our own state uses the outbox instead.
"""

from __future__ import annotations

import threading

from confluent_kafka import KafkaError, Message, Producer
from paykit.messaging.kafka_config import producer_config

PUBLISH_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.05


class PublishError(Exception):
    pass


class AcknowledgedPublisher:
    def __init__(self, bootstrap_servers: str, client_id: str) -> None:
        self._producer = Producer(producer_config(bootstrap_servers, client_id))
        self._stop = threading.Event()
        # One thread serves delivery callbacks for every caller.
        self._poller = threading.Thread(target=self._poll, name="publisher-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(POLL_INTERVAL_S)

    def publish(
        self,
        topic: str,
        key: str,
        value: bytes,
        headers: list[tuple[str, str | bytes | None]],
        timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        done = threading.Event()
        failure: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failure.append(str(err))
            done.set()

        self._producer.produce(topic, key=key.encode(), value=value, headers=headers, on_delivery=on_delivery)
        if not done.wait(timeout_s):
            raise PublishError(f"no acknowledgement from Kafka for {topic} within {timeout_s}s")
        if failure:
            raise PublishError(f"Kafka refused the message for {topic}: {failure[0]}")

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._poller.join(timeout_s)
        self._producer.flush(timeout_s)
