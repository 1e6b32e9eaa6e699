"""Merchant webhooks through the whole suite, to real HTTP receivers on loopback:
retried until delivered exactly once with every attempt recorded, signed, in order per
order; a SIGKILL during retries resumes the schedule; a hanging endpoint does not slow
another's deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from aiohttp import web
from notification.domain.verify import verify
from paykit.devstack.suite import Suite
from paykit.notification.v1 import notification_pb2 as pb
from paykit.notification.v1 import notification_pb2_grpc

from tests.e2e.helpers import eventually, new_order, pay, refund_order, wait_order_status

WAIT_S = 60.0


@dataclass
class Receiver:
    """A merchant's webhook endpoint: fails the first `fail_first` requests, or hangs."""

    fail_first: int = 0
    hang: bool = False
    requests: int = 0
    received: list[dict[str, object]] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)
    bad_signatures: int = 0
    secret: str = ""
    url: str = ""
    _stop: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        if self.hang:
            # Longer than the service's read timeout: every attempt hangs until it gives up.
            await asyncio.sleep(15)
        if self.requests <= self.fail_first:
            return web.Response(status=503, text="not yet")
        if not verify(request.headers.get("Paykit-Signature", ""), body, [self.secret], time.time()):
            self.bad_signatures += 1
            return web.Response(status=400, text="bad signature")
        event = json.loads(body)
        self.received.append(event)
        self.times.setdefault(str(event["id"]), time.monotonic())
        return web.Response(status=200, text="ok")


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Start receivers on loopback ports in a thread of their own; stopped after the test."""
    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start(receiver: Receiver) -> None:
        app = web.Application()
        app.router.add_post("/hooks", receiver.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        receiver.url = f"http://127.0.0.1:{port}/hooks"
        runners.append(runner)

    class Factory(list[Receiver]):
        def new(self, **kwargs: object) -> Receiver:
            receiver = Receiver(**kwargs)  # type: ignore[arg-type]
            asyncio.run_coroutine_threadsafe(start(receiver), loop).result(10)
            self.append(receiver)
            return receiver

    factory = Factory()
    yield factory
    for runner in runners:
        # A hanging handler may still be sleeping: do not wait for it.
        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)

    async def cancel_the_rest() -> None:
        # A hanging handler's request is still pending: cancel it here rather than
        # leave it for the garbage collector to complain about.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_the_rest(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def notifications(suite: Suite) -> notification_pb2_grpc.NotificationServiceStub:
    return notification_pb2_grpc.NotificationServiceStub(
        grpc.insecure_channel(suite.grpc_target("notification"))
    )


def register(suite: Suite, merchant: str, receiver: Receiver, types: list[str]) -> pb.Endpoint:
    endpoint = notifications(suite).RegisterEndpoint(
        pb.RegisterEndpointRequest(
            idempotency_key=f"reg-{uuid.uuid4().hex}",
            merchant_id=merchant,
            url=receiver.url,
            event_types=types,
        ),
        timeout=10,
    )
    receiver.secret = endpoint.secret
    return endpoint


def deliveries_of(suite: Suite, order_id: str) -> list[pb.Delivery]:
    return list(
        notifications(suite)
        .ListDeliveries(pb.ListDeliveriesRequest(order_id=order_id), timeout=10)
        .deliveries
    )


def delivery(suite: Suite, delivery_id: str) -> pb.Delivery:
    """With its attempts (ListDeliveries leaves them out)."""
    return notifications(suite).GetDelivery(pb.GetDeliveryRequest(delivery_id=delivery_id), timeout=10)


def status(d: pb.Delivery) -> str:
    return pb.DeliveryStatus.Name(d.status).removeprefix("DELIVERY_STATUS_")


def test_failing_receiver_gets_each_event_once_after_retries_signed_and_in_order(
    suite: Suite, receivers: list[Receiver]
) -> None:
    merchant = f"m-hook-{uuid.uuid4().hex[:6]}"
    receiver = receivers.new(fail_first=3)  # type: ignore[attr-defined]
    register(suite, merchant, receiver, ["order.paid", "order.refunded"])
    order = new_order(suite, minor=5_000, merchant_id=merchant)
    pay(suite, order.order_id)
    wait_order_status(suite, order.order_id, "PAID")
    refund_order(suite, order.order_id, 1_000, "hook-r1")
    wait_order_status(suite, order.order_id, "PARTIALLY_REFUNDED")

    eventually(
        lambda: (
            len(receiver.received) == 2
            and all(status(d) == "DELIVERED" for d in deliveries_of(suite, order.order_id))
        ),
        "both events delivered",
        WAIT_S,
    )
    time.sleep(2)  # nothing more may arrive
    assert [e["type"] for e in receiver.received] == ["order.paid", "order.refunded"]
    assert receiver.bad_signatures == 0
    paid, refunded = (
        delivery(suite, d.delivery_id)
        for d in sorted(deliveries_of(suite, order.order_id), key=lambda d: d.created_at.ToDatetime())
    )
    # The first event took the three failures; the second waited for it, then went at once.
    assert (paid.attempts_made, [a.status_code for a in paid.attempts]) == (4, [503, 503, 503, 200])
    assert refunded.attempts_made == 1
    print(
        f"\nreceiver: {receiver.requests} requests, {len(receiver.received)} deliveries, "
        f"attempts {paid.attempts_made}+{refunded.attempts_made}"
    )


def test_killed_during_retries_resumes_the_schedule_and_delivers_once(
    suite: Suite, receivers: list[Receiver]
) -> None:
    merchant = f"m-kill-{uuid.uuid4().hex[:6]}"
    receiver = receivers.new(fail_first=10_000)  # type: ignore[attr-defined]
    register(suite, merchant, receiver, ["order.paid"])
    order = new_order(suite, minor=3_000, merchant_id=merchant)
    pay(suite, order.order_id)
    eventually(lambda: receiver.requests >= 2, "retries under way", WAIT_S)

    suite.services["notification"].kill(signal.SIGKILL)
    attempts_before = receiver.requests
    # The next attempt, after the restart, fails once more; the one after it succeeds.
    receiver.fail_first = attempts_before + 1
    suite.start_service("notification")

    eventually(lambda: len(receiver.received) == 1, "delivered after the restart", WAIT_S)
    time.sleep(3)
    assert len(receiver.received) == 1 and receiver.bad_signatures == 0
    (listed,) = deliveries_of(suite, order.order_id)
    found = delivery(suite, listed.delivery_id)
    assert status(found) == "DELIVERED"
    # Every attempt, before and after the kill, is recorded, numbered on.
    assert [a.number for a in found.attempts] == list(range(1, found.attempts_made + 1))
    assert found.attempts_made >= attempts_before + 2
    assert [a.status_code for a in found.attempts][-2:] == [503, 200]
    print(
        f"\nSIGKILL after {attempts_before} failed attempts; after the restart: attempts "
        f"{[a.status_code for a in found.attempts]}, {len(receiver.received)} delivery, {status(found)}"
    )


def test_a_hanging_endpoint_does_not_slow_another(suite: Suite, receivers: list[Receiver]) -> None:
    slow_merchant, fast_merchant = f"m-hang-{uuid.uuid4().hex[:6]}", f"m-fast-{uuid.uuid4().hex[:6]}"
    hanging = receivers.new(hang=True)  # type: ignore[attr-defined]
    healthy = receivers.new()  # type: ignore[attr-defined]
    register(suite, slow_merchant, hanging, ["order.paid"])
    register(suite, fast_merchant, healthy, ["order.paid"])
    for _ in range(6):
        pay(suite, new_order(suite, merchant_id=slow_merchant).order_id)
    eventually(lambda: hanging.requests >= 1, "the hanging endpoint to be in flight", WAIT_S)

    started = {}
    fast_orders = []
    for _ in range(5):
        order = new_order(suite, merchant_id=fast_merchant)
        pay(suite, order.order_id)
        fast_orders.append(order.order_id)
        started[order.order_id] = time.monotonic()
    eventually(lambda: len(healthy.received) == 5, "the healthy endpoint's deliveries", WAIT_S)
    latencies = sorted(
        healthy.times[str(e["id"])] - started[str(e["data"]["order"]["id"])]  # type: ignore[index]
        for e in healthy.received
    )
    print(
        f"\nwhile another endpoint hangs: healthy endpoint pay->delivered max {latencies[-1] * 1000:.0f} ms "
        f"(median {latencies[len(latencies) // 2] * 1000:.0f} ms); "
        f"hanging endpoint requests {hanging.requests}"
    )
    # Pay -> order.paid -> delivered takes about a second here; a hang of 10 s per attempt must not show.
    assert latencies[-1] < 5.0
