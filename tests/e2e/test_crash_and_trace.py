"""A SIGKILL between commit and publish loses nothing; one trace spans every process."""

from __future__ import annotations

import json
import signal
import time

from opentelemetry import trace
from paykit.devstack.suite import Suite
from paykit.messaging.topics import ORDER_EVENTS, PAYMENT_EVENTS
from paykit.telemetry import inject_carrier, setup_tracing

from tests.e2e.helpers import (
    count_events,
    eventually,
    new_order,
    order_status,
    pay,
    query,
    wait_order_status,
)


def test_payment_core_killed_after_commit_before_publish_publishes_once_after_restart(
    suite: Suite, trace_file: object
) -> None:
    # Run payment-core without its relay: the notification's effect commits
    # (payment SUCCEEDED + outbox row) but nothing leaves for Kafka yet.
    base_env = {"PAYKIT_TRACE_FILE": str(trace_file), "LOG_LEVEL": "INFO"}
    suite.start_service("payment_core", {**base_env, "OUTBOX_RELAY_ENABLED": "false"})
    order = new_order(suite)
    paid = pay(suite, order.order_id)
    unsent = (
        "select count(*) from outbox where event_type='payment.succeeded' and sent_at is null "
        "and position(:p in encode(payload, 'escape')) > 0"
    )
    eventually(
        lambda: query(suite, "payment_core", unsent, p=paid.payment_id)[0][0] == 1,
        "payment.succeeded committed to the outbox, unsent",
    )
    assert order_status(suite, order.order_id) == "PAYING"

    suite.services["payment_core"].kill(signal.SIGKILL)
    suite.start_service("payment_core", base_env)

    wait_order_status(suite, order.order_id, "PAID")
    assert query(suite, "payment_core", unsent, p=paid.payment_id)[0][0] == 0
    assert count_events(suite, PAYMENT_EVENTS, "payment.succeeded", paid.payment_id) == 1
    time.sleep(0.5)
    assert count_events(suite, ORDER_EVENTS, "order.paid", order.order_id) == 1
    applied = query(
        suite,
        "order",
        "select count(*) from inbox where consumer='order.payment-events'"
        " and event_id in (select event_id from inbox)",
    )
    assert applied[0][0] >= 1


def test_one_trace_from_create_order_to_the_consumer_that_marks_it_paid(
    suite: Suite, trace_file: object
) -> None:
    setup_tracing("e2e-client")
    tracer = trace.get_tracer("e2e")
    with tracer.start_as_current_span("checkout") as checkout:
        metadata = tuple(inject_carrier().items())
        order = new_order(suite, metadata=metadata)
        pay(suite, order.order_id, metadata=metadata)
    trace_id = format(checkout.get_span_context().trace_id, "032x")
    wait_order_status(suite, order.order_id, "PAID")

    def spans_of_trace() -> list[dict[str, str]]:
        with open(str(trace_file), encoding="utf-8") as fh:
            return [s for s in map(json.loads, fh) if s["trace_id"] == trace_id]

    wanted = {
        ("order", "/paykit.order.v1.OrderService/CreateOrder"),
        ("order", "/paykit.order.v1.OrderService/PayOrder"),
        ("payment-core", "/paykit.payment.v1.PaymentService/CreatePayment"),
        ("channel-gateway", "/paykit.channel.v1.ChannelGateway/Charge"),
        ("payment-core", "consume channel.notification_received"),
        ("order", "consume payment.succeeded"),
    }
    try:
        eventually(
            lambda: wanted <= {(s["service"], s["name"]) for s in spans_of_trace()},
            "every hop's span in the checkout trace",
        )
    except AssertionError as exc:
        seen = {(s["service"], s["name"]) for s in spans_of_trace()}
        raise AssertionError(f"{exc}; missing {wanted - seen}; seen {sorted(seen)}") from exc
