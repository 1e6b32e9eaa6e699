"""recon.discrepancies as published through the outbox, keyed by channel.

The matching run (RunReconciliation) publishes discrepancy_found for each discrepancy it
records, and ResolveDiscrepancy (or an automatic resolution) discrepancy_resolved, each in the
transaction that stores the change.
"""

from __future__ import annotations

from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.contracts.convert import timestamp
from paykit.events.v1.recon_events_pb2 import DiscrepancyFound, DiscrepancyResolved
from paykit.messaging.envelope import OutgoingEvent, pack
from paykit.messaging.topics import RECON_DISCREPANCIES

from reconciliation.adapters.repository import DiscrepancyRecord

PRODUCER = "reconciliation"
AGGREGATE = "discrepancy"


def _money(minor: int | None, currency: str) -> MoneyProto | None:
    return None if minor is None else MoneyProto(minor=minor, currency=currency)


def discrepancy_found(d: DiscrepancyRecord) -> OutgoingEvent:
    payload = DiscrepancyFound(
        discrepancy_id=d.discrepancy_id,
        run_id=d.run_id,
        channel=d.channel,
        business_day=d.business_day.isoformat(),
        type=d.type,
        side=d.side,
        kind=d.kind,
        our_id=d.our_id or "",
        channel_txn_id=d.channel_txn_id or "",
        internal_amount=_money(d.internal_amount_minor, d.currency),
        channel_amount=_money(d.channel_amount_minor, d.currency),
        internal_fee=_money(d.internal_fee_minor, d.currency),
        channel_fee=_money(d.channel_fee_minor, d.currency),
        found_at=timestamp(d.created_at),
    )
    return pack(
        topic=RECON_DISCREPANCIES,
        key=d.channel,
        event_type="recon.discrepancy_found",
        aggregate_type=AGGREGATE,
        aggregate_id=d.discrepancy_id,
        payload=payload,
        producer=PRODUCER,
        occurred_at=d.created_at,
    )


def discrepancy_resolved(d: DiscrepancyRecord) -> OutgoingEvent:
    if d.resolved_at is None or d.status == "OPEN":
        raise ValueError(f"discrepancy {d.discrepancy_id} is not resolved")
    payload = DiscrepancyResolved(
        discrepancy_id=d.discrepancy_id,
        run_id=d.run_id,
        channel=d.channel,
        business_day=d.business_day.isoformat(),
        type=d.type,
        status=d.status,
        resolution=d.resolution or "",
        actor=d.actor or "",
        reason=d.reason or "",
        resolved_at=timestamp(d.resolved_at),
        our_id=d.our_id or "",
        channel_txn_id=d.channel_txn_id or "",
    )
    return pack(
        topic=RECON_DISCREPANCIES,
        key=d.channel,
        event_type="recon.discrepancy_resolved",
        aggregate_type=AGGREGATE,
        aggregate_id=d.discrepancy_id,
        payload=payload,
        producer=PRODUCER,
        occurred_at=d.resolved_at,
    )
