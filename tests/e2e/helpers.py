"""What the e2e tests share: clients, bounded waits, and readers of Kafka and the databases."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition
from paykit.common.v1.money_pb2 import Money
from paykit.db.engine import with_driver
from paykit.devstack.suite import Suite
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.order.v1 import order_pb2, order_pb2_grpc
from paykit.payment.v1 import payment_pb2, payment_pb2_grpc

WAIT_S = 30.0
T = TypeVar("T")


def eventually(fn: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


def orders(suite: Suite) -> order_pb2_grpc.OrderServiceStub:
    return order_pb2_grpc.OrderServiceStub(grpc.insecure_channel(suite.grpc_target("order")))


def payments(suite: Suite) -> payment_pb2_grpc.PaymentServiceStub:
    return payment_pb2_grpc.PaymentServiceStub(grpc.insecure_channel(suite.grpc_target("payment_core")))


def new_order(
    suite: Suite, minor: int = 1999, currency: str = "CNY", metadata: Any = None
) -> order_pb2.Order:
    return orders(suite).CreateOrder(
        order_pb2.CreateOrderRequest(
            merchant_id="m-e2e",
            merchant_order_no=f"e2e-{uuid.uuid4().hex[:12]}",
            amount=Money(minor=minor, currency=currency),
            subject="e2e",
        ),
        timeout=10,
        metadata=metadata,
    )


def pay(suite: Suite, order_id: str, metadata: Any = None) -> order_pb2.PayOrderResponse:
    return orders(suite).PayOrder(
        order_pb2.PayOrderRequest(order_id=order_id, method="qr"), timeout=30, metadata=metadata
    )


def order_status(suite: Suite, order_id: str) -> str:
    order = orders(suite).GetOrder(order_pb2.GetOrderRequest(order_id=order_id), timeout=10)
    return order_pb2.OrderStatus.Name(order.status).removeprefix("ORDER_STATUS_")


def payment_status(suite: Suite, payment_id: str) -> str:
    payment = payments(suite).GetPayment(payment_pb2.GetPaymentRequest(payment_id=payment_id), timeout=10)
    return payment_pb2.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_")


def wait_order_status(suite: Suite, order_id: str, status: str) -> None:
    eventually(lambda: order_status(suite, order_id) == status, f"order {order_id} to be {status}")


def events_on(suite: Suite, topic: str) -> list[tuple[str, Envelope]]:
    """Every (key, envelope) on `topic` right now, read from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": suite.kafka_bootstrap,
            "group.id": f"e2e-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        found: list[tuple[str, Envelope]] = []
        deadline = time.monotonic() + WAIT_S
        remaining = dict(ends)
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if msg.error() is not None:
                    continue
                env = Envelope()
                env.ParseFromString(msg.value())
                found.append(((msg.key() or b"").decode(), env))
                if msg.offset() + 1 >= remaining.get(msg.partition(), 0):
                    remaining.pop(msg.partition(), None)
        return found
    finally:
        consumer.close()


def count_events(suite: Suite, topic: str, event_type: str, aggregate_id: str) -> int:
    return sum(
        1 for _, e in events_on(suite, topic) if e.event_type == event_type and e.aggregate_id == aggregate_id
    )


def query(suite: Suite, service: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(with_driver(suite.database_urls[service]), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def simulator(suite: Suite, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        suite.simulator_url + path,
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def simulator_trade(suite: Suite, payment_id: str) -> dict[str, Any]:
    return next(t for t in simulator(suite, "/v1/admin/trades") if t["out_trade_no"] == payment_id)
