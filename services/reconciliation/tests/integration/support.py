"""Building payment.events / refund.events envelopes as payment-core publishes them, producing
them on a topic, and running the capture as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from confluent_kafka import Producer
from google.protobuf.message import Message
from paykit.common.v1.money_pb2 import Money
from paykit.contracts.convert import timestamp
from paykit.events.v1.payment_events_pb2 import PaymentFailed, PaymentSucceeded
from paykit.events.v1.refund_events_pb2 import RefundCreated, RefundFailed, RefundSucceeded
from paykit.ids import IdKind, new_id
from paykit.messaging.envelope import OutgoingEvent, pack
from paykit.messaging.kafka_config import producer_config

PRODUCE_TIMEOUT_S = 30


@dataclass(frozen=True)
class Produced(OutgoingEvent):
    """An event as the outbox holds it, plus the payment or refund id it is about."""

    aggregate_id: str = ""


def _event(
    topic: str, event_type: str, aggregate: str, aggregate_id: str, order_id: str, payload: Message,
    event_id: str | None = None, occurred_at: datetime | None = None,
) -> Produced:  # fmt: skip
    event = pack(
        topic=topic,
        key=order_id,
        event_type=event_type,
        aggregate_type=aggregate,
        aggregate_id=aggregate_id,
        payload=payload,
        producer="payment-core",
        event_id=event_id,
        occurred_at=occurred_at,
    )
    return Produced(**vars(event), aggregate_id=aggregate_id)


def payment_succeeded(
    topic: str,
    *,
    payment_id: str | None = None,
    channel: str = "alipay",
    minor: int = 1999,
    currency: str = "CNY",
    at: datetime,
    trade_no: str | None = None,
    event_id: str | None = None,
    duplicate_reason: str = "",
) -> Produced:
    payment_id = payment_id or new_id(IdKind.PAYMENT)
    order_id = f"ord_for_{payment_id}"
    payload = PaymentSucceeded(
        payment_id=payment_id,
        order_id=order_id,
        merchant_id="m_recon",
        amount=Money(minor=minor, currency=currency),
        channel=channel,
        channel_trade_no=trade_no if trade_no is not None else f"T{payment_id[-10:]}",
        succeeded_at=timestamp(at),
        duplicate_reason=duplicate_reason,
    )
    return _event(topic, "payment.succeeded", "payment", payment_id, order_id, payload, event_id, at)


def payment_failed(
    topic: str, *, payment_id: str, channel: str = "alipay", minor: int = 1999, at: datetime,
    failure_code: str = "DECLINED",
) -> Produced:  # fmt: skip
    order_id = f"ord_for_{payment_id}"
    payload = PaymentFailed(
        payment_id=payment_id,
        order_id=order_id,
        merchant_id="m_recon",
        amount=Money(minor=minor, currency="CNY"),
        channel=channel,
        failure_code=failure_code,
        failure_message="declined by the channel",
    )
    return _event(topic, "payment.failed", "payment", payment_id, order_id, payload, None, at)


def refund_created(
    topic: str, *, refund_id: str, payment_id: str, channel: str = "alipay", minor: int = 500, at: datetime
) -> Produced:
    order_id = f"ord_for_{payment_id}"
    payload = RefundCreated(
        refund_id=refund_id,
        payment_id=payment_id,
        order_id=order_id,
        merchant_id="m_recon",
        amount=Money(minor=minor, currency="CNY"),
        reason="customer asked",
        channel=channel,
    )
    return _event(topic, "refund.created", "refund", refund_id, order_id, payload, None, at)


def refund_succeeded(
    topic: str, *, refund_id: str, payment_id: str, channel: str = "alipay", minor: int = 500, at: datetime
) -> Produced:
    order_id = f"ord_for_{payment_id}"
    payload = RefundSucceeded(
        refund_id=refund_id,
        payment_id=payment_id,
        order_id=order_id,
        merchant_id="m_recon",
        amount=Money(minor=minor, currency="CNY"),
        payment_refunded_total=Money(minor=minor, currency="CNY"),
        channel=channel,
        channel_refund_no=f"R{refund_id[-10:]}",
        succeeded_at=timestamp(at),
    )
    return _event(topic, "refund.succeeded", "refund", refund_id, order_id, payload, None, at)


def refund_failed(topic: str, *, refund_id: str, payment_id: str, minor: int = 500, at: datetime) -> Produced:
    order_id = f"ord_for_{payment_id}"
    payload = RefundFailed(
        refund_id=refund_id,
        payment_id=payment_id,
        order_id=order_id,
        merchant_id="m_recon",
        amount=Money(minor=minor, currency="CNY"),
        failure_code="REFUND_REFUSED",
        failure_message="refused",
    )
    return _event(topic, "refund.failed", "refund", refund_id, order_id, payload, None, at)


def produce(
    bootstrap: str, events: Iterable[OutgoingEvent], *, raw: Iterable[tuple[str, bytes]] = ()
) -> None:
    """Publish envelopes (keyed by order id, as payment-core does) and raw values; wait for acks."""
    # The suite's own producer settings (lz4-compressed batches, idempotent): what the capture reads.
    producer = Producer(producer_config(bootstrap, "recontest-producer"))
    for event in events:
        producer.produce(event.topic, key=event.key.encode(), value=event.value)
    for topic, value in raw:
        producer.produce(topic, key=b"poison", value=value)
    remaining = producer.flush(PRODUCE_TIMEOUT_S)
    if remaining:
        raise RuntimeError(f"{remaining} test events not acknowledged by Kafka")


# -- the capture as a process ------------------------------------------------------------

CAPTURE_READY_TIMEOUT_S = 60.0
CAPTURE_STOP_TIMEOUT_S = 30.0


class CaptureProcess:
    """`python -m reconciliation.capture` with the given environment, waited for by its ready file."""

    def __init__(self, env: dict[str, str], run_dir: Path, name: str) -> None:
        self.env = env
        self.ready_file = run_dir / f"{name}.ready.json"
        self.log_file = run_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> CaptureProcess:
        self.ready_file.unlink(missing_ok=True)
        with self.log_file.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "reconciliation.capture", "serve"],
                env={**os.environ, **self.env, "READY_FILE": str(self.ready_file)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + CAPTURE_READY_TIMEOUT_S
        while not self.ready_file.exists():
            if self.popen.poll() is not None:
                raise RuntimeError(f"capture exited with {self.popen.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"capture not ready after {CAPTURE_READY_TIMEOUT_S}s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no batch finished, no offset committed, nothing flushed."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(CAPTURE_STOP_TIMEOUT_S)

    def stop(self) -> int:
        """SIGTERM: the batch in hand finishes and the acked offsets are committed."""
        if self.popen is None:
            return 0
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(CAPTURE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return int(self.popen.returncode)
