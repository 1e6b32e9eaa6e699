"""The delivery worker against real PostgreSQL and real merchant receivers on 127.0.0.1:
retries, ordering, replays, isolation from a hanging endpoint, redirects, truncation,
the circuit breaker and Redeliver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from aiohttp import web
from notification.adapters.http_sender import RESPONSE_MAX_BYTES, WebhookSender
from notification.domain.breaker import BreakerPolicy
from notification.domain.delivery import AttemptResult, RetrySchedule
from notification.domain.verify import verify
from notification.service_layer import deliveries
from notification.service_layer.dispatch import Dispatcher, DispatchPolicy
from notification.service_layer.unit_of_work import UowFactory
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from paykit.errors import FailedPrecondition, NotFound
from paykit.events.v1.notification_events_pb2 import NotificationDead, NotificationDelivered
from paykit.ids import IdKind, new_id
from paykit.messaging.envelope import decode_envelope, unpack
from paykit.telemetry import inject_carrier, setup_tracing
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from .support import (
    Receiver,
    consume,
    consume_batch,
    order_created,
    order_paid,
    register,
    run_until,
    statuses,
)

T = TypeVar("T")
FAST = RetrySchedule((0.1, 0.1, 0.1, 0.1, 0.1), jitter_ratio=0.1)


def merchant() -> str:
    return new_id(IdKind.ORDER).replace("ord_", "m_")


def policy(**fields: object) -> DispatchPolicy:
    base: dict[str, object] = {
        "schedule": FAST,
        "breaker": BreakerPolicy(failure_threshold=20, cool_down_s=60),
        "endpoint_concurrency": 4,
        "global_concurrency": 16,
        "lease_s": 30.0,
    }
    return DispatchPolicy(**{**base, **fields})  # type: ignore[arg-type]


def with_dispatcher(
    uow_factory: UowFactory, use: Callable[[Dispatcher], Awaitable[T]], **fields: object
) -> T:
    async def run() -> T:
        sender = WebhookSender()
        dispatcher = Dispatcher(uow_factory, sender, policy(**fields))
        try:
            return await use(dispatcher)
        finally:
            await dispatcher.stop()
            await sender.close()

    return asyncio.run(run())


def status_codes(failing: int, then: int = 200) -> Callable[[int, web.Request], Awaitable[web.Response]]:
    async def respond(n: int, _request: web.Request) -> web.Response:
        return web.Response(status=500 if n < failing else then, text="nope" if n < failing else "ok")

    return respond


def published(sessions: sessionmaker[Session], event_type: str) -> list[bytes]:
    with sessions() as session:
        rows = session.execute(text("SELECT payload FROM outbox WHERE event_type = :t"), {"t": event_type})
        return [bytes(r.payload) for r in rows]


def test_receiver_failing_three_times_gets_one_success_after_four_signed_attempts(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()

    async def scenario(dispatcher: Dispatcher) -> Receiver:
        async with Receiver(status_codes(failing=3)) as receiver:
            endpoint = register(uow_factory, m, receiver.url)
            consume(sessions, order_paid(m, "ord_retry"))
            await run_until(
                dispatcher,
                lambda: set(statuses(sessions, endpoint.endpoint_id).values()) == {"DELIVERED"},
                15,
            )
            for got in receiver.received:
                assert verify(got.signature, got.body, [endpoint.secret], time.time())
            return receiver

    receiver = with_dispatcher(uow_factory, scenario)
    assert [r.answered for r in receiver.received] == [500, 500, 500, 200]
    assert len({r.body for r in receiver.received}) == 1  # every attempt sends the same bytes
    [found] = deliveries.find(uow_factory, "ord_retry", "", None, 10)
    view = deliveries.get(uow_factory, found.delivery_id)
    assert [a.result.status_code for a in view.attempts] == [500, 500, 500, 200]
    assert [a.number for a in view.attempts] == [1, 2, 3, 4]
    assert view.delivery.attempts_made == 4
    events = [
        unpack(decode_envelope(p), NotificationDelivered)
        for p in published(sessions, "notification.delivered")
    ]
    assert [(e.delivery_id, e.attempts) for e in events if e.order_id == "ord_retry"] == [
        (found.delivery_id, 4)
    ]


def test_each_attempt_is_a_client_span_in_the_events_trace_and_sends_its_traceparent(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    exporter = InMemorySpanExporter()
    provider = setup_tracing("notification-tests", SimpleSpanProcessor(exporter))
    with provider.get_tracer("notification-tests").start_as_current_span("consume order.paid") as consumer:
        carrier = inject_carrier()  # what ConsumerLoop hands the batch handler
    m = merchant()

    async def scenario(dispatcher: Dispatcher) -> tuple[Receiver, str]:
        async with Receiver(status_codes(failing=1)) as receiver:
            endpoint = register(uow_factory, m, receiver.url)
            consume(sessions, order_paid(m, "ord_traced"), carrier=carrier)
            await run_until(
                dispatcher,
                lambda: set(statuses(sessions, endpoint.endpoint_id).values()) == {"DELIVERED"},
                15,
            )
            return receiver, endpoint.endpoint_id

    receiver, endpoint_id = with_dispatcher(uow_factory, scenario)
    parent = consumer.get_span_context()
    posts = sorted(
        (s for s in exporter.get_finished_spans() if s.name == "POST webhook"),
        key=lambda s: s.start_time or 0,
    )
    posts = [s for s in posts if s.context is not None and s.context.trace_id == parent.trace_id]
    [found] = deliveries.find(uow_factory, "ord_traced", "", None, 10)
    assert [
        (dict(s.attributes or {}), s.kind, s.parent.span_id if s.parent else None, s.status.status_code)
        for s in posts
    ] == [
        (
            {
                "http.request.method": "POST",
                "webhook.delivery_id": found.delivery_id,
                "webhook.endpoint_id": endpoint_id,
                "webhook.event_type": "order.paid",
                "webhook.attempt": attempt,
                "http.response.status_code": code,
            },
            SpanKind.CLIENT,
            parent.span_id,
            status,
        )
        for attempt, code, status in ((1, 500, StatusCode.ERROR), (2, 200, StatusCode.UNSET))
    ]
    # Each attempt sent its own span's context: the merchant's tracing joins the same trace.
    assert [r.traceparent for r in receiver.received] == [
        f"00-{parent.trace_id:032x}-{s.context.span_id:016x}-{s.context.trace_flags:02x}"
        for s in posts
        if s.context is not None
    ]


def test_events_of_one_order_arrive_in_order_even_when_the_first_needs_retries(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()
    created, paid = order_created(m, "ord_seq"), order_paid(m, "ord_seq")

    async def scenario(dispatcher: Dispatcher) -> Receiver:
        async with Receiver(status_codes(failing=2)) as receiver:
            endpoint = register(uow_factory, m, receiver.url)
            consume(sessions, created)
            consume(sessions, paid)
            await run_until(
                dispatcher,
                lambda: set(statuses(sessions, endpoint.endpoint_id).values()) == {"DELIVERED"},
                15,
            )
            return receiver

    receiver = with_dispatcher(uow_factory, scenario)
    assert [(r.event_id, r.answered) for r in receiver.received] == [
        (created.event_id, 500),
        (created.event_id, 500),
        (created.event_id, 200),
        (paid.event_id, 200),
    ]


def test_replayed_event_creates_no_second_delivery(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()
    endpoint = register(uow_factory, m, "http://127.0.0.1:9/hooks")
    other = register(uow_factory, m, "http://127.0.0.1:9/other", ("order.closed",))
    event = order_paid(m, "ord_replay")
    consume(sessions, event)
    consume(sessions, event)  # the inbox drops it
    consume(sessions, event, through_inbox=False)  # and without the inbox, the unique key does
    assert statuses(sessions, endpoint.endpoint_id) == {event.event_id: "PENDING"}
    assert statuses(sessions, other.endpoint_id) == {}  # it does not want order.paid


def test_a_batch_fans_out_to_each_wanting_endpoint_numbering_each_order_in_event_order(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()
    every = register(uow_factory, m, "http://127.0.0.1:9/every")
    paid_only = register(uow_factory, m, "http://127.0.0.1:9/paid", ("order.paid",))
    o1, o2 = "ord_fan_1", "ord_fan_2"
    batch = [order_created(m, o1), order_paid(m, o1), order_paid(m, o2), order_created(m, o2)]
    consume_batch(sessions, batch)
    consume_batch(sessions, [*batch, order_paid(m, o1)])  # four replays and one new event

    def numbered(endpoint_id: str) -> list[tuple[str, str, int]]:
        with sessions() as session:
            rows = session.execute(
                text(
                    "SELECT order_id, event_type, sequence FROM deliveries WHERE endpoint_id = :e "
                    "ORDER BY order_id, sequence"
                ),
                {"e": endpoint_id},
            )
            return [(r.order_id, r.event_type, r.sequence) for r in rows]

    assert numbered(every.endpoint_id) == [
        (o1, "order.created", 1), (o1, "order.paid", 2), (o1, "order.paid", 3),
        (o2, "order.paid", 1), (o2, "order.created", 2),
    ]  # fmt: skip
    assert numbered(paid_only.endpoint_id) == [
        (o1, "order.paid", 1), (o1, "order.paid", 2), (o2, "order.paid", 1),
    ]  # fmt: skip


def test_an_endpoint_never_has_more_requests_in_flight_than_its_limit(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()
    open_now = [0]
    most = [0]

    async def slow(_n: int, _request: web.Request) -> web.Response:
        open_now[0] += 1
        most[0] = max(most[0], open_now[0])
        await asyncio.sleep(0.05)
        open_now[0] -= 1
        return web.Response(status=200)

    async def scenario(dispatcher: Dispatcher) -> Receiver:
        async with Receiver(slow) as receiver:
            endpoint = register(uow_factory, m, receiver.url)
            consume_batch(sessions, [order_paid(m, f"ord_cap_{n}") for n in range(15)])
            # Ticks more often than slots free up: each must find the endpoint's room full.
            await run_until(
                dispatcher,
                lambda: set(statuses(sessions, endpoint.endpoint_id).values()) == {"DELIVERED"},
                10,
                poll_s=0.005,
            )
            return receiver

    receiver = with_dispatcher(uow_factory, scenario, endpoint_concurrency=3)
    assert len(receiver.received) == 15  # each once
    assert most[0] == 3


def test_outcomes_are_recorded_together_except_one_whose_lease_was_taken_over(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()
    endpoint = register(uow_factory, m, "http://127.0.0.1:9/hooks")
    consume_batch(sessions, [order_paid(m, f"ord_rec_{n}") for n in range(3)])
    dispatcher = Dispatcher(uow_factory, WebhookSender(), policy())
    claimed = [c for c in dispatcher.claim(10) if c.delivery.endpoint_id == endpoint.endpoint_id]
    assert len(claimed) == 3
    with sessions() as session, session.begin():  # another worker took the last one over
        session.execute(
            text("UPDATE deliveries SET lease_token = 'other' WHERE delivery_id = :d"),
            {"d": claimed[2].delivery.delivery_id},
        )
    now = datetime.now(UTC)
    ok = AttemptResult(now, 200, 3, "", "ok")
    failed = AttemptResult(now, 503, 3, "", "busy")

    settled = dispatcher.record_many([(claimed[0], ok), (claimed[1], failed), (claimed[2], ok)])

    assert settled == [True, False, False]
    views = [deliveries.get(uow_factory, c.delivery.delivery_id) for c in claimed]
    assert [v.delivery.status.value for v in views] == ["DELIVERED", "RETRYING", "PENDING"]
    assert [[a.result.status_code for a in v.attempts] for v in views] == [[200], [503], []]
    with sessions() as session:
        failures = session.execute(
            text("SELECT breaker_failures FROM endpoints WHERE endpoint_id = :e"), {"e": endpoint.endpoint_id}
        ).scalar_one()
    assert failures == 1  # the success before it reset nothing; the failure counts


def test_hanging_endpoint_does_not_delay_another_endpoints_deliveries(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()
    release = asyncio.Event()

    async def hang(_n: int, _request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=200)

    async def scenario(dispatcher: Dispatcher) -> tuple[float, int, int]:
        async with Receiver(hang) as hanging, Receiver() as healthy:
            slow = register(uow_factory, m, hanging.url)
            fast = register(uow_factory, m, healthy.url)
            for n in range(3):
                consume(sessions, order_paid(m, f"ord_iso_{n}"))
            try:
                took_s = await run_until(
                    dispatcher,
                    lambda: set(statuses(sessions, fast.endpoint_id).values()) == {"DELIVERED"},
                    5,
                )
                hung = set(statuses(sessions, slow.endpoint_id).values())
                assert hung <= {"PENDING"}
                return took_s, len(hanging.received), dispatcher.in_flight
            finally:
                release.set()

    took_s, hanging_requests, in_flight = with_dispatcher(uow_factory, scenario, endpoint_concurrency=2)
    # The hanging endpoint's requests sit at its 10 s timeout; the healthy one finished long before.
    assert took_s < 3.0
    assert hanging_requests == 2  # its concurrency limit: the third waits for a free slot
    assert in_flight >= 2  # the hanging ones (a healthy task may still be finishing)


def test_redirects_are_not_followed_and_count_as_failures(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()

    async def scenario(dispatcher: Dispatcher) -> tuple[Receiver, Receiver]:
        async with Receiver() as target:

            async def redirect(_n: int, _request: web.Request) -> web.Response:
                return web.Response(status=307, headers={"Location": target.url})

            async with Receiver(redirect) as redirecting:
                register(uow_factory, m, redirecting.url)
                consume(sessions, order_paid(m, "ord_redirect"))
                await dispatcher.tick()
                await dispatcher.drain()
                return redirecting, target

    redirecting, target = with_dispatcher(uow_factory, scenario)
    assert len(redirecting.received) == 1
    assert target.received == []
    [found] = deliveries.find(uow_factory, "ord_redirect", "", None, 10)
    view = deliveries.get(uow_factory, found.delivery_id)
    assert view.delivery.status.value == "RETRYING"
    assert view.attempts[0].result.status_code == 307


def test_response_body_is_truncated(uow_factory: UowFactory, sessions: sessionmaker[Session]) -> None:
    m = merchant()

    async def big(_n: int, _request: web.Request) -> web.Response:
        return web.Response(status=500, text="x" * 50_000)

    async def scenario(dispatcher: Dispatcher) -> None:
        async with Receiver(big) as receiver:
            register(uow_factory, m, receiver.url)
            consume(sessions, order_paid(m, "ord_big"))
            await dispatcher.tick()
            await dispatcher.drain()

    with_dispatcher(uow_factory, scenario)
    [found] = deliveries.find(uow_factory, "ord_big", "", None, 10)
    [attempt] = deliveries.get(uow_factory, found.delivery_id).attempts
    assert attempt.result.response == "x" * RESPONSE_MAX_BYTES


def test_open_breaker_postpones_an_endpoint_instead_of_attempting(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()

    async def scenario(dispatcher: Dispatcher) -> Receiver:
        async with Receiver(status_codes(failing=1000)) as receiver:
            register(uow_factory, m, receiver.url)
            for n in range(4):
                consume(sessions, order_paid(m, f"ord_breaker_{n}"))
            started = time.monotonic()
            while time.monotonic() - started < 1.5:
                await dispatcher.tick()
                await asyncio.sleep(0.05)
            return receiver

    receiver = with_dispatcher(
        uow_factory,
        scenario,
        breaker=BreakerPolicy(failure_threshold=2, cool_down_s=60),
        endpoint_concurrency=1,
    )
    assert len(receiver.received) == 2


def test_redeliver_rules(uow_factory: UowFactory, sessions: sessionmaker[Session]) -> None:
    m = merchant()

    async def scenario(dispatcher: Dispatcher) -> str:
        async with Receiver(status_codes(failing=1000)) as receiver:
            endpoint = register(uow_factory, m, receiver.url)
            consume(sessions, order_paid(m, "ord_dead"))
            await run_until(
                dispatcher, lambda: set(statuses(sessions, endpoint.endpoint_id).values()) == {"DEAD"}, 10
            )
            return endpoint.endpoint_id

    endpoint_id = with_dispatcher(uow_factory, scenario, schedule=RetrySchedule((0.1,), jitter_ratio=0.0))
    [dead] = deliveries.find(uow_factory, "ord_dead", "", None, 10)
    assert dead.attempts_made == 2
    events = [unpack(decode_envelope(p), NotificationDead) for p in published(sessions, "notification.dead")]
    assert [e.delivery_id for e in events if e.order_id == "ord_dead"] == [dead.delivery_id]

    assert deliveries.redeliver(uow_factory, dead.delivery_id, "") == [dead.delivery_id]
    assert deliveries.get(uow_factory, dead.delivery_id).delivery.status.value == "PENDING"
    with pytest.raises(FailedPrecondition):
        deliveries.redeliver(uow_factory, dead.delivery_id, "")  # pending now, not DEAD
    with pytest.raises(NotFound):
        deliveries.redeliver(uow_factory, "dlv_unknown", "")
    with pytest.raises(NotFound):
        deliveries.redeliver(uow_factory, "", "ntf_unknown")
    assert deliveries.redeliver(uow_factory, "", endpoint_id) == []  # nothing DEAD left


def test_delivered_delivery_cannot_be_redelivered(
    uow_factory: UowFactory, sessions: sessionmaker[Session]
) -> None:
    m = merchant()

    async def scenario(dispatcher: Dispatcher) -> None:
        async with Receiver() as receiver:
            endpoint = register(uow_factory, m, receiver.url)
            consume(sessions, order_paid(m, "ord_done"))
            await run_until(
                dispatcher,
                lambda: set(statuses(sessions, endpoint.endpoint_id).values()) == {"DELIVERED"},
                10,
            )

    with_dispatcher(uow_factory, scenario)
    [done] = deliveries.find(uow_factory, "ord_done", "", None, 10)
    with pytest.raises(FailedPrecondition, match="only a DEAD delivery"):
        deliveries.redeliver(uow_factory, done.delivery_id, "")
