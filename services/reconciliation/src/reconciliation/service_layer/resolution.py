"""Resolving discrepancies: automatically after each run where it is safe, by an operator otherwise.

Automatic, after a run of a channel's day (every OPEN discrepancy any run of that day found):

* CHANNEL_ONLY payment whose our_id payment-core knows: the channel has money for a payment we
  never saw succeed (a lost notification). payment-core's SyncPayment asks the channel now and
  applies the answer with its usual rules (a success on an order already closed or paid is
  refunded automatically). Succeeded now: AUTO_RESOLVED "payment_fixed". payment-core does not
  know the id (the channel invented it), or the payment is still not paid: stays OPEN.
* AMOUNT_MISMATCH / FEE_MISMATCH of at most RECON_AUTO_ADJUST_MAX_MINOR: an adjustment
  (accounting's PostAdjustment, idempotent on the discrepancy) between the channel's clearing
  account and the suspense account (liability:suspense:<currency>), AUTO_RESOLVED
  "adjusted_to_suspense:<entry id>". Larger: OPEN.
* Every payment the run MATCHED (with or without tolerance): accounting's ReleaseFunds
  (pending -> available, idempotent per payment): only reconciled funds settle.

Each resolution is one transaction: the discrepancy, its audit row, DiscrepancyResolved.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from paykit.db import run_blocking
from paykit.errors import FailedPrecondition, InvalidArgument, NotFound

from reconciliation.adapters import run_files
from reconciliation.adapters.clients import AdjustmentLine, ReleaseOutcome, SyncAnswer, SyncOutcome
from reconciliation.adapters.metrics import set_open
from reconciliation.adapters.repository import AuditEntry, DiscrepancyRecord
from reconciliation.domain.taxonomy import OutcomeType
from reconciliation.service_layer.runs import SYSTEM_ACTOR, Stored, record_resolution
from reconciliation.service_layer.unit_of_work import UowFactory, now_utc

T = TypeVar("T")
# Calls in flight at once to payment-core / accounting: a backlog drains, nobody is flooded.
CONCURRENCY: Final = 16
# Discrepancies a run tries to resolve automatically; the rest wait for the next run.
MAX_AUTO_PER_RUN: Final = 10_000
RELEASE_BATCH: Final = 1_000
MAX_TEXT_CHARS: Final = 500
_AUTO_TYPES: Final = (OutcomeType.CHANNEL_ONLY, OutcomeType.AMOUNT_MISMATCH, OutcomeType.FEE_MISMATCH)


class PaymentsPort(Protocol):
    async def sync_payment(self, payment_id: str) -> SyncAnswer: ...


class LedgerPort(Protocol):
    async def release_funds(self, payment_id: str) -> ReleaseOutcome: ...

    async def post_adjustment(
        self, key: str, lines: list[AdjustmentLine], reason: str, reference: str
    ) -> str | None: ...


@dataclass(frozen=True)
class Resolver:
    uow_factory: UowFactory
    payments: PaymentsPort
    ledger: LedgerPort
    auto_adjust_max_minor: int


async def _bounded(items: Iterable[T], work: Callable[[T], Awaitable[str]]) -> Counter[str]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: T) -> str:
        async with gate:
            return await work(item)

    return Counter(await asyncio.gather(*(one(item) for item in items)))


def _auto_resolve(uow_factory: UowFactory, d: DiscrepancyRecord, resolution: str, reason: str) -> bool:
    with uow_factory() as uow:
        done = record_resolution(uow, d, "AUTO_RESOLVED", resolution, SYSTEM_ACTOR, reason, now_utc())
        uow.commit()
    return done is not None


async def _channel_only(resolver: Resolver, d: DiscrepancyRecord) -> str:
    if d.kind != "PAYMENT" or not d.our_id:
        return "channel_only_left_open"
    answer = await resolver.payments.sync_payment(d.our_id)
    match answer.outcome:
        case SyncOutcome.SUCCEEDED:
            reason = f"payment-core asked the channel: payment {answer.status}"
            if answer.detail:
                reason += f", refunded automatically ({answer.detail})"
            await run_blocking(_auto_resolve, resolver.uow_factory, d, "payment_fixed", reason)
            return "payment_fixed"
        case SyncOutcome.NOT_FOUND:
            return "channel_only_unknown_payment"
        case _:
            return "channel_only_left_open"


def adjustment_lines(d: DiscrepancyRecord) -> tuple[int, list[AdjustmentLine]] | None:
    """The difference (channel minus ours) and its entry: the channel's clearing account against
    suspense. More amount at the channel: it owes us more (debit clearing, credit suspense); a
    higher fee at the channel: it holds less for us (debit suspense, credit clearing)."""
    if d.type == OutcomeType.AMOUNT_MISMATCH:
        ours, theirs, fee = d.internal_amount_minor, d.channel_amount_minor, False
    else:
        ours, theirs, fee = d.internal_fee_minor, d.channel_fee_minor, True
    if ours is None or theirs is None or ours == theirs:
        return None
    diff = theirs - ours
    clearing = f"asset:channel_clearing:{d.channel}:{d.currency}"
    suspense = f"liability:suspense:{d.currency}"
    clearing_debit = (diff > 0) != fee
    return diff, [
        AdjustmentLine(clearing, clearing_debit, abs(diff), d.currency),
        AdjustmentLine(suspense, not clearing_debit, abs(diff), d.currency),
    ]


async def _mismatch(resolver: Resolver, d: DiscrepancyRecord) -> str:
    planned = adjustment_lines(d)
    if planned is None:
        return "mismatch_left_open"
    diff, lines = planned
    if abs(diff) > resolver.auto_adjust_max_minor:
        return "mismatch_above_threshold"
    limit = resolver.auto_adjust_max_minor
    reason = f"{d.type} of {diff} minor units {d.currency} (at most {limit} adjusted automatically)"
    entry_id = await resolver.ledger.post_adjustment(
        f"recon-adj:{d.discrepancy_id}", lines, reason, d.discrepancy_id
    )
    if entry_id is None:
        return "adjustment_failed"
    await run_blocking(_auto_resolve, resolver.uow_factory, d, f"adjusted_to_suspense:{entry_id}", reason)
    return "adjusted_to_suspense"


async def _one(resolver: Resolver, d: DiscrepancyRecord) -> str:
    if d.type == OutcomeType.CHANNEL_ONLY:
        return await _channel_only(resolver, d)
    return await _mismatch(resolver, d)


def _open_of_day(uow_factory: UowFactory, stored: Stored) -> list[DiscrepancyRecord]:
    with uow_factory() as uow:
        return uow.runs.open_of_day(
            stored.channel, stored.day, [t.value for t in _AUTO_TYPES], MAX_AUTO_PER_RUN
        )


async def _release(resolver: Resolver, stored: Stored) -> Counter[str]:
    released: Counter[str] = Counter()
    for batch in run_files.payment_id_batches(stored.matched_payments, RELEASE_BATCH):

        async def release(payment_id: str) -> str:
            return (await resolver.ledger.release_funds(payment_id)).value

        released += await _bounded(batch, release)
    return released


def _save_counts(uow_factory: UowFactory, run_id: str, extra: dict[str, dict[str, int]]) -> None:
    with uow_factory() as uow:
        uow.runs.set_counts(run_id, uow.runs.counts(run_id) | extra)
        uow.commit()


async def resolve_after_run(resolver: Resolver, stored: Stored) -> dict[str, dict[str, int]]:
    """The automatic resolutions of the module docstring; returns what happened, by outcome
    (also kept in the run's counts, "resolutions" and "releases")."""
    candidates = await run_blocking(_open_of_day, resolver.uow_factory, stored)
    resolutions = await _bounded(candidates, lambda d: _one(resolver, d))
    releases = await _release(resolver, stored)
    extra = {"resolutions": dict(resolutions), "releases": dict(releases)}
    await run_blocking(_save_counts, resolver.uow_factory, stored.run_id, extra)
    return extra


# -- by an operator -------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolveDiscrepancy:
    discrepancy_id: str
    resolution: str
    actor: str
    reason: str
    idempotency_key: str


def _text(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidArgument(field, f"at most {MAX_TEXT_CHARS} characters")
    return value


def resolve_discrepancy(uow_factory: UowFactory, command: ResolveDiscrepancy) -> DiscrepancyRecord:
    """An operator's resolution of an OPEN discrepancy, with its audit row and DiscrepancyResolved.
    (The same idempotency_key again is answered by the idempotency interceptor.)"""
    discrepancy_id = _text(command.discrepancy_id, "discrepancy_id")
    resolution = _text(command.resolution, "resolution")
    actor = _text(command.actor, "actor")
    reason = _text(command.reason, "reason")
    with uow_factory() as uow:
        found = uow.runs.get_for_update(discrepancy_id)
        if found is None:
            raise NotFound(f"discrepancy {discrepancy_id!r} not found")
        if found.status != "OPEN":
            raise FailedPrecondition(
                f"discrepancy {discrepancy_id} is already {found.status} "
                f"({found.resolution} by {found.actor})"
            )
        resolved = record_resolution(
            uow, found, "RESOLVED", resolution, actor, reason, now_utc(), command.idempotency_key or None
        )
        if resolved is None:  # unreachable under the row lock; checked, not assumed
            raise FailedPrecondition(f"discrepancy {discrepancy_id} is no longer OPEN")
        uow.commit()
    return resolved


def audit_trail(uow_factory: UowFactory, discrepancy_id: str) -> list[AuditEntry]:
    with uow_factory() as uow:
        return uow.runs.audit_of(discrepancy_id)


def measure_open(uow_factory: UowFactory) -> int:
    """Set the open-discrepancies gauge from the database; returns how many are open."""
    with uow_factory() as uow:
        counts = uow.runs.count_open()
    set_open(counts)
    return sum(counts.values())
