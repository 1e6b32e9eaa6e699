"""Ledger and settlement facts as protobuf events (ledger.entries, settlement.events)."""

from __future__ import annotations

from paykit.contracts.convert import money_to_proto, timestamp
from paykit.events.v1.ledger_events_pb2 import (
    LedgerEntryPosted,
    LedgerLine,
    SettlementCreated,
    SettlementFailed,
    SettlementPaidOut,
)
from paykit.messaging.envelope import OutgoingEvent, pack
from paykit.messaging.topics import LEDGER_ENTRIES, SETTLEMENT_EVENTS

from accounting.domain.entries import JournalEntry
from accounting.domain.settlement import Settlement

PRODUCER = "accounting"


def entry_posted(entry: JournalEntry) -> OutgoingEvent:
    return pack(
        topic=LEDGER_ENTRIES,
        key=entry.reference,
        event_type="ledger.entry_posted",
        aggregate_type="journal_entry",
        aggregate_id=entry.entry_id,
        payload=LedgerEntryPosted(
            entry_id=entry.entry_id,
            event_id=entry.event_id,
            kind=entry.kind.value,
            reference=entry.reference,
            lines=[
                LedgerLine(
                    account_id=line.account.account_id,
                    side=line.side.value,
                    amount=money_to_proto(line.amount),
                )
                for line in entry.lines
            ],
            posted_at=timestamp(entry.created_at),
        ),
        producer=PRODUCER,
    )


def _settlement_event(
    event_type: str, s: Settlement, payload: SettlementCreated | SettlementPaidOut | SettlementFailed
) -> OutgoingEvent:
    return pack(
        topic=SETTLEMENT_EVENTS,
        key=s.merchant_id,
        event_type=event_type,
        aggregate_type="settlement",
        aggregate_id=s.settlement_id,
        payload=payload,
        producer=PRODUCER,
    )


def settlement_created(s: Settlement) -> OutgoingEvent:
    return _settlement_event(
        "settlement.created",
        s,
        SettlementCreated(
            settlement_id=s.settlement_id,
            merchant_id=s.merchant_id,
            amount=money_to_proto(s.amount),
            channel=s.channel,
        ),
    )


def settlement_paid_out(s: Settlement) -> OutgoingEvent:
    return _settlement_event(
        "settlement.paid_out",
        s,
        SettlementPaidOut(
            settlement_id=s.settlement_id,
            merchant_id=s.merchant_id,
            amount=money_to_proto(s.amount),
            payout_reference=s.payout_reference,
            paid_out_at=timestamp(s.paid_out_at),
        ),
    )


def settlement_failed(s: Settlement) -> OutgoingEvent:
    return _settlement_event(
        "settlement.failed",
        s,
        SettlementFailed(
            settlement_id=s.settlement_id,
            merchant_id=s.merchant_id,
            amount=money_to_proto(s.amount),
            failure=s.failure,
        ),
    )
