"""The one interface every channel sits behind. A new channel is one new package."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from channel_gateway.domain.channel import (
    ChargeCommand,
    ChargeReply,
    CloseReply,
    PayoutCommand,
    PayoutReply,
    QueryReply,
    RawExchange,
    RefundCommand,
    RefundReply,
    VerifiedNotification,
)


class ChannelConnector(Protocol):
    """Every call raises ChannelUnavailable when the channel did not answer, answered 5xx or garbage,
    and ChannelConflict when it holds something else under our idempotency key."""

    name: str

    async def charge(self, command: ChargeCommand) -> tuple[ChargeReply, RawExchange]:
        """Ask the channel to take the money."""
        ...

    async def query(self, payment_id: str) -> tuple[QueryReply, RawExchange]: ...

    async def refund(self, command: RefundCommand) -> tuple[RefundReply, RawExchange]:
        """Ask the channel to give money back; idempotent at the channel on command.refund_id."""
        ...

    async def query_refund(self, refund_id: str, payment_id: str) -> tuple[RefundReply, RawExchange]: ...

    async def close(self, payment_id: str) -> tuple[CloseReply, RawExchange]:
        """Close an unpaid charge so the payer can no longer pay it (also one never received)."""
        ...

    async def payout(self, command: PayoutCommand) -> tuple[PayoutReply, RawExchange]:
        """Pay a settlement out to the merchant's bank account; idempotent at the channel on
        command.settlement_id, so asking again after no answer never pays twice."""
        ...

    def verify_notification(self, path: str, headers: Mapping[str, str], body: bytes) -> VerifiedNotification:
        """Verify and parse a webhook (payment or refund); raises NotificationRejected with the reason."""
        ...

    def acknowledgement(self, accepted: bool) -> tuple[int, str]:
        """The HTTP status and exact body the channel expects in answer to a notification."""
        ...

    async def aclose(self) -> None:
        """Release the connector's connections at shutdown."""
        ...
