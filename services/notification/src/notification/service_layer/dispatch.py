"""The delivery worker: claim due deliveries, POST them concurrently, record each outcome.

Each tick claims at most the free global capacity, leases what it claims (so
other replicas skip it), starts one task per delivery and returns without
waiting for any of them: a slow endpoint only ever holds its own in-flight
slots (the per-endpoint limit), never the tick or another endpoint.

Outcomes are recorded in batches: whatever finished while the previous batch
was being written goes into the next transaction together (attempts, new
states, breakers, outbox events). One transaction per outcome capped the
worker at a few hundred deliveries a second; a batch costs about the same as
one. A batch that fails is recorded again one outcome at a time, so one bad
outcome cannot hold back the others.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from paykit.db import run_blocking
from paykit.telemetry import extract_context, inject_carrier, tracer

from notification.adapters import events
from notification.adapters.http_sender import HttpOutcome
from notification.adapters.metrics import count_attempts
from notification.domain.breaker import Breaker, BreakerPolicy
from notification.domain.delivery import (
    AttemptResult,
    Delivery,
    DeliveryStatus,
    RetrySchedule,
    after_attempt,
    describe_failure,
)
from notification.domain.signature import HEADER, sign
from notification.service_layer.unit_of_work import NotificationUnitOfWork, UowFactory, now_utc

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT_CONCURRENCY = 32
DEFAULT_GLOBAL_CONCURRENCY = 512
# Longer than the HTTP total timeout: a lease that outlives its worker is taken over.
DEFAULT_LEASE_S = 60.0
# Outcomes written per transaction at most; more wait for the next one.
MAX_RECORD_BATCH = 500


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpOutcome: ...


@dataclass(frozen=True)
class Claimed:
    delivery: Delivery
    url: str
    token: str
    secrets: list[str] = field(repr=False)


@dataclass(frozen=True)
class DispatchPolicy:
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    endpoint_concurrency: int = DEFAULT_ENDPOINT_CONCURRENCY
    global_concurrency: int = DEFAULT_GLOBAL_CONCURRENCY
    lease_s: float = DEFAULT_LEASE_S


class Dispatcher:
    def __init__(
        self,
        uow_factory: UowFactory,
        sender: Sender,
        policy: DispatchPolicy,
        *,
        on_settled: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._sender = sender
        self._policy = policy
        self._on_settled = on_settled
        self._rng = rng or random.Random()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._recorder = BatchRecorder(self.record_many)
        self._tracer = tracer("notification.dispatch")

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def tick(self) -> int:
        """Start sending what is due; returns how many were started (PeriodicTask's tick)."""
        capacity = self._policy.global_concurrency - len(self._in_flight)
        if capacity <= 0:
            return 0
        claimed = await run_blocking(self.claim, capacity)
        for item in claimed:
            task = asyncio.create_task(self._deliver(item), name=f"deliver-{item.delivery.delivery_id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claimed)

    async def drain(self) -> None:
        """Wait for every delivery in flight (tests; a clean stop)."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    async def stop(self) -> None:
        """Abandon what is in flight: the leases expire and another tick sends it again."""
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    # -- claiming -------------------------------------------------------------------------
    def claim(self, capacity: int) -> list[Claimed]:
        policy = self._policy
        now = now_utc()
        token = secrets.token_hex(16)
        with self._uow_factory() as uow:
            taken = uow.deliveries.claim(
                now,
                capacity,
                policy.endpoint_concurrency,
                policy.breaker.failure_threshold,
                token,
                now + timedelta(seconds=policy.lease_s),
            )
            uow.commit()
        return [Claimed(c.delivery, c.url, token, c.endpoint.signing_secrets(now)) for c in taken]

    # -- sending --------------------------------------------------------------------------
    async def _deliver(self, item: Claimed) -> None:
        delivery = item.delivery
        try:
            with self._attempt_span(delivery) as span:
                timestamp = int(now_utc().timestamp())
                headers = {
                    HEADER: sign(item.secrets, delivery.payload, timestamp),
                    "Paykit-Event-Id": delivery.event_id,
                    "Paykit-Event-Type": delivery.event_type,
                    "Paykit-Delivery-Id": delivery.delivery_id,
                    # W3C `traceparent` / `tracestate` of this attempt: the merchant's own
                    # tracing can continue the payment's trace.
                    **inject_carrier(),
                }
                outcome = await self._sender.post(item.url, delivery.payload, headers)
                result = AttemptResult(
                    outcome.at, outcome.status_code, outcome.latency_ms, outcome.error, outcome.response
                )
                _end_attempt_span(span, result)
            settled = await self._recorder.record(item, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease expires and the delivery is tried again; nothing is lost.
            log.exception("delivery attempt failed to record", extra={"delivery_id": delivery.delivery_id})
            return
        if settled:
            self._on_settled()

    def _attempt_span(self, delivery: Delivery) -> AbstractContextManager[trace.Span]:
        """One CLIENT span per attempt, a child of the consumer span of the event that caused
        the delivery: every retry is another span in the payment's trace."""
        return self._tracer.start_as_current_span(
            "POST webhook",
            context=extract_context(delivery.trace_context or {}),
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "webhook.delivery_id": delivery.delivery_id,
                "webhook.endpoint_id": delivery.endpoint_id,
                "webhook.event_type": delivery.event_type,
                "webhook.attempt": delivery.attempts_made + 1,
            },
        )

    def record_many(self, outcomes: Sequence[tuple[Claimed, AttemptResult]]) -> list[bool]:
        """Store each attempt and its delivery's next state in one transaction; per outcome,
        True when its delivery left the open states. An outcome whose lease was taken over
        is left to the worker that took it (False)."""
        recorded: list[tuple[Delivery, AttemptResult]] = []
        with self._uow_factory() as uow:
            current = uow.deliveries.leased_by(
                {item.delivery.delivery_id: item.token for item, _ in outcomes}
            )
            for item, result in outcomes:
                delivery = current.pop(item.delivery.delivery_id, None)
                if delivery is not None:
                    recorded.append(
                        (after_attempt(delivery, result, self._policy.schedule, self._rng), result)
                    )
            uow.deliveries.record_outcomes(recorded)
            self._record_breakers(uow, recorded)
            uow.publish_many(
                [events.delivered(d, r.at) for d, r in recorded if d.status is DeliveryStatus.DELIVERED]
                + [events.dead(d) for d, _ in recorded if d.status is DeliveryStatus.DEAD]
            )
            uow.commit()
        count_attempts(d.status for d, _ in recorded)
        for after, result in recorded:
            # A failure is what an operator looks for; a success is in the attempts table.
            (log.debug if result.succeeded else log.info)(
                "delivery attempt",
                extra={
                    "delivery_id": after.delivery_id,
                    "endpoint_id": after.endpoint_id,
                    "attempt": after.attempts_made,
                    "status_code": result.status_code,
                    "outcome": after.status.value,
                },
            )
        settled = {d.delivery_id for d, _ in recorded if not d.status.open}
        return [item.delivery.delivery_id in settled for item, _ in outcomes]

    def _record_breakers(
        self, uow: NotificationUnitOfWork, recorded: Sequence[tuple[Delivery, AttemptResult]]
    ) -> None:
        by_endpoint: dict[str, list[AttemptResult]] = {}
        for delivery, result in recorded:
            by_endpoint.setdefault(delivery.endpoint_id, []).append(result)
        # Only successes to a closed breaker leave it as it is: skip that endpoint row's
        # lock and write. Every success to a healthy endpoint otherwise queued on that one
        # row. Unlocked, a failure committed just after our read keeps its count: the same
        # as these successes having been recorded first.
        closed = uow.endpoints.breakers(by_endpoint, for_update=False)
        changing = [
            e for e, results in by_endpoint.items()
            if not (all(r.succeeded for r in results) and closed.get(e) == Breaker(0, None))
        ]  # fmt: skip
        if not changing:
            return
        policy = self._policy.breaker
        for endpoint_id, breaker in uow.endpoints.breakers(changing).items():
            for result in sorted(by_endpoint[endpoint_id], key=lambda r: r.at):
                breaker = (
                    policy.on_success(breaker) if result.succeeded else policy.on_failure(breaker, result.at)
                )
            uow.endpoints.save_breaker(endpoint_id, breaker)


def _end_attempt_span(span: trace.Span, result: AttemptResult) -> None:
    if result.status_code:
        span.set_attribute("http.response.status_code", result.status_code)
    if not result.succeeded:
        span.set_status(StatusCode.ERROR, describe_failure(result))


class BatchRecorder:
    """Collects outcomes while a batch is being written and writes them as the next batch.

    One writer at a time: the batch size follows the load by itself (one outcome when
    idle, hundreds under load) with no timer adding latency.
    """

    def __init__(self, record_many: Callable[[Sequence[tuple[Claimed, AttemptResult]]], list[bool]]) -> None:
        self._record_many = record_many
        self._waiting: list[tuple[Claimed, AttemptResult, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, item: Claimed, result: AttemptResult) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, result, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="record-outcomes")
        return await future

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_RECORD_BATCH], self._waiting[MAX_RECORD_BATCH:]
            try:
                settled = await run_blocking(self._record_many, [(item, result) for item, result, _ in batch])
            except Exception:
                log.warning("recording a batch of outcomes failed; recording one by one", exc_info=True)
                await self._write_one_by_one(batch)
                continue
            for (_, _, future), done in zip(batch, settled, strict=True):
                if not future.done():
                    future.set_result(done)

    async def _write_one_by_one(
        self, batch: list[tuple[Claimed, AttemptResult, asyncio.Future[bool]]]
    ) -> None:
        for item, result, future in batch:
            try:
                done = (await run_blocking(self._record_many, [(item, result)]))[0]
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            if not future.done():
                future.set_result(done)
