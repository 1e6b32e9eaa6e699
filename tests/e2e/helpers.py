"""What the e2e tests share: clients, bounded waits, and readers of Kafka and the databases."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition
from paykit.common.v1.money_pb2 import Money
from paykit.db.engine import with_driver
from paykit.devstack.suite import Suite
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.money import Money as MoneyValue
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


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    """The error a call must end with; fails the test when it succeeds."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def orders(suite: Suite) -> order_pb2_grpc.OrderServiceStub:
    return order_pb2_grpc.OrderServiceStub(grpc.insecure_channel(suite.grpc_target("order")))


def payments(suite: Suite) -> payment_pb2_grpc.PaymentServiceStub:
    return payment_pb2_grpc.PaymentServiceStub(grpc.insecure_channel(suite.grpc_target("payment_core")))


def new_order(
    suite: Suite,
    minor: int = 1999,
    currency: str = "CNY",
    metadata: Any = None,
    subject: str = "e2e",
    expires_in_s: int = 0,
    merchant_id: str = "m-e2e",
) -> order_pb2.Order:
    """`subject` may carry the simulator's per-request directives, e.g. "tea sim:drop_notify"."""
    return orders(suite).CreateOrder(
        order_pb2.CreateOrderRequest(
            merchant_id=merchant_id,
            merchant_order_no=f"e2e-{uuid.uuid4().hex[:12]}",
            amount=Money(minor=minor, currency=currency),
            subject=subject,
            expires_in_s=expires_in_s,
        ),
        timeout=10,
        metadata=metadata,
    )


def pay(suite: Suite, order_id: str, metadata: Any = None, method: str = "qr") -> order_pb2.PayOrderResponse:
    return orders(suite).PayOrder(
        order_pb2.PayOrderRequest(order_id=order_id, method=method), timeout=30, metadata=metadata
    )


def get_order(suite: Suite, order_id: str) -> order_pb2.Order:
    return orders(suite).GetOrder(order_pb2.GetOrderRequest(order_id=order_id), timeout=10)


def get_payment(suite: Suite, payment_id: str) -> payment_pb2.Payment:
    return payments(suite).GetPayment(payment_pb2.GetPaymentRequest(payment_id=payment_id), timeout=10)


def payments_of(suite: Suite, order_id: str) -> list[payment_pb2.Payment]:
    reply = payments(suite).ListPayments(payment_pb2.ListPaymentsRequest(order_id=order_id), timeout=10)
    return list(reply.payments)


def refunds_of(suite: Suite, order_id: str) -> list[payment_pb2.Refund]:
    reply = payments(suite).ListRefunds(payment_pb2.ListRefundsRequest(order_id=order_id), timeout=10)
    return list(reply.refunds)


def refund_order(
    suite: Suite, order_id: str, minor: int, key: str, currency: str = "CNY", reason: str = "e2e"
) -> order_pb2.RefundOrderResponse:
    return orders(suite).RefundOrder(
        order_pb2.RefundOrderRequest(
            idempotency_key=key,
            order_id=order_id,
            amount=Money(minor=minor, currency=currency),
            reason=reason,
        ),
        timeout=30,
    )


def status_name(payment: payment_pb2.Payment) -> str:
    return payment_pb2.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_")


def refund_status_name(refund: payment_pb2.Refund) -> str:
    return payment_pb2.RefundStatus.Name(refund.status).removeprefix("REFUND_STATUS_")


def history(payment: payment_pb2.Payment | payment_pb2.Refund) -> list[tuple[str, str]]:
    return [(c.from_status, c.to_status) for c in payment.history]


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


def simulator_trades(suite: Suite, payment_ids: set[str]) -> list[dict[str, Any]]:
    return [t for t in simulator(suite, "/v1/admin/trades") if t["out_trade_no"] in payment_ids]


def configure_channel(suite: Suite, merchant: str | None = None, **settings: Any) -> Any:
    path = "/v1/admin/config" + (f"?merchant={merchant}" if merchant else "")
    return simulator(suite, path, settings)


DEFAULT_BEHAVIOUR: dict[str, Any] = {
    "pay_delay_ms": 50,
    "pay_rate": 1.0,
    "decline_rate": 0.0,
    "timeout_rate": 0.0,
    "success_after_timeout_rate": 0.0,
    "out_of_order_rate": 0.0,
    "notify_delay_ms": 0,
    "duplicate_notifications": 1,
    "drop_notifications": False,
    "refund_delay_ms": 50,
    "refund_decline_rate": 0.0,
    "payout_decline_rate": 0.0,
    "unavailable": False,
}


@dataclass(frozen=True)
class MoneyCheck:
    """Money taken at the channel against money the suite recorded, in minor units."""

    channel_taken: int
    channel_returned: int
    recorded_captured: int
    recorded_refunded: int

    @property
    def balanced(self) -> bool:
        return (self.channel_taken, self.channel_returned) == (self.recorded_captured, self.recorded_refunded)


def money_check(suite: Suite, order_ids: set[str]) -> MoneyCheck:
    """Compare, for these orders, what the simulator holds with what payment-core recorded."""
    rows = query(
        suite,
        "payment_core",
        "select payment_id, status, amount_minor, refunded_minor from payments where order_id = any(:ids)",
        ids=list(order_ids),
    )
    payment_ids = {r.payment_id for r in rows}
    captured = sum(
        r.amount_minor for r in rows if r.status in ("SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED")
    )
    refunded = sum(r.refunded_minor for r in rows)
    taken = returned = 0
    for trade in simulator_trades(suite, payment_ids):
        if trade["status"] != "SUCCESS":
            continue
        taken += MoneyValue.parse(trade["amount"], trade["currency"]).minor
        returned += sum(
            MoneyValue.parse(r["amount"], r["currency"]).minor
            for r in trade["refunds"]
            if r["status"] == "SUCCESS"
        )
    return MoneyCheck(taken, returned, captured, refunded)


def wait_money_balanced(suite: Suite, order_ids: set[str], timeout_s: float = WAIT_S) -> MoneyCheck:
    last: list[MoneyCheck] = []

    def balanced() -> bool:
        check = money_check(suite, order_ids)
        last[:] = [check]
        return check.balanced

    try:
        eventually(balanced, "channel money to equal recorded money", timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {last[0] if last else None}") from exc
    return last[0]
