"""Which stored charge or refund a verified notification is about, and what it tells us of it.

A notification is trusted only for something we asked that channel for:
a payment notification needs our charge of that payment at that channel; a
refund notification needs our refund, at that channel, of that payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from channel_gateway.adapters.repository import GatewayRepository
from channel_gateway.domain.channel import (
    PaymentNotification,
    RefundNotification,
    RefundReply,
    RefundState,
    VerifiedNotification,
)


@dataclass(frozen=True)
class Subject:
    """What we stored about the notification's charge or refund: the event key and trace."""

    order_id: str
    trace_headers: dict[str, str]


def subject_of(repo: GatewayRepository, channel: str, note: VerifiedNotification) -> Subject | str:
    """The stored subject, or the reason the notification names nothing of ours."""
    match note:
        case PaymentNotification():
            charge = repo.get_charge(note.payment_id, channel)
            if charge is None:
                return f"no charge {note.payment_id} at {channel}"
            return Subject(charge.order_id, charge.trace_headers)
        case RefundNotification():
            refund = repo.get_refund(note.refund_id)
            if refund is None or refund.channel != channel:
                return f"no refund {note.refund_id} at {channel}"
            if refund.payment_id != note.payment_id:
                return f"refund {note.refund_id} is of payment {refund.payment_id}, not {note.payment_id}"
            return Subject(refund.order_id, refund.trace_headers)
        case _:
            assert_never(note)


def refund_id_of(note: VerifiedNotification) -> str | None:
    return note.refund_id if isinstance(note, RefundNotification) else None


def refund_reply_of(note: RefundNotification) -> RefundReply:
    """A refund notification read as the channel's final answer about the refund."""
    return RefundReply(
        state=RefundState.SUCCEEDED if note.succeeded else RefundState.FAILED,
        channel_refund_no=note.channel_refund_no,
        amount=note.amount,
        refunded_at=note.occurred_at if note.succeeded else None,
    )
