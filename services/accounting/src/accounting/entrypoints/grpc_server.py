"""AccountingService over gRPC."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from paykit.accounting.v1 import accounting_pb2 as pb
from paykit.accounting.v1 import accounting_pb2_grpc
from paykit.contracts.convert import money_from_proto, money_to_proto, timestamp
from paykit.db import run_blocking
from paykit.errors import InvalidArgument
from paykit.money import Money

from accounting.adapters.repository import StoredAccount
from accounting.domain.accounts import Side
from accounting.domain.entries import JournalEntry
from accounting.domain.settlement import Settlement
from accounting.service_layer import adjustments, queries
from accounting.service_layer.ledger import release_payment
from accounting.service_layer.settlement import Settlements
from accounting.service_layer.unit_of_work import UowFactory

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AccountingService"].full_name
_SIDE = {Side.DEBIT: pb.SIDE_DEBIT, Side.CREDIT: pb.SIDE_CREDIT}
_SIDE_IN = {pb.SIDE_DEBIT: Side.DEBIT, pb.SIDE_CREDIT: Side.CREDIT}


def account_to_proto(stored: StoredAccount) -> pb.Account:
    a = stored.account
    return pb.Account(
        account_id=a.account_id,
        type=a.type.value,
        currency=a.currency,
        owner=a.owner,
        normal_side=_SIDE[a.normal_side],
        balance=money_to_proto(stored.balance),
        must_not_go_negative=a.must_not_go_negative,
    )


def entry_to_proto(e: JournalEntry) -> pb.JournalEntry:
    return pb.JournalEntry(
        entry_id=e.entry_id,
        event_id=e.event_id,
        kind=e.kind.value,
        description=e.description,
        reference=e.reference,
        lines=[
            pb.JournalLine(
                account_id=line.account.account_id, side=_SIDE[line.side], amount=money_to_proto(line.amount)
            )
            for line in e.lines
        ],
        actor=e.actor,
        reason=e.reason,
        created_at=timestamp(e.created_at),
        reverses_entry_id=e.reverses_entry_id,
    )


def settlement_to_proto(s: Settlement, entry_ids: list[str]) -> pb.Settlement:
    return pb.Settlement(
        settlement_id=s.settlement_id,
        merchant_id=s.merchant_id,
        amount=money_to_proto(s.amount),
        status=pb.SettlementStatus.Value(f"SETTLEMENT_STATUS_{s.status.value}"),
        channel=s.channel,
        payout_reference=s.payout_reference,
        failure=s.failure,
        created_at=timestamp(s.created_at),
        paid_out_at=timestamp(s.paid_out_at),
        entry_ids=entry_ids,
    )


class AccountingServicer(accounting_pb2_grpc.AccountingServiceServicer):
    def __init__(self, uow_factory: UowFactory, settlements: Settlements) -> None:
        self._uow_factory = uow_factory
        self._settlements = settlements

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.Balance:
        found = await run_blocking(
            queries.balance, self._uow_factory, request.account_id, request.merchant_id, request.currency
        )
        reply = pb.Balance(accounts=[account_to_proto(a) for a in found.accounts])
        for name in ("pending", "available", "in_transit"):
            amount: Money | None = getattr(found, name)
            if amount is not None:
                getattr(reply, name).CopyFrom(money_to_proto(amount))
        return reply

    async def GetAccountEntries(
        self, request: pb.GetAccountEntriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAccountEntriesResponse:
        if not request.account_id:
            raise InvalidArgument("account_id", "is required")
        rows, token = await run_blocking(
            queries.account_lines,
            self._uow_factory,
            request.account_id,
            request.page_size,
            request.page_token,
        )
        return pb.GetAccountEntriesResponse(
            lines=[
                pb.AccountLine(
                    line_id=r.line_id,
                    entry_id=r.entry_id,
                    kind=r.kind,
                    side=_SIDE[Side(r.side)],
                    amount=money_to_proto(Money(r.amount_minor, r.currency)),
                    created_at=timestamp(r.created_at),
                )
                for r in rows
            ],
            next_page_token=token,
        )

    async def GetJournalEntry(
        self, request: pb.GetJournalEntryRequest, context: grpc.aio.ServicerContext
    ) -> pb.JournalEntry:
        found = await run_blocking(queries.entry, self._uow_factory, request.entry_id, request.event_id)
        return entry_to_proto(found)

    async def TrialBalance(
        self, request: pb.TrialBalanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.TrialBalanceResponse:
        trial = await run_blocking(queries.trial_balance, self._uow_factory)
        return pb.TrialBalanceResponse(
            currencies=[
                pb.CurrencyTotals(
                    currency=currency,
                    debits=money_to_proto(Money(debits, currency)),
                    credits=money_to_proto(Money(credits, currency)),
                    difference=money_to_proto(Money(debits - credits, currency)),
                )
                for currency, (debits, credits) in sorted(trial.totals.items())
            ],
            entries=trial.entries,
            balanced=trial.balanced,
        )

    async def PostAdjustment(
        self, request: pb.PostAdjustmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.JournalEntry:
        lines = [
            adjustments.RequestedLine(
                line.account_id, _SIDE_IN.get(line.side), money_from_proto(line.amount, f"lines[{i}].amount")
            )
            for i, line in enumerate(request.lines)
        ]
        entry = await run_blocking(
            adjustments.post_adjustment,
            self._uow_factory,
            request.idempotency_key,
            lines,
            request.reason,
            request.actor,
            request.reference,
        )
        return entry_to_proto(entry)

    async def ReverseEntry(
        self, request: pb.ReverseEntryRequest, context: grpc.aio.ServicerContext
    ) -> pb.JournalEntry:
        entry = await run_blocking(
            adjustments.reverse,
            self._uow_factory,
            request.idempotency_key,
            request.entry_id,
            request.reason,
            request.actor,
        )
        return entry_to_proto(entry)

    async def ReleaseFunds(
        self, request: pb.ReleaseFundsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseFundsResponse:
        def release() -> JournalEntry | None:
            with self._uow_factory() as uow:
                entry = release_payment(uow, request.payment_id, datetime.now(UTC))
                uow.commit()
                return entry

        entry = await run_blocking(release)
        return pb.ReleaseFundsResponse(entry=entry_to_proto(entry)) if entry else pb.ReleaseFundsResponse()

    async def RunSettlement(
        self, request: pb.RunSettlementRequest, context: grpc.aio.ServicerContext
    ) -> pb.Settlement:
        settlement = await self._settlements.run(
            request.idempotency_key, request.merchant_id, request.currency
        )
        _, entry_ids = await run_blocking(self._settlements.get, settlement.settlement_id)
        return settlement_to_proto(settlement, entry_ids)

    async def GetSettlement(
        self, request: pb.GetSettlementRequest, context: grpc.aio.ServicerContext
    ) -> pb.Settlement:
        settlement, entry_ids = await run_blocking(self._settlements.get, request.settlement_id)
        return settlement_to_proto(settlement, entry_ids)

    async def ListPostingFailures(
        self, request: pb.ListPostingFailuresRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPostingFailuresResponse:
        if not 0 <= request.page_size <= queries.MAX_PAGE:
            raise InvalidArgument("page_size", f"must be 0..{queries.MAX_PAGE}")

        def read() -> list:  # type: ignore[type-arg]
            with self._uow_factory() as uow:
                return uow.ledger.failures(request.page_size or queries.DEFAULT_PAGE)

        def read_waiting() -> list:  # type: ignore[type-arg]
            with self._uow_factory() as uow:
                return uow.ledger.deferred(request.page_size or queries.DEFAULT_PAGE)

        rows = await run_blocking(read)
        waiting = await run_blocking(read_waiting)
        refused = [
            pb.PostingFailure(
                event_id=r.event_id,
                event_type=r.event_type,
                reason=r.reason,
                failed_at=timestamp(r.failed_at),
            )
            for r in rows
        ]
        # Not failures yet, but not posted either: shown so nothing waits unseen.
        deferred = [
            pb.PostingFailure(
                event_id=w.event_id,
                event_type="refund.succeeded",
                reason=f"waiting for the capture of payment {w.payment_id}",
                failed_at=timestamp(w.deferred_at),
            )
            for w in waiting
        ]
        return pb.ListPostingFailuresResponse(failures=refused + deferred)
