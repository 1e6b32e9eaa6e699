"""Each service's Prometheus endpoint, scraped over HTTP while real orders are paid.

The session suite is shared, so every counter is read before and after: the
test proves what its own N payments added. The suite gives every service
METRICS_PORT=0 and reads the bound port from its ready file (suite.metrics_url).
"""

from __future__ import annotations

import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from paykit.devstack.suite import Suite
from paykit.notification.v1 import notification_pb2 as pb
from paykit.notification.v1 import notification_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import eventually, get_payment, new_order, pay, wait_order_status

ORDERS = 5
SERVICES = ("order", "payment_core", "channel_gateway", "accounting", "notification")
RELAYS = {
    "order": "order-relay",
    "payment_core": "payment-core-relay",
    "accounting": "accounting-relay",
    "notification": "notification-relay",
}
ORDER = "paykit.order.v1.OrderService"
PAYMENT = "paykit.payment.v1.PaymentService"
ORDER_CONSUMER = "order.payment-events"
HANDLED = "paykit_grpc_server_handled_total"
SCRAPE_TIMEOUT_S = 5.0
# Outcome counters must hold still this long before the "before" reading.
QUIET_S = 1.5
WAIT_S = 60.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(suite: Suite, service: str) -> Samples:
    with urllib.request.urlopen(suite.metrics_url(service), timeout=SCRAPE_TIMEOUT_S) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str, **labels: str) -> list[dict[str, str]]:
    """The label sets of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return [dict(key) for n, key in samples if n == name and wanted <= key]


def outcomes(samples: Samples) -> dict[tuple[str, str], float]:
    return {
        (labels["channel"], labels["outcome"]): value(samples, "paykit_payment_outcomes_total", **labels)
        for labels in series(samples, "paykit_payment_outcomes_total")
    }


class Receiver(ThreadingHTTPServer):
    """A merchant's webhook endpoint on loopback that accepts every POST and counts them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Accept)
        self.received = 0


class _Accept(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        self.server.received += 1

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def register_endpoint(suite: Suite, merchant: str, url: str) -> None:
    stub = notification_pb2_grpc.NotificationServiceStub(
        grpc.insecure_channel(suite.grpc_target("notification"))
    )
    stub.RegisterEndpoint(
        pb.RegisterEndpointRequest(
            idempotency_key=f"reg-{uuid.uuid4().hex}",
            merchant_id=merchant,
            url=url,
            event_types=["order.paid"],
        ),
        timeout=10,
    )


def quiet_outcomes(suite: Suite) -> Samples:
    """A payment-core reading taken once its outcome counters hold still (earlier tests' stragglers)."""
    last = scrape(suite, "payment_core")
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        time.sleep(QUIET_S)
        now = scrape(suite, "payment_core")
        if outcomes(now) == outcomes(last):
            return now
        last = now
    raise AssertionError("payment-core's outcome counters never held still")


def test_paying_orders_moves_each_services_counters_by_exactly_what_was_paid(
    suite: Suite, receiver: Receiver
) -> None:
    merchant = f"m-metrics-{uuid.uuid4().hex[:8]}"
    register_endpoint(suite, merchant, f"http://127.0.0.1:{receiver.server_port}/hook")
    before = {name: scrape(suite, name) for name in SERVICES}
    before["payment_core"] = quiet_outcomes(suite)

    paid = []
    for _ in range(ORDERS):
        order = new_order(suite, merchant_id=merchant)
        paid.append((order.order_id, pay(suite, order.order_id).payment_id))
    for order_id, _ in paid:
        wait_order_status(suite, order_id, "PAID")
    channels = [get_payment(suite, payment_id).channel for _, payment_id in paid]
    eventually(lambda: receiver.received >= ORDERS, "the merchant to receive every order.paid", WAIT_S)

    after: dict[str, Samples] = {}

    def delta(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    # payment-core: succeeded by channel, exactly ours (read until the last commit is counted).
    expected = {(c, "succeeded"): float(channels.count(c)) for c in set(channels)}

    def outcomes_moved() -> dict[tuple[str, str], float]:
        after.update((name, scrape(suite, name)) for name in SERVICES)
        old, new = outcomes(before["payment_core"]), outcomes(after["payment_core"])
        return {key: new[key] - old.get(key, 0.0) for key in new if new[key] != old.get(key, 0.0)}

    eventually(
        lambda: outcomes_moved() == expected, f"payment outcomes to move by exactly {expected}", WAIT_S
    )

    # gRPC: every call we made, under OK, on the server that answered it.
    ok = {"grpc_code": "OK"}
    grpc_moves = {
        "order CreateOrder": delta("order", HANDLED, grpc_service=ORDER, grpc_method="CreateOrder", **ok),
        "order PayOrder": delta("order", HANDLED, grpc_service=ORDER, grpc_method="PayOrder", **ok),
        "payment-core CreatePayment": delta(
            "payment_core", HANDLED, grpc_service=PAYMENT, grpc_method="CreatePayment", **ok
        ),
    }
    assert grpc_moves == {k: float(ORDERS) for k in grpc_moves}
    timed = delta(
        "order", "paykit_grpc_server_handling_seconds_count", grpc_service=ORDER, grpc_method="PayOrder"
    )
    assert timed == ORDERS

    # Outbox relays: backlog and age gauges exist; the events were published.
    for service, relay in RELAYS.items():
        assert series(after[service], "paykit_outbox_unsent_events", relay=relay), service
        assert series(after[service], "paykit_outbox_oldest_unsent_age_seconds", relay=relay), service
    published = delta(
        "payment_core",
        "paykit_outbox_published_events_total",
        relay="payment-core-relay",
        topic="payment.events",
    )
    assert published >= 2 * ORDERS  # payment.created and payment.succeeded of each

    # Consumers: order applied each payment.succeeded; lag per partition is exported.
    applied = delta(
        "order",
        "paykit_consumer_messages_total",
        consumer=ORDER_CONSUMER,
        topic="payment.events",
        outcome="applied",
    )
    assert applied >= ORDERS
    lag = eventually(
        lambda: series(scrape(suite, "order"), "paykit_consumer_lag_messages", consumer=ORDER_CONSUMER),
        "order's consumer lag per partition",
        WAIT_S,
    )

    # notification: a delivered attempt per order.paid to our endpoint (others may deliver too).
    delivered = delta("notification", "paykit_webhook_delivery_attempts_total", outcome="delivered")
    assert delivered >= ORDERS
    assert series(after["notification"], "paykit_webhook_delivery_attempts_total", outcome="dead")

    # payment-core's stuck gauge and accounting's trial balance are measured.
    assert series(after["payment_core"], "paykit_payments_stuck", state="processing")
    trial_name = "paykit_ledger_trial_balance_difference_minor"
    eventually(
        lambda: series(scrape(suite, "accounting"), trial_name, currency="CNY"),
        "accounting to report the CNY trial balance",
        WAIT_S,
    )
    trial = value(scrape(suite, "accounting"), trial_name, currency="CNY")
    assert trial == 0.0

    ports = ", ".join(f"{n}:{suite.services[n].info['metrics_port']}" for n in SERVICES)
    print(
        f"\nmetrics e2e: {ORDERS} orders paid; payment-core outcomes moved {expected}; gRPC OK {grpc_moves}; "
        f"payment.events published +{published:.0f}; order applied +{applied:.0f} "
        f"(lag on {len(lag)} partitions); webhooks delivered +{delivered:.0f}; "
        f"trial balance CNY difference {trial:.0f}; "
        f"scraped over HTTP at {ports}"
    )
