"""What accounting's integration tests share: the ledger's invariants in plain SQL, an
in-process stand-in for channel-gateway's payouts, events as payment-core publishes
them, and fees computed independently of paykit.money (fractions, not allocate_fee)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from accounting.adapters.gateway_client import PayoutAnswer, PayoutOutcome
from accounting.domain.settlement import Settlement
from paykit.contracts.convert import money_to_proto, timestamp
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.events.v1.payment_events_pb2 import PaymentSucceeded
from paykit.events.v1.refund_events_pb2 import RefundSucceeded
from paykit.messaging.envelope import decode_envelope, pack
from paykit.messaging.topics import PAYMENT_EVENTS, REFUND_EVENTS
from paykit.money import BPS_PER_UNIT, Money, Rounding
from sqlalchemy import Connection, Engine, text

# --- the ledger's invariants, in SQL written for the tests --------------------------------


def ledger_problems(conn: Connection) -> list[str]:
    """Every way the whole ledger breaks double entry; empty when it holds."""
    problems = [
        f"trial balance {r.currency}: debits {r.debits} != credits {r.credits}"
        for r in conn.execute(
            text(
                "SELECT currency,"
                " coalesce(sum(amount_minor) FILTER (WHERE side = 'DEBIT'), 0) AS debits,"
                " coalesce(sum(amount_minor) FILTER (WHERE side = 'CREDIT'), 0) AS credits"
                " FROM journal_lines GROUP BY currency"
            )
        )
        if r.debits != r.credits
    ]
    problems += [
        f"{r.account_id}: balance {r.balance_minor} but its lines sum to {r.from_lines}"
        for r in conn.execute(
            text(
                "SELECT a.account_id, a.balance_minor, coalesce(sum("
                "  CASE WHEN (l.side = 'DEBIT') = (a.type IN ('asset', 'expense'))"
                "  THEN l.amount_minor ELSE -l.amount_minor END), 0) AS from_lines"
                " FROM accounts a LEFT JOIN journal_lines l ON l.account_id = a.account_id"
                " GROUP BY a.account_id, a.balance_minor, a.type"
            )
        )
        if r.balance_minor != r.from_lines
    ]
    problems += [
        f"{r.account_id} must not go negative and is {r.balance_minor}"
        for r in conn.execute(
            text(
                "SELECT account_id, balance_minor FROM accounts"
                " WHERE must_not_go_negative AND balance_minor < 0"
            )
        )
    ]
    return problems


def assert_ledger_sound(engine: Engine) -> None:
    with engine.connect() as conn:
        problems = ledger_problems(conn)
    assert not problems, "\n".join(problems)


@dataclass(frozen=True)
class Footprint:
    """Everything a posting leaves: rows counted, every balance, every capture's progress."""

    entries: int
    lines: int
    outbox: int
    failures: int
    balances: Mapping[str, int]
    captures: Mapping[str, tuple[int, int]]


def footprint(engine: Engine) -> Footprint:
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM journal_entries) AS entries,"
                " (SELECT count(*) FROM journal_lines) AS lines,"
                " (SELECT count(*) FROM outbox) AS outbox,"
                " (SELECT count(*) FROM posting_failures) AS failures"
            )
        ).one()
        balances = dict(conn.execute(text("SELECT account_id, balance_minor FROM accounts")).all())
        captures = {
            r.payment_id: (r.unreleased_minor, r.refunded_minor)
            for r in conn.execute(text("SELECT payment_id, unreleased_minor, refunded_minor FROM captures"))
        }
    return Footprint(counts.entries, counts.lines, counts.outbox, counts.failures, balances, captures)


def entry_count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM journal_entries")).scalar_one())


def balance_of(conn: Connection, account_id: str) -> int:
    found = conn.execute(
        text("SELECT balance_minor FROM accounts WHERE account_id = :a"), {"a": account_id}
    ).scalar_one_or_none()
    return int(found or 0)


# --- fees, computed the long way ------------------------------------------------------------


def fee_minor(amount_minor: int, bps: int, rounding: Rounding) -> int:
    exact = Fraction(amount_minor * bps, BPS_PER_UNIT)
    down = math.floor(exact)
    rest = exact - down
    match rounding:
        case Rounding.DOWN:
            return down
        case Rounding.UP:
            return math.ceil(exact)
        case Rounding.HALF_UP:
            return down + (rest >= Fraction(1, 2))
        case Rounding.HALF_EVEN:
            return down + (rest > Fraction(1, 2) or (rest == Fraction(1, 2) and down % 2 == 1))


# --- channel-gateway's payouts, in process ---------------------------------------------------


@dataclass
class ScriptedPayouts:
    """Answers every payout with `outcome` (the gateway is another service); keeps the calls."""

    outcome: PayoutOutcome = PayoutOutcome.PAID
    calls: list[Settlement] = field(default_factory=list)

    async def payout(self, settlement: Settlement) -> PayoutAnswer:
        self.calls.append(settlement)
        match self.outcome:
            case PayoutOutcome.PAID:
                return PayoutAnswer(PayoutOutcome.PAID, reference=f"po_{settlement.settlement_id}")
            case PayoutOutcome.FAILED:
                return PayoutAnswer(PayoutOutcome.FAILED, detail="ACCOUNT_CLOSED: the bank refused")
            case PayoutOutcome.NO_ANSWER:
                return PayoutAnswer(PayoutOutcome.NO_ANSWER, detail="DEADLINE_EXCEEDED: no answer")


# --- events as payment-core publishes them --------------------------------------------------


def payment_succeeded(
    payment_id: str, merchant: str, channel: str, amount: Money, at: datetime, **fields: Any
) -> Envelope:
    payload = PaymentSucceeded(
        payment_id=payment_id,
        order_id=f"ord_{payment_id}",
        merchant_id=merchant,
        channel=channel,
        amount=money_to_proto(amount),
        succeeded_at=timestamp(at),
        **fields,
    )
    event = pack(
        topic=PAYMENT_EVENTS,
        key=f"ord_{payment_id}",
        event_type="payment.succeeded",
        aggregate_type="payment",
        aggregate_id=payment_id,
        payload=payload,
        producer="payment-core",
    )
    return decode_envelope(event.value)


def refund_succeeded(
    refund_id: str, payment_id: str, merchant: str, channel: str, amount: Money, at: datetime, **fields: Any
) -> Envelope:
    payload = RefundSucceeded(
        refund_id=refund_id,
        payment_id=payment_id,
        order_id=f"ord_{payment_id}",
        merchant_id=merchant,
        channel=channel,
        amount=money_to_proto(amount),
        payment_refunded_total=money_to_proto(amount),
        succeeded_at=timestamp(at),
        **fields,
    )
    event = pack(
        topic=REFUND_EVENTS,
        key=f"ord_{payment_id}",
        event_type="refund.succeeded",
        aggregate_type="refund",
        aggregate_id=refund_id,
        payload=payload,
        producer="payment-core",
    )
    return decode_envelope(event.value)
