"""Paying many orders through the running suite and measuring what happened.

Used by `make demo` (100 orders) and `make bench-e2e` (sustained for 60 s).
Latencies come from the client's clock: PayOrder is one RPC; create->PAID
runs from just before CreateOrder to the moment order.paid for that order
is read from Kafka by an independent consumer.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import grpc
from confluent_kafka import Consumer
from paykit.common.v1.money_pb2 import Money
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.messaging.topics import CHANNEL_NOTIFICATIONS, ORDER_EVENTS, PAYMENT_EVENTS
from paykit.order.v1 import order_pb2, order_pb2_grpc

RPC_DEADLINE_S = 30.0
PAID_WAIT_S = 60.0
WATCH_POLL_S = 0.05
WATCH_BATCH = 500
WATCH_JOIN_TIMEOUT_S = 30.0


@dataclass
class EventWatcher:
    """Reads the event topics from the beginning and notes what it sees, per order."""

    bootstrap: str
    group_id: str
    paid_at: dict[str, float] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group_id,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([ORDER_EVENTS, PAYMENT_EVENTS, CHANNEL_NOTIFICATIONS])
        # Join the group before any order is created, so the first orders'
        # create->PAID time does not include this watcher's own rebalance.
        deadline = time.monotonic() + WATCH_JOIN_TIMEOUT_S
        while not consumer.assignment() and time.monotonic() < deadline:
            for msg in consumer.consume(WATCH_BATCH, WATCH_POLL_S):
                if msg.error() is None:
                    self._note(msg.key(), msg.value())
        self._thread = threading.Thread(target=self._run, args=(consumer,), daemon=True)
        self._thread.start()

    def _run(self, consumer: Consumer) -> None:
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(WATCH_BATCH, WATCH_POLL_S):
                    if msg.error() is None:
                        self._note(msg.key(), msg.value())
        finally:
            consumer.close()

    def _note(self, key: bytes | None, value: bytes | None) -> None:
        env = Envelope()
        env.ParseFromString(value or b"")
        order_id = (key or b"").decode()
        with self._lock:
            # Every event on the topics is counted: the demo's broker is fresh.
            self.counts[env.event_type] += 1
            if env.event_type == "order.paid":
                self.paid_at.setdefault(order_id, time.monotonic())

    def paid_count(self, order_ids: set[str]) -> int:
        with self._lock:
            return len(order_ids & self.paid_at.keys())

    def paid_times(self, order_ids: set[str]) -> dict[str, float]:
        with self._lock:
            return {o: self.paid_at[o] for o in order_ids & self.paid_at.keys()}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


@dataclass
class LoadResult:
    created: dict[str, float] = field(default_factory=dict)
    pay_latency_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class RunSummary:
    """One load run: what was created, paid, and how long each step took."""

    orders: int
    paid: int
    elapsed_s: float
    pay_latency_s: list[float]
    create_to_paid_s: list[float]
    errors: dict[str, int]

    def pay_ms(self, pct: float) -> float:
        return percentile(self.pay_latency_s, pct) * 1000

    def to_paid_ms(self, pct: float) -> float:
        return percentile(self.create_to_paid_s, pct) * 1000


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _one_order(
    stub: order_pb2_grpc.OrderServiceStub, merchant: str, number: str, result: LoadResult, method: str
) -> None:
    t0 = time.monotonic()
    try:
        order = await stub.CreateOrder(
            order_pb2.CreateOrderRequest(
                merchant_id=merchant,
                merchant_order_no=number,
                amount=Money(minor=1999, currency="CNY"),
                subject="demo tea",
            ),
            timeout=RPC_DEADLINE_S,
        )
        result.created[order.order_id] = t0
        t1 = time.monotonic()
        await stub.PayOrder(
            order_pb2.PayOrderRequest(order_id=order.order_id, method=method), timeout=RPC_DEADLINE_S
        )
        result.pay_latency_s.append(time.monotonic() - t1)
    except grpc.aio.AioRpcError as exc:
        result.errors[exc.code().name] += 1


async def _pay_orders(
    order_target: str,
    count: int | None,
    duration_s: float | None,
    concurrency: int,
    merchant: str,
    method: str,
) -> LoadResult:
    result = LoadResult()
    started = time.monotonic()
    run_tag = f"{merchant}-{uuid.uuid4().hex[:8]}"
    next_number = 0
    async with grpc.aio.insecure_channel(order_target) as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)  # type: ignore[no-untyped-call]

        async def worker() -> None:
            nonlocal next_number
            while True:
                if count is not None and next_number >= count:
                    return
                if duration_s is not None and time.monotonic() - started >= duration_s:
                    return
                next_number += 1
                await _one_order(stub, merchant, f"{run_tag}-{next_number}", result, method)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


def run_orders(
    order_target: str,
    watcher: EventWatcher,
    *,
    count: int | None = None,
    duration_s: float | None = None,
    concurrency: int,
    merchant: str,
    method: str = "qr",
) -> RunSummary:
    """Pay `count` orders with `method` (its routing picks the channel), or as many as fit in
    `duration_s`, then wait until they are PAID."""
    started = time.monotonic()
    result = asyncio.run(_pay_orders(order_target, count, duration_s, concurrency, merchant, method))
    wanted = set(result.created)
    deadline = time.monotonic() + PAID_WAIT_S
    while time.monotonic() < deadline and watcher.paid_count(wanted) < len(wanted):
        time.sleep(0.1)
    paid_at = watcher.paid_times(wanted)
    return RunSummary(
        orders=len(result.created),
        paid=len(paid_at),
        elapsed_s=max(time.monotonic() - started, 1e-9),
        pay_latency_s=result.pay_latency_s,
        create_to_paid_s=[paid_at[o] - t0 for o, t0 in result.created.items() if o in paid_at],
        errors=dict(result.errors),
    )
