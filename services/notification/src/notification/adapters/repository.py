"""Storing endpoints, deliveries and attempts; ORM rows stop here (domain objects leave)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from paykit.db.bulk import insert_from_arrays
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from notification.adapters.tables import attempts, deliveries, endpoints
from notification.domain.breaker import Breaker
from notification.domain.delivery import AttemptResult, Delivery, DeliveryStatus
from notification.domain.endpoint import Endpoint

# One statement claims and leases. Per enabled endpoint, its room is its in-flight
# limit (domain/breaker.py BreakerPolicy.in_flight_limit: the concurrency when CLOSED,
# 0 when OPEN, 1 when HALF_OPEN) less the deliveries leased to it now (by any replica).
# Into that room go its first due, unleased deliveries in order that pass the ordering
# rule (domain/delivery.py may_attempt: no earlier delivery of the same order to the
# same endpoint still open). The lateral walk uses deliveries_due_by_endpoint and stops
# at the room, so a claim costs what it takes, not the backlog, and one endpoint's
# backlog cannot fill the batch. Rows another worker holds are skipped.
_CLAIM = text(
    """
    WITH busy AS (
        SELECT endpoint_id, count(*) AS leased FROM deliveries
        WHERE lease_token IS NOT NULL AND status IN ('PENDING', 'RETRYING') AND lease_until >= :now
        GROUP BY endpoint_id
    ), room AS (
        SELECT e.endpoint_id,
               CASE WHEN e.breaker_failures < :threshold THEN :per_endpoint
                    WHEN e.breaker_open_until > :now THEN 0
                    ELSE 1 END - coalesce(b.leased, 0) AS free
        FROM endpoints e LEFT JOIN busy b ON b.endpoint_id = e.endpoint_id
        WHERE e.enabled
    ), picked AS (
        SELECT d.delivery_id, d.next_attempt_at, d.sequence
        FROM room r
        CROSS JOIN LATERAL (
            SELECT d.delivery_id, d.next_attempt_at, d.sequence FROM deliveries d
            WHERE d.endpoint_id = r.endpoint_id
              AND d.status IN ('PENDING', 'RETRYING')
              AND d.next_attempt_at <= :now
              AND (d.lease_until IS NULL OR d.lease_until < :now)
              AND NOT EXISTS (
                  SELECT 1 FROM deliveries p
                  WHERE p.endpoint_id = d.endpoint_id AND p.order_id = d.order_id
                    AND p.sequence < d.sequence AND p.status IN ('PENDING', 'RETRYING'))
            ORDER BY d.next_attempt_at, d.sequence
            LIMIT greatest(r.free, 0)
            FOR UPDATE SKIP LOCKED
        ) d
        WHERE r.free > 0
        ORDER BY d.next_attempt_at, d.sequence
        LIMIT :limit
    )
    UPDATE deliveries d SET lease_token = :token, lease_until = :until
    FROM picked, endpoints e
    WHERE d.delivery_id = picked.delivery_id AND e.endpoint_id = d.endpoint_id
    RETURNING d.*, e.url, e.secret, e.previous_secret, e.previous_secret_expires_at
    """
)

# Taken in one order (sorted) by every consumer: two batches sharing orders cannot deadlock.
_LOCK_ORDERS = text(
    """
    SELECT pg_advisory_xact_lock(hashtextextended(o, 55))
    FROM (SELECT DISTINCT o FROM unnest(CAST(:orders AS text[])) AS o ORDER BY o) AS sorted
    """
)

_LAST_SEQUENCES = text(
    """
    SELECT p.endpoint_id, p.order_id, coalesce(max(d.sequence), 0) AS last
    FROM unnest(CAST(:endpoint_ids AS text[]), CAST(:order_ids AS text[])) AS p(endpoint_id, order_id)
    LEFT JOIN deliveries d ON d.endpoint_id = p.endpoint_id AND d.order_id = p.order_id
    GROUP BY p.endpoint_id, p.order_id
    """
)

_NEW_DELIVERY_COLUMNS = (
    "delivery_id", "endpoint_id", "merchant_id", "event_id", "event_type", "order_id", "payload",
    "status", "attempts_made", "round_attempts", "next_attempt_at", "sequence", "last_error", "created_at",
    "trace_context",
)  # fmt: skip
# A replayed event (same event, same endpoint) inserts nothing: RETURNING names what went in.
_ADD_DELIVERIES = (
    insert_from_arrays(deliveries, _NEW_DELIVERY_COLUMNS)
    .on_conflict_do_nothing(constraint="deliveries_event_endpoint")
    .returning(deliveries.c.delivery_id)
)

_ADD_ATTEMPTS = insert_from_arrays(
    attempts, ("delivery_id", "number", "at", "status_code", "latency_ms", "error", "response")
)

# Each delivery's state after its attempt; its lease ends with it.
_SAVE_OUTCOMES = text(
    """
    UPDATE deliveries d SET
        status = u.status, attempts_made = u.attempts_made, round_attempts = u.round_attempts,
        next_attempt_at = u.next_attempt_at, delivered_at = u.delivered_at, last_error = u.last_error,
        lease_token = NULL, lease_until = NULL
    FROM unnest(
        CAST(:delivery_id AS text[]), CAST(:status AS text[]), CAST(:attempts_made AS int[]),
        CAST(:round_attempts AS int[]), CAST(:next_attempt_at AS timestamptz[]),
        CAST(:delivered_at AS timestamptz[]), CAST(:last_error AS text[])
    ) AS u(delivery_id, status, attempts_made, round_attempts, next_attempt_at, delivered_at, last_error)
    WHERE d.delivery_id = u.delivery_id
    """
)


@dataclass(frozen=True)
class Candidate:
    """A due delivery with what sending it needs from its endpoint."""

    delivery: Delivery
    url: str
    endpoint: Endpoint = field(repr=False)


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
        trace_context=row.trace_context,
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

    def of_merchants(self, merchant_ids: Collection[str]) -> dict[str, list[Endpoint]]:
        """Every endpoint of each merchant, in endpoint id order; a merchant with none is absent."""
        rows = self._session.execute(
            select(endpoints)
            .where(endpoints.c.merchant_id.in_(sorted(set(merchant_ids))))
            .order_by(endpoints.c.endpoint_id)
        )
        found: dict[str, list[Endpoint]] = {}
        for row in rows:
            found.setdefault(row.merchant_id, []).append(_endpoint(row))
        return found

    def breakers(self, endpoint_ids: Collection[str], *, for_update: bool = True) -> dict[str, Breaker]:
        """Locked by default (in id order): results for one endpoint recorded at once by two
        workers must not lose a failure count."""
        query = (
            select(endpoints.c.endpoint_id, endpoints.c.breaker_failures, endpoints.c.breaker_open_until)
            .where(endpoints.c.endpoint_id.in_(sorted(set(endpoint_ids))))
            .order_by(endpoints.c.endpoint_id)
        )
        rows = self._session.execute(query.with_for_update() if for_update else query)
        return {r.endpoint_id: Breaker(r.breaker_failures, r.breaker_open_until) for r in rows}

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
    def lock_orders(self, order_ids: Sequence[str]) -> None:
        """Serialise the sequence numbering of these orders' deliveries across consumers."""
        if order_ids:
            self._session.execute(_LOCK_ORDERS, {"orders": list(order_ids)})

    def last_sequences(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The highest sequence per (endpoint id, order id); 0 for a pair with no delivery yet."""
        if not pairs:
            return {}
        rows = self._session.execute(
            _LAST_SEQUENCES,
            {"endpoint_ids": [e for e, _ in pairs], "order_ids": [o for _, o in pairs]},
        )
        return {(r.endpoint_id, r.order_id): int(r.last) for r in rows}

    def add_many(self, new: Sequence[Delivery]) -> set[str]:
        """The ids inserted; a delivery of an event already delivered to its endpoint (a replay)
        is left out."""
        if not new:
            return set()
        rows = self._session.execute(
            _ADD_DELIVERIES,
            {
                "delivery_id": [d.delivery_id for d in new],
                "endpoint_id": [d.endpoint_id for d in new],
                "merchant_id": [d.merchant_id for d in new],
                "event_id": [d.event_id for d in new],
                "event_type": [d.event_type for d in new],
                "order_id": [d.order_id for d in new],
                "payload": [d.payload for d in new],
                "status": [d.status.value for d in new],
                "attempts_made": [d.attempts_made for d in new],
                "round_attempts": [d.round_attempts for d in new],
                "next_attempt_at": [d.next_attempt_at for d in new],
                "sequence": [d.sequence for d in new],
                "last_error": [d.last_error for d in new],
                "created_at": [d.created_at for d in new],
                # As JSON text: the array parameter is cast to jsonb[] by PostgreSQL, not by us.
                "trace_context": [json.dumps(d.trace_context) if d.trace_context else None for d in new],
            },
        )
        return {r.delivery_id for r in rows}

    # -- the worker ---------------------------------------------------------------------
    def claim(
        self,
        now: datetime,
        limit: int,
        per_endpoint: int,
        breaker_threshold: int,
        token: str,
        until: datetime,
    ) -> list[Candidate]:
        """Lease up to `limit` due deliveries to `token` until `until`, within each endpoint's
        in-flight room; in due order."""
        rows = self._session.execute(
            _CLAIM,
            {
                "now": now,
                "limit": limit,
                "per_endpoint": per_endpoint,
                "threshold": breaker_threshold,
                "token": token,
                "until": until,
            },
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
            found.append(Candidate(_delivery(row), row.url, endpoint))
        found.sort(key=lambda c: (c.delivery.next_attempt_at or now, c.delivery.sequence))
        return found

    def leased_by(self, leases: Mapping[str, str]) -> dict[str, Delivery]:
        """Of the deliveries {id: lease token}, those whose token still holds the lease, locked.

        An expired lease taken over by another worker means that worker records the
        outcome, not this one. Locked in id order, the same for every recorder.
        """
        if not leases:
            return {}
        rows = self._session.execute(
            select(deliveries)
            .where(deliveries.c.delivery_id.in_(sorted(leases)))
            .order_by(deliveries.c.delivery_id)
            .with_for_update()
        )
        return {r.delivery_id: _delivery(r) for r in rows if r.lease_token == leases[r.delivery_id]}

    def record_outcomes(self, outcomes: Sequence[tuple[Delivery, AttemptResult]]) -> None:
        """Each delivery's attempt (numbered by its attempts_made) and its state after it."""
        if not outcomes:
            return
        self._session.execute(
            _ADD_ATTEMPTS,
            {
                "delivery_id": [d.delivery_id for d, _ in outcomes],
                "number": [d.attempts_made for d, _ in outcomes],
                "at": [r.at for _, r in outcomes],
                "status_code": [r.status_code for _, r in outcomes],
                "latency_ms": [r.latency_ms for _, r in outcomes],
                "error": [r.error for _, r in outcomes],
                "response": [r.response for _, r in outcomes],
            },
        )
        self._session.execute(
            _SAVE_OUTCOMES,
            {
                "delivery_id": [d.delivery_id for d, _ in outcomes],
                "status": [d.status.value for d, _ in outcomes],
                "attempts_made": [d.attempts_made for d, _ in outcomes],
                "round_attempts": [d.round_attempts for d, _ in outcomes],
                "next_attempt_at": [d.next_attempt_at for d, _ in outcomes],
                "delivered_at": [d.delivered_at for d, _ in outcomes],
                "last_error": [d.last_error for d, _ in outcomes],
            },
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
