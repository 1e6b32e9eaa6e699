"""The one interface every channel sits behind. A new channel is one new package."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from channel_gateway.domain.channel import (
    ChargeCommand,
    ChargeReply,
    QueryReply,
    RawExchange,
    VerifiedNotification,
)


class ChannelConnector(Protocol):
    name: str

    async def charge(self, command: ChargeCommand) -> tuple[ChargeReply, RawExchange]:
        """Ask the channel to take the money; raises ChannelUnavailable when it did not answer."""
        ...

    async def query(self, payment_id: str) -> tuple[QueryReply, RawExchange]: ...

    def verify_notification(self, path: str, headers: Mapping[str, str], body: bytes) -> VerifiedNotification:
        """Verify and parse a webhook; raises NotificationRejected with the reason."""
        ...

    def acknowledgement(self, accepted: bool) -> tuple[int, str]:
        """The HTTP status and exact body the channel expects in answer to a notification."""
        ...
