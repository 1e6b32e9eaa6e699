"""make bench-notify: merchant webhook deliveries per second through the notification service.

Starts Postgres and Kafka (paykit.devstack, run dir .run/bench-notify; PAYKIT_POSTGRES_URL
and KAFKA_BOOTSTRAP_SERVERS are honoured), creates the topics and a fresh `notification`
database, and runs only the notification service as a real process (production settings,
except NOTIFICATION_ALLOW_INSECURE_URLS=true for the loopback receiver).

A real aiohttp merchant receiver runs in this process on its own thread and loop: it
verifies every signature with the service's published verify helper, records the receive
time per event id, counts duplicates and checks per-order ordering. MERCHANTS endpoints
are registered through gRPC RegisterEndpoint, then EVENTS `order.paid` envelopes are
produced straight onto order.events (keyed by order id; every ORDER_BURST_EVERY-th order
carries EVENTS_PER_BURST events, so per-order ordering is exercised). Measured from the
first produce to the last delivery. Writes bench/results/notify.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import psutil
from aiohttp import web
from confluent_kafka import Producer
from notification.domain.verify import verify
from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.devstack.fixtures import claim_run_dir
from paykit.devstack.kafka import ENV_BOOTSTRAP_SERVERS, acquire_kafka
from paykit.devstack.postgres import ENV_POSTGRES_URL, acquire_postgres, ensure_database
from paykit.devstack.suite import DATABASES, Suite, drop_database
from paykit.events.v1.order_events_pb2 import OrderPaid
from paykit.messaging.envelope import pack
from paykit.messaging.topics import ORDER_EVENTS, create_topics
from paykit.notification.v1 import notification_pb2, notification_pb2_grpc

EVENTS = int(os.environ.get("EVENTS", "20000"))
MERCHANTS = int(os.environ.get("MERCHANTS", "4"))
# Every ORDER_BURST_EVERY-th order is paid EVENTS_PER_BURST times (a replayed order.paid
# with a fresh event id each): the receiver must see them in produce order.
ORDER_BURST_EVERY = 4
EVENTS_PER_BURST = 3
WAIT_S = float(os.environ.get("WAIT_S", "300"))
TARGET_DELIVERIES_PER_S = 1_000
RSS_SAMPLE_S = 0.25
PROGRESS_EVERY_S = 5.0
RPC_TIMEOUT_S = 10.0
RECEIVER_START_TIMEOUT_S = 10.0
RUN_TAG = secrets.token_hex(4)
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Receipts:
    """What the merchant receiver saw; written by the receiver thread, read after the run."""

    secrets_by_merchant: dict[str, str] = field(default_factory=dict)
    # event id -> (order id, position of the event within its order)
    expected: dict[str, tuple[str, int]] = field(default_factory=dict)
    received_at: dict[str, float] = field(default_factory=dict)
    last_position: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    signature_failures: int = 0
    out_of_order: int = 0
    unknown: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        return len(self.received_at)


class Receiver:
    """aiohttp merchant receiver on 127.0.0.1, port 0, on its own thread and event loop."""

    def __init__(self, receipts: Receipts) -> None:
        self.receipts = receipts
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="merchant-receiver", daemon=True)
        self.cpu_s = 0.0

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(RECEIVER_START_TIMEOUT_S):
            raise RuntimeError("merchant receiver did not start")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(RECEIVER_START_TIMEOUT_S)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{merchant}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        if server is None or not server.sockets:
            raise RuntimeError("receiver has no socket")
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopped.wait()
        self.cpu_s = time.thread_time()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        receipts = self.receipts
        secret = receipts.secrets_by_merchant.get(request.match_info["merchant"], "")
        ok = verify(request.headers.get("Paykit-Signature", ""), body, [secret], at)
        event_id = json.loads(body)["id"]
        with receipts.lock:
            if not ok:
                receipts.signature_failures += 1
            if event_id in receipts.received_at:
                receipts.duplicates += 1
            else:
                receipts.received_at[event_id] = at
            where = receipts.expected.get(event_id)
            if where is None:
                receipts.unknown += 1
            else:
                order_id, position = where
                if position < receipts.last_position.get(order_id, -1):
                    receipts.out_of_order += 1
                receipts.last_position[order_id] = max(position, receipts.last_position.get(order_id, -1))
        return web.Response(status=200, text="ok")


def register_endpoints(target: str, receiver_port: int, receipts: Receipts) -> list[str]:
    merchants = [f"bench-{RUN_TAG}-m{i}" for i in range(MERCHANTS)]
    with grpc.insecure_channel(target) as channel:
        stub = notification_pb2_grpc.NotificationServiceStub(channel)
        for merchant in merchants:
            endpoint = stub.RegisterEndpoint(
                notification_pb2.RegisterEndpointRequest(
                    idempotency_key=f"bench-notify-{merchant}",
                    merchant_id=merchant,
                    url=f"http://127.0.0.1:{receiver_port}/hooks/{merchant}",
                    event_types=["order.paid"],
                ),
                timeout=RPC_TIMEOUT_S,
            )
            receipts.secrets_by_merchant[merchant] = endpoint.secret
    return merchants


def plan_events(merchants: list[str]) -> list[tuple[str, str, int]]:
    """(order id, merchant, position within the order) for EVENTS events, in produce order."""
    planned: list[tuple[str, str, int]] = []
    order = 0
    while len(planned) < EVENTS:
        per_order = EVENTS_PER_BURST if order % ORDER_BURST_EVERY == 0 else 1
        order_id = f"ord_bench{RUN_TAG}{order:010d}"
        merchant = merchants[order % len(merchants)]
        for position in range(min(per_order, EVENTS - len(planned))):
            planned.append((order_id, merchant, position))
        order += 1
    return planned


def produce(bootstrap: str, planned: list[tuple[str, str, int]], receipts: Receipts) -> dict[str, float]:
    """Every planned order.paid onto order.events; the produce time per event id."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    produced_at: dict[str, float] = {}
    amount = MoneyProto(minor=1999, currency="CNY")
    for n, (order_id, merchant, position) in enumerate(planned):
        paid = OrderPaid(
            order_id=order_id,
            merchant_id=merchant,
            merchant_order_no=f"A-{n}",
            payment_id=f"pay_bench{RUN_TAG}{n:010d}",
            amount=amount,
        )
        paid.paid_at.FromDatetime(datetime.now(UTC))
        event = pack(
            topic=ORDER_EVENTS,
            key=order_id,
            event_type="order.paid",
            aggregate_type="order",
            aggregate_id=order_id,
            payload=paid,
            producer="bench-notify",
        )
        with receipts.lock:
            receipts.expected[event.event_id] = (order_id, position)
        produced_at[event.event_id] = time.time()
        while True:
            try:
                producer.produce(event.topic, key=event.key, value=event.value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(RPC_TIMEOUT_S * 3)
    if remaining:
        raise RuntimeError(f"{remaining} events were not acknowledged by Kafka")
    return produced_at


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self._proc = psutil.Process(pid)
        self.peak_bytes = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                self.peak_bytes = max(self.peak_bytes, self._proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            self._done.wait(RSS_SAMPLE_S)

    def stop(self) -> None:
        self._done.set()
        self.join()


def wait_for_deliveries(receipts: Receipts, service_pid: int) -> bool:
    deadline = time.monotonic() + WAIT_S
    next_report = time.monotonic() + PROGRESS_EVERY_S
    while receipts.count() < EVENTS:
        now = time.monotonic()
        if now >= deadline:
            return False
        if not psutil.pid_exists(service_pid):
            raise RuntimeError("the notification service exited during the run")
        if now >= next_report:
            print(f"  ... {receipts.count()}/{EVENTS} delivered", flush=True)
            next_report = now + PROGRESS_EVERY_S
        time.sleep(0.05)
    return True


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def measure(suite: Suite) -> dict[str, Any]:
    receipts = Receipts()
    receiver = Receiver(receipts)
    receiver.start()
    try:
        service = suite.start_service("notification")
        merchants = register_endpoints(suite.grpc_target("notification"), receiver.port, receipts)
        planned = plan_events(merchants)
        sampler = RssSampler(service.pid)
        sampler.start()
        service_proc = psutil.Process(service.pid)
        cpu_before = sum(service_proc.cpu_times()[:2])
        bench_cpu_before = time.process_time()
        produced_at = produce(suite.kafka_bootstrap, planned, receipts)
        first_produce = min(produced_at.values())
        produce_s = max(produced_at.values()) - first_produce
        complete = wait_for_deliveries(receipts, service.pid)
        with receipts.lock:
            received = dict(receipts.received_at)
        last_delivery = max(received.values()) if received else time.time()
        elapsed_s = last_delivery - first_produce
        service_cpu_s = sum(service_proc.cpu_times()[:2]) - cpu_before
        bench_cpu_s = time.process_time() - bench_cpu_before
        sampler.stop()
    finally:
        receiver.stop()
    latencies_ms = [(at - produced_at[e]) * 1000 for e, at in received.items() if e in produced_at]
    return {
        "events": EVENTS,
        "deliveries": len(received),
        "complete": complete,
        "deliveries_per_s": round(len(received) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "latency_p50_ms": round(percentile(latencies_ms, 50), 1),
        "latency_p99_ms": round(percentile(latencies_ms, 99), 1),
        "latency_max_ms": round(max(latencies_ms, default=0.0), 1),
        "elapsed_s": round(elapsed_s, 2),
        "produce_s": round(produce_s, 2),
        "duplicates": receipts.duplicates,
        "signature_failures": receipts.signature_failures,
        "out_of_order": receipts.out_of_order,
        "unknown_events": receipts.unknown,
        "merchants": MERCHANTS,
        "orders": len({order_id for order_id, _, _ in planned}),
        "peak_rss_mb": round(sampler.peak_bytes / 2**20, 1),
        "service_cores_used": round(service_cpu_s / elapsed_s, 2) if elapsed_s > 0 else 0.0,
        # Receiver + producer share this process; well under 1.0 means the GIL did not cap them.
        "bench_process_cores_used": round(bench_cpu_s / elapsed_s, 2) if elapsed_s > 0 else 0.0,
        "receiver_thread_cpu_s": round(receiver.cpu_s, 2),
        "target_deliveries_per_s": TARGET_DELIVERIES_PER_S,
        "postgres": ENV_POSTGRES_URL if os.environ.get(ENV_POSTGRES_URL) else "private (.run/bench-notify)",
        "kafka": ENV_BOOTSTRAP_SERVERS
        if os.environ.get(ENV_BOOTSTRAP_SERVERS)
        else "private (.run/bench-notify)",
    }


def run() -> dict[str, Any]:
    run_dir, release = claim_run_dir("bench-notify")
    suite = Suite(run_dir)
    stops = []
    try:
        (run_dir / "logs").mkdir(exist_ok=True)
        postgres, stop_pg = acquire_postgres(run_dir)
        stops.append(stop_pg)
        kafka, stop_kafka = acquire_kafka(run_dir)
        stops.append(stop_kafka)
        suite.kafka_bootstrap = kafka.bootstrap_servers
        create_topics(suite.kafka_bootstrap)
        database = DATABASES["notification"]
        drop_database(postgres.admin_url, database)
        suite.database_urls["notification"] = ensure_database(postgres, database)
        try:
            return measure(suite)
        finally:
            # Only what this bench started, by pid (ServiceProcess.stop).
            suite.stop()
    finally:
        while stops:
            stops.pop()()
        release()


def main() -> int:
    if EVENTS < 1 or MERCHANTS < 1:
        print(f"EVENTS and MERCHANTS must be at least 1, got {EVENTS}, {MERCHANTS}", file=sys.stderr)
        return 2
    figures = run()
    out = ROOT / "bench" / "results" / "notify.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:<26} {value}")
    print(f"written to {out.relative_to(ROOT)}")
    sound = (
        figures["complete"]
        and figures["duplicates"] == 0
        and figures["signature_failures"] == 0
        and figures["out_of_order"] == 0
    )
    if not sound:
        print("deliveries incomplete, duplicated, badly signed or out of order", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
