"""The one interface every channel sits behind. A new channel is one new package.

A package `channel_gateway.adapters.connectors.<kind>` holds one channel's wire models
("transformers": the only place money turns into the channel's format and back), its
signing and verification, and its error table (every channel code mapped to a
ChannelErrorKind, the raw code kept). It shares nothing with the other channel packages
beyond this interface and channel_gateway.domain.channel. registry.py names each kind's
factory: `build(channel_name, config) -> ChannelConnector`, with config the channel
account's settings (ids, keys, certificates) as stored encrypted in the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Protocol

from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChargeCommand,
    ChargeReply,
    CloseReply,
    PayoutCommand,
    PayoutReply,
    QueryReply,
    RawExchange,
    RefundCommand,
    RefundReply,
    StatementFile,
    VerifiedNotification,
)


class ChannelConnector(Protocol):
    """Every call raises ChannelUnavailable when the channel did not answer, answered 5xx or garbage
    (the outcome is unknown), ChannelRefused when it answered with a refusal that proves nothing
    was done (invalid request, authentication, rate limit, unavailable; a charge's decline is a
    ChargeReply state instead), and ChannelConflict when it holds something else under our
    idempotency key."""

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

    async def download_statement(self, day: date) -> tuple[StatementFile, RawExchange]:
        """The channel's statement (trade bill) of `day`, in the channel's own format."""
        ...

    def verify_notification(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> VerifiedNotification | AcknowledgedOnly:
        """Verify and parse a webhook (payment or refund); AcknowledgedOnly for a genuine one with
        nothing to act on; raises NotificationRejected with the reason."""
        ...

    def acknowledgement(self, accepted: bool) -> tuple[int, str]:
        """The HTTP status and exact body the channel expects in answer to a notification."""
        ...

    async def aclose(self) -> None:
        """Release the connector's connections at shutdown."""
        ...
