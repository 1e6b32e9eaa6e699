"""What notification's integration tests share: merchant receivers (real aiohttp servers on
127.0.0.1, port 0), events as the order service and payment-core publish them, and the
consumer's path (inbox + handler) applied to them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from notification.adapters.resolver import resolve
from notification.domain.endpoint import Endpoint
from notification.entrypoints.consumers import CONSUMER_NAME, batch_handler
from notification.service_layer import endpoints
from notification.service_layer.dispatch import Dispatcher
from notification.service_layer.endpoints import UrlPolicy
from notification.service_layer.unit_of_work import UowFactory
from paykit.contracts.convert import money_to_proto
from paykit.db import run_blocking
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.events.v1.order_events_pb2 import OrderCreated, OrderPaid
from paykit.ids import IdKind, new_id
from paykit.messaging.consumer import Consumed
from paykit.messaging.envelope import decode_envelope, pack
from paykit.messaging.inbox import first_deliveries, first_delivery
from paykit.messaging.topics import ORDER_EVENTS
from paykit.money import Money
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

DEV_POLICY = UrlPolicy(resolve, allow_insecure=True)
Respond = Callable[[int, web.Request], Awaitable[web.StreamResponse]]


async def ok(_n: int, _request: web.Request) -> web.StreamResponse:
    return web.Response(status=200, text="ok")


@dataclass
class Received:
    event_id: str
    body: bytes
    signature: str
    at: float
    answered: int | None = None
    traceparent: str = ""


@dataclass
class Receiver:
    """A merchant's webhook endpoint; `respond(n, request)` answers the n-th request (0-based)."""

    respond: Respond = ok
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        entry = Received(
            request.headers.get("Paykit-Event-Id", ""),
            body,
            request.headers.get("Paykit-Signature", ""),
            time.monotonic(),
            traceparent=request.headers.get("traceparent", ""),
        )
        self.received.append(entry)
        response = await self.respond(len(self.received) - 1, request)
        entry.answered = response.status
        return response

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def register(
    uow_factory: UowFactory, merchant_id: str, url: str, event_types: tuple[str, ...] = ()
) -> Endpoint:
    return endpoints.register(uow_factory, DEV_POLICY, merchant_id, url, event_types)


def order_created(merchant_id: str, order_id: str, minor: int = 1999) -> Envelope:
    payload = OrderCreated(
        order_id=order_id,
        merchant_id=merchant_id,
        merchant_order_no=f"no-{order_id}",
        amount=money_to_proto(Money(minor, "CNY")),
    )
    return _envelope("order.created", order_id, payload)


def order_paid(merchant_id: str, order_id: str, minor: int = 1999) -> Envelope:
    payload = OrderPaid(
        order_id=order_id,
        merchant_id=merchant_id,
        merchant_order_no=f"no-{order_id}",
        payment_id=new_id(IdKind.PAYMENT),
        amount=money_to_proto(Money(minor, "CNY")),
    )
    return _envelope("order.paid", order_id, payload)


def _envelope(event_type: str, order_id: str, payload: Any) -> Envelope:
    event = pack(
        topic=ORDER_EVENTS,
        key=order_id,
        event_type=event_type,
        aggregate_type="order",
        aggregate_id=order_id,
        payload=payload,
        producer="order",
    )
    return decode_envelope(event.value)


def consume(
    sessions: sessionmaker[Session],
    envelope: Envelope,
    *,
    through_inbox: bool = True,
    carrier: dict[str, str] | None = None,
) -> None:
    """What ConsumerLoop does for one message: inbox row + handler, one transaction;
    `carrier` stands for the W3C context of the consumer span."""
    with sessions() as session, session.begin():
        if not through_inbox or first_delivery(session, CONSUMER_NAME, envelope.event_id, ORDER_EVENTS):
            batch_handler()(session, [Consumed(envelope, carrier or {})])


def consume_batch(sessions: sessionmaker[Session], batch: list[Envelope]) -> None:
    """What ConsumerLoop does for a batch with a batch handler: first deliveries, one call."""
    with sessions() as session, session.begin():
        first = first_deliveries(session, CONSUMER_NAME, [(e.event_id, ORDER_EVENTS) for e in batch])
        batch_handler()(session, [Consumed(e, {}) for e in batch if e.event_id in first])


def statuses(sessions: sessionmaker[Session], endpoint_id: str) -> dict[str, str]:
    """event id -> delivery status of the endpoint's deliveries."""
    with sessions() as session:
        rows = session.execute(
            text("SELECT event_id, status FROM deliveries WHERE endpoint_id = :e"), {"e": endpoint_id}
        )
        return {r.event_id: r.status for r in rows}


async def run_until(
    dispatcher: Dispatcher, done: Callable[[], bool], timeout_s: float, poll_s: float = 0.05
) -> float:
    """Tick the worker until `done()` (read from the database) holds; returns the seconds taken."""
    started = time.monotonic()
    while not await run_blocking(done):
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not done within {timeout_s} s")
        await dispatcher.tick()
        await asyncio.sleep(poll_s)
    return time.monotonic() - started
