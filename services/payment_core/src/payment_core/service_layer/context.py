"""What payment-core's use cases share: the unit of work, the gateway port, the policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from payment_core.adapters.gateway_client import ChargeAnswer, CloseOutcome, QueryAnswer
from payment_core.domain.payment import Payment
from payment_core.domain.refund import Refund, RefundResult
from payment_core.domain.routing import RouteRule
from payment_core.domain.schedule import DEFAULT_QUERY_SCHEDULE_S
from payment_core.service_layer.unit_of_work import PaymentUnitOfWork

UowFactory = Callable[[], PaymentUnitOfWork]


class GatewayPort(Protocol):
    async def charge(self, payment: Payment) -> ChargeAnswer: ...

    async def query(self, payment: Payment) -> QueryAnswer: ...

    async def close(self, payment: Payment) -> tuple[CloseOutcome, str]: ...

    async def refund(self, refund: Refund, payment: Payment) -> RefundResult | None: ...

    async def query_refund(self, refund: Refund) -> RefundResult | None: ...


class HealthPort(Protocol):
    def is_healthy(self, channel: str) -> bool: ...

    async def refresh_if_stale(self) -> None: ...

    async def record_charge(self, channel: str, answer: ChargeAnswer) -> None: ...


@dataclass(frozen=True)
class Lifecycle:
    """Timings of order-loss prevention and refunds; every one configurable."""

    query_schedule: Sequence[float] = DEFAULT_QUERY_SCHEDULE_S
    refund_retry_schedule: Sequence[float] = (2, 5, 15, 60, 300)
    default_expiry: timedelta = timedelta(minutes=30)
    # How long a worker holds a claimed payment or refund before another may take it.
    lease: timedelta = timedelta(seconds=30)


@dataclass
class PaymentCore:
    uow_factory: UowFactory
    gateway: GatewayPort
    rules: Sequence[RouteRule]
    health: HealthPort
    lifecycle: Lifecycle = field(default_factory=Lifecycle)


def now_utc() -> datetime:
    return datetime.now(UTC)
