"""The delivery worker: claim due deliveries, POST them concurrently, record each outcome.

Each tick claims at most the free global capacity, leases what it claims (so
other replicas skip it), starts one task per delivery and returns without
waiting for any of them: a slow endpoint only ever holds its own in-flight
slots (the per-endpoint limit), never the tick or another endpoint. Outcomes
are recorded as they come, each in its own transaction with its outbox event.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from paykit.db import run_blocking

from notification.adapters import events
from notification.adapters.http_sender import HttpOutcome
from notification.adapters.repository import Candidate
from notification.domain.breaker import Breaker, BreakerPolicy
from notification.domain.delivery import AttemptResult, Delivery, DeliveryStatus, RetrySchedule, after_attempt
from notification.domain.signature import HEADER, sign
from notification.service_layer.unit_of_work import NotificationUnitOfWork, UowFactory, now_utc

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT_CONCURRENCY = 4
DEFAULT_GLOBAL_CONCURRENCY = 64
# Longer than the HTTP total timeout: a lease that outlives its worker is taken over.
DEFAULT_LEASE_S = 60.0


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
            candidates = uow.deliveries.claim_candidates(
                now, capacity, policy.endpoint_concurrency, policy.breaker.failure_threshold
            )
            busy = uow.deliveries.in_flight(sorted({c.delivery.endpoint_id for c in candidates}), now)
            taken = self._within_limits(candidates, busy, now, capacity)
            if taken:
                uow.deliveries.lease(
                    [c.delivery.delivery_id for c in taken], token, now + timedelta(seconds=policy.lease_s)
                )
                uow.commit()
        return [Claimed(c.delivery, c.url, token, c.endpoint.signing_secrets(now)) for c in taken]

    def _within_limits(
        self, candidates: list[Candidate], busy: dict[str, int], now: datetime, capacity: int
    ) -> list[Candidate]:
        taken: list[Candidate] = []
        for candidate in candidates:
            endpoint_id = candidate.delivery.endpoint_id
            limit = self._policy.breaker.in_flight_limit(
                candidate.breaker, now, self._policy.endpoint_concurrency
            )
            if busy.get(endpoint_id, 0) < limit and len(taken) < capacity:
                busy[endpoint_id] = busy.get(endpoint_id, 0) + 1
                taken.append(candidate)
        return taken

    # -- sending --------------------------------------------------------------------------
    async def _deliver(self, item: Claimed) -> None:
        delivery = item.delivery
        try:
            timestamp = int(now_utc().timestamp())
            headers = {
                HEADER: sign(item.secrets, delivery.payload, timestamp),
                "Paykit-Event-Id": delivery.event_id,
                "Paykit-Event-Type": delivery.event_type,
                "Paykit-Delivery-Id": delivery.delivery_id,
            }
            outcome = await self._sender.post(item.url, delivery.payload, headers)
            result = AttemptResult(
                outcome.at, outcome.status_code, outcome.latency_ms, outcome.error, outcome.response
            )
            settled = await run_blocking(self.record, item, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease expires and the delivery is tried again; nothing is lost.
            log.exception("delivery attempt failed to record", extra={"delivery_id": delivery.delivery_id})
            return
        if settled:
            self._on_settled()

    def _record_breaker(self, uow: NotificationUnitOfWork, endpoint_id: str, result: AttemptResult) -> None:
        policy = self._policy.breaker
        # A success leaves a closed breaker as it is: skip the endpoint row's lock and
        # write. Every success to a healthy endpoint otherwise queued on that one row
        # (bench-notify: ~35 deliveries/s). Unlocked, a failure committed just after our
        # read keeps its count: the same as this success having been recorded first.
        if result.succeeded and uow.endpoints.breaker(endpoint_id, for_update=False) == Breaker(0, None):
            return
        breaker = uow.endpoints.breaker(endpoint_id)
        after = policy.on_success(breaker) if result.succeeded else policy.on_failure(breaker, result.at)
        uow.endpoints.save_breaker(endpoint_id, after)

    def record(self, item: Claimed, result: AttemptResult) -> bool:
        """Store the attempt and the delivery's next state; True when it left the open states."""
        with self._uow_factory() as uow:
            current = uow.deliveries.leased_by(item.delivery.delivery_id, item.token)
            if current is None:
                return False  # our lease expired and was taken over; that worker records
            after = after_attempt(current, result, self._policy.schedule, self._rng)
            uow.deliveries.add_attempt(current.delivery_id, after.attempts_made, result)
            uow.deliveries.save(after)
            self._record_breaker(uow, current.endpoint_id, result)
            if after.status is DeliveryStatus.DELIVERED:
                uow.publish(events.delivered(after, result.at))
            elif after.status is DeliveryStatus.DEAD:
                uow.publish(events.dead(after))
            uow.commit()
        log.info(
            "delivery attempt",
            extra={
                "delivery_id": after.delivery_id,
                "endpoint_id": after.endpoint_id,
                "attempt": after.attempts_made,
                "status_code": result.status_code,
                "outcome": after.status.value,
            },
        )
        return not after.status.open
