"""Storing endpoints, deliveries and attempts; ORM rows stop here (domain objects leave)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from notification.adapters.tables import attempts, deliveries, endpoints
from notification.domain.breaker import Breaker
from notification.domain.delivery import AttemptResult, Delivery, DeliveryStatus
from notification.domain.endpoint import Endpoint

OPEN_STATUSES = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)

# Due, not leased, endpoint enabled and its breaker not open, and (the ordering rule,
# domain/delivery.py may_attempt) no earlier delivery of the same order to the same
# endpoint still open. Ranked per endpoint so one endpoint's backlog cannot fill the
# batch; the outer query locks what it takes, skipping rows another worker holds.
_CLAIM = text(
    """
    WITH ranked AS (
        SELECT d.delivery_id,
               row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.sequence) AS rank
        FROM deliveries d JOIN endpoints e ON e.endpoint_id = d.endpoint_id
        WHERE d.status IN ('PENDING', 'RETRYING')
          AND d.next_attempt_at <= :now
          AND (d.lease_until IS NULL OR d.lease_until < :now)
          AND e.enabled
          AND NOT (e.breaker_failures >= :threshold AND e.breaker_open_until > :now)
          AND NOT EXISTS (
              SELECT 1 FROM deliveries p
              WHERE p.endpoint_id = d.endpoint_id AND p.order_id = d.order_id
                AND p.sequence < d.sequence AND p.status IN ('PENDING', 'RETRYING'))
    )
    SELECT d.*, e.url, e.secret, e.previous_secret, e.previous_secret_expires_at,
           e.breaker_failures, e.breaker_open_until
    FROM deliveries d
    JOIN ranked r ON r.delivery_id = d.delivery_id
    JOIN endpoints e ON e.endpoint_id = d.endpoint_id
    WHERE r.rank <= :per_endpoint
      AND d.status IN ('PENDING', 'RETRYING')
      AND (d.lease_until IS NULL OR d.lease_until < :now)
    ORDER BY d.next_attempt_at, d.sequence
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)


@dataclass(frozen=True)
class Candidate:
    """A due delivery with what sending it needs from its endpoint."""

    delivery: Delivery
    url: str
    endpoint: Endpoint = field(repr=False)
    breaker: Breaker


@dataclass(frozen=True)
class StoredAttempt:
    number: int
    result: AttemptResult


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        endpoint_id=row.endpoint_id,
        merchant_id=row.merchant_id,
        url=row.url,
        event_types=tuple(row.event_types),
        enabled=row.enabled,
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_at=row.created_at,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        delivery_id=row.delivery_id,
        endpoint_id=row.endpoint_id,
        merchant_id=row.merchant_id,
        event_id=row.event_id,
        event_type=row.event_type,
        order_id=row.order_id,
        payload=bytes(row.payload),
        status=DeliveryStatus(row.status),
        attempts_made=row.attempts_made,
        round_attempts=row.round_attempts,
        next_attempt_at=row.next_attempt_at,
        sequence=row.sequence,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )


class EndpointRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, endpoint: Endpoint, now: datetime) -> None:
        self._session.execute(
            insert(endpoints).values(
                endpoint_id=endpoint.endpoint_id,
                merchant_id=endpoint.merchant_id,
                url=endpoint.url,
                event_types=list(endpoint.event_types),
                enabled=endpoint.enabled,
                secret=endpoint.secret,
                previous_secret=endpoint.previous_secret,
                previous_secret_expires_at=endpoint.previous_secret_expires_at,
                breaker_failures=0,
                created_at=endpoint.created_at,
                updated_at=now,
            )
        )

    def get(self, endpoint_id: str, *, for_update: bool = False) -> Endpoint | None:
        query = select(endpoints).where(endpoints.c.endpoint_id == endpoint_id)
        row = self._session.execute(query.with_for_update() if for_update else query).first()
        return _endpoint(row) if row else None

    def save(self, endpoint: Endpoint, now: datetime) -> None:
        self._session.execute(
            update(endpoints)
            .where(endpoints.c.endpoint_id == endpoint.endpoint_id)
            .values(
                url=endpoint.url,
                event_types=list(endpoint.event_types),
                enabled=endpoint.enabled,
                secret=endpoint.secret,
                previous_secret=endpoint.previous_secret,
                previous_secret_expires_at=endpoint.previous_secret_expires_at,
                updated_at=now,
            )
        )

    def of_merchant(self, merchant_id: str) -> list[Endpoint]:
        rows = self._session.execute(
            select(endpoints).where(endpoints.c.merchant_id == merchant_id).order_by(endpoints.c.endpoint_id)
        )
        return [_endpoint(r) for r in rows]

    def breaker(self, endpoint_id: str, *, for_update: bool = True) -> Breaker:
        """Locked by default: results for one endpoint finishing at once must not lose a
        failure count."""
        query = select(endpoints.c.breaker_failures, endpoints.c.breaker_open_until).where(
            endpoints.c.endpoint_id == endpoint_id
        )
        row = self._session.execute(query.with_for_update() if for_update else query).one()
        return Breaker(row.breaker_failures, row.breaker_open_until)

    def save_breaker(self, endpoint_id: str, breaker: Breaker) -> None:
        self._session.execute(
            update(endpoints)
            .where(endpoints.c.endpoint_id == endpoint_id)
            .values(breaker_failures=breaker.consecutive_failures, breaker_open_until=breaker.open_until)
        )


class DeliveryRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # -- creating ----------------------------------------------------------------------
    def lock_order(self, order_id: str) -> None:
        """Serialise the sequence numbering of one order's deliveries across consumers."""
        self._session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:o, 55))"), {"o": order_id})

    def next_sequence(self, endpoint_id: str, order_id: str) -> int:
        found = self._session.execute(
            select(func.coalesce(func.max(deliveries.c.sequence), 0)).where(
                deliveries.c.endpoint_id == endpoint_id, deliveries.c.order_id == order_id
            )
        ).scalar_one()
        return int(found) + 1

    def add(self, delivery: Delivery) -> bool:
        """False when the event was delivered to this endpoint before (a replay)."""
        inserted = self._session.execute(
            insert(deliveries)
            .values(
                delivery_id=delivery.delivery_id,
                endpoint_id=delivery.endpoint_id,
                merchant_id=delivery.merchant_id,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                order_id=delivery.order_id,
                payload=delivery.payload,
                status=delivery.status.value,
                attempts_made=delivery.attempts_made,
                round_attempts=delivery.round_attempts,
                next_attempt_at=delivery.next_attempt_at,
                sequence=delivery.sequence,
                last_error="",
                created_at=delivery.created_at,
            )
            .on_conflict_do_nothing(constraint="deliveries_event_endpoint")
            .returning(deliveries.c.delivery_id)
        ).first()
        return inserted is not None

    # -- the worker ---------------------------------------------------------------------
    def claim_candidates(
        self, now: datetime, limit: int, per_endpoint: int, breaker_threshold: int
    ) -> list[Candidate]:
        rows = self._session.execute(
            _CLAIM,
            {"now": now, "limit": limit, "per_endpoint": per_endpoint, "threshold": breaker_threshold},
        )
        found = []
        for row in rows:
            endpoint = Endpoint(
                endpoint_id=row.endpoint_id,
                merchant_id=row.merchant_id,
                url=row.url,
                event_types=(),
                enabled=True,
                secret=row.secret,
                previous_secret=row.previous_secret,
                previous_secret_expires_at=row.previous_secret_expires_at,
                created_at=row.created_at,
            )
            breaker = Breaker(row.breaker_failures, row.breaker_open_until)
            found.append(Candidate(_delivery(row), row.url, endpoint, breaker))
        return found

    def in_flight(self, endpoint_ids: Sequence[str], now: datetime) -> dict[str, int]:
        """Deliveries leased (being sent, by any replica) per endpoint."""
        if not endpoint_ids:
            return {}
        rows = self._session.execute(
            select(deliveries.c.endpoint_id, func.count())
            .where(
                deliveries.c.endpoint_id.in_(list(endpoint_ids)),
                deliveries.c.status.in_(OPEN_STATUSES),
                deliveries.c.lease_until >= now,
            )
            .group_by(deliveries.c.endpoint_id)
        )
        return {endpoint_id: int(count) for endpoint_id, count in rows}

    def lease(self, delivery_ids: Sequence[str], token: str, until: datetime) -> None:
        self._session.execute(
            update(deliveries)
            .where(deliveries.c.delivery_id.in_(list(delivery_ids)))
            .values(lease_token=token, lease_until=until)
        )

    def leased_by(self, delivery_id: str, token: str) -> Delivery | None:
        """The delivery, locked, if `token` still holds its lease (an expired lease taken over
        by another worker means that worker records the outcome, not this one)."""
        row = self._session.execute(
            select(deliveries)
            .where(deliveries.c.delivery_id == delivery_id, deliveries.c.lease_token == token)
            .with_for_update()
        ).first()
        return _delivery(row) if row else None

    def add_attempt(self, delivery_id: str, number: int, result: AttemptResult) -> None:
        self._session.execute(
            insert(attempts).values(
                delivery_id=delivery_id,
                number=number,
                at=result.at,
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                error=result.error,
                response=result.response,
            )
        )

    def save(self, delivery: Delivery) -> None:
        """The delivery's state after a transition; its lease ends with it."""
        self._session.execute(
            update(deliveries)
            .where(deliveries.c.delivery_id == delivery.delivery_id)
            .values(
                status=delivery.status.value,
                attempts_made=delivery.attempts_made,
                round_attempts=delivery.round_attempts,
                next_attempt_at=delivery.next_attempt_at,
                delivered_at=delivery.delivered_at,
                last_error=delivery.last_error,
                lease_token=None,
                lease_until=None,
            )
        )

    # -- reading -------------------------------------------------------------------------
    def get(self, delivery_id: str, *, for_update: bool = False) -> Delivery | None:
        query = select(deliveries).where(deliveries.c.delivery_id == delivery_id)
        row = self._session.execute(query.with_for_update() if for_update else query).first()
        return _delivery(row) if row else None

    def attempts_of(self, delivery_id: str) -> list[StoredAttempt]:
        rows = self._session.execute(
            select(attempts).where(attempts.c.delivery_id == delivery_id).order_by(attempts.c.number)
        )
        return [
            StoredAttempt(r.number, AttemptResult(r.at, r.status_code, r.latency_ms, r.error, r.response))
            for r in rows
        ]

    def find(
        self, order_id: str, endpoint_id: str, status: DeliveryStatus | None, limit: int
    ) -> list[Delivery]:
        query = select(deliveries)
        if order_id:
            query = query.where(deliveries.c.order_id == order_id)
        if endpoint_id:
            query = query.where(deliveries.c.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(deliveries.c.status == status.value)
        rows = self._session.execute(
            query.order_by(deliveries.c.created_at, deliveries.c.sequence).limit(limit)
        )
        return [_delivery(r) for r in rows]

    def dead_of_endpoint(self, endpoint_id: str, limit: int) -> list[Delivery]:
        rows = self._session.execute(
            select(deliveries)
            .where(
                deliveries.c.endpoint_id == endpoint_id,
                deliveries.c.status == DeliveryStatus.DEAD.value,
            )
            .order_by(deliveries.c.sequence, deliveries.c.created_at)
            .limit(limit)
            .with_for_update()
        )
        return [_delivery(r) for r in rows]
