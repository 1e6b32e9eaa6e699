"""Settlement: a merchant's available balance moves to in transit, then channel-gateway pays it out.

The move and the settlement row commit together before the payout is asked
for; the payout's answer posts PAID_OUT (in transit -> bank) or FAILED (in
transit -> available). No answer leaves it PENDING and a worker asks again,
which is safe because payouts are idempotent on the settlement id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from paykit.db import run_blocking
from paykit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from paykit.ids import IdKind, new_id
from paykit.money import CurrencyError, Money, exponent

from accounting.adapters import events
from accounting.adapters.gateway_client import PayoutAnswer, PayoutOutcome
from accounting.domain import accounts as chart
from accounting.domain import posting_rules as rules
from accounting.domain import settlement as model
from accounting.domain.settlement import Settlement, SettlementStatus
from accounting.service_layer.posting import post
from accounting.service_layer.unit_of_work import UowFactory

RETRY_S: Sequence[float] = (2, 5, 15, 60, 300)
LEASE = timedelta(seconds=30)


class PayoutPort(Protocol):
    async def payout(self, settlement: Settlement) -> PayoutAnswer: ...


@dataclass
class Settlements:
    uow_factory: UowFactory
    gateway: PayoutPort
    payout_channel: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _open(self, key: str, merchant_id: str, currency: str) -> Settlement:
        if not key:
            raise InvalidArgument("idempotency_key", "is required")
        try:
            exponent(currency)
        except CurrencyError as exc:
            raise InvalidArgument("currency", str(exc)) from exc
        available = chart.merchant_available(merchant_id, currency)
        now = self.clock()
        with self.uow_factory() as uow:
            existing = uow.settlements.by_key(key)
            if existing is not None:
                if (existing.merchant_id, existing.amount.currency) != (merchant_id, currency):
                    raise AlreadyExists(
                        f"idempotency_key {key!r} was used for settlement {existing.settlement_id} "
                        f"of {existing.merchant_id} in {existing.amount.currency}",
                        field="idempotency_key",
                    )
                return existing
            stored = uow.ledger.account(available.account_id, for_update=True)
            if stored is None or not stored.balance.is_positive:
                balance = stored.balance if stored else Money.zero(currency)
                raise FailedPrecondition(
                    f"merchant {merchant_id} has nothing available to settle in {currency} ({balance})"
                )
            settlement = Settlement(
                settlement_id=new_id(IdKind.SETTLEMENT),
                idempotency_key=key,
                merchant_id=merchant_id,
                amount=stored.balance,
                channel=self.payout_channel,
                status=SettlementStatus.PENDING,
                created_at=now,
                next_attempt_at=now + LEASE,
            )
            uow.settlements.add(settlement)
            post(
                uow,
                [
                    rules.settlement(
                        settlement.settlement_id,
                        merchant_id,
                        settlement.amount,
                        new_id(IdKind.JOURNAL_ENTRY),
                        now,
                    )
                ],
            )
            uow.publish(events.settlement_created(settlement))
            uow.commit()
            return settlement

    def _answer(self, settlement_id: str, answer: PayoutAnswer) -> Settlement:
        now = self.clock()
        with self.uow_factory() as uow:
            settlement = uow.settlements.get(settlement_id, for_update=True)
            if settlement is None:
                raise NotFound(f"settlement {settlement_id} not found")
            if settlement.status is not SettlementStatus.PENDING:
                return settlement
            match answer.outcome:
                case PayoutOutcome.PAID:
                    done = model.paid_out(settlement, answer.reference, now)
                    entry = rules.payout(
                        settlement_id,
                        settlement.merchant_id,
                        settlement.amount,
                        new_id(IdKind.JOURNAL_ENTRY),
                        now,
                    )
                    post(uow, [entry])
                    uow.settlements.save(done)
                    uow.publish(events.settlement_paid_out(done))
                case PayoutOutcome.FAILED:
                    done = model.failed(settlement, answer.detail)
                    entry = rules.payout_failed(
                        settlement_id,
                        settlement.merchant_id,
                        settlement.amount,
                        new_id(IdKind.JOURNAL_ENTRY),
                        now,
                    )
                    post(uow, [entry])
                    uow.settlements.save(done)
                    uow.publish(events.settlement_failed(done))
                case PayoutOutcome.NO_ANSWER:
                    delay = RETRY_S[min(settlement.attempts, len(RETRY_S) - 1)]
                    done = replace(
                        settlement,
                        attempts=settlement.attempts + 1,
                        next_attempt_at=now + timedelta(seconds=delay),
                    )
                    uow.settlements.save(done)
            uow.commit()
            return done

    async def run(self, key: str, merchant_id: str, currency: str) -> Settlement:
        if not merchant_id:
            raise InvalidArgument("merchant_id", "is required")
        if not currency:
            raise InvalidArgument("currency", "is required")
        settlement = await run_blocking(self._open, key, merchant_id, currency)
        if settlement.status is not SettlementStatus.PENDING:
            return settlement
        answer = await self.gateway.payout(settlement)
        return await run_blocking(self._answer, settlement.settlement_id, answer)

    def get(self, settlement_id: str) -> tuple[Settlement, list[str]]:
        if not settlement_id:
            raise InvalidArgument("settlement_id", "is required")
        with self.uow_factory() as uow:
            settlement = uow.settlements.get(settlement_id)
            if settlement is None:
                raise NotFound(f"settlement {settlement_id} not found")
            entry_ids = [
                e.entry_id
                for e in (
                    uow.ledger.entry(event_id=f"stl:{settlement_id}"),
                    uow.ledger.entry(event_id=f"payout:{settlement_id}"),
                )
                if e is not None
            ]
        return settlement, entry_ids

    def _claim(self) -> list[Settlement]:
        now = self.clock()
        with self.uow_factory() as uow:
            claimed = uow.settlements.claim_due(now, 20, now + LEASE)
            uow.commit()
            return claimed

    async def retry_due(self) -> int:
        """Ask again for payouts that got no answer; fits PeriodicTask."""
        due = await run_blocking(self._claim)
        for settlement in due:
            answer = await self.gateway.payout(settlement)
            await run_blocking(self._answer, settlement.settlement_id, answer)
        return len(due)
