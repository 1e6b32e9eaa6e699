"""A merchant's webhook endpoint: what it wants, and the secrets that sign for it."""

from __future__ import annotations

import secrets as random_source
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from paykit.errors import InvalidArgument

# The event types a merchant can subscribe to; the consumer turns exactly these into deliveries.
KNOWN_EVENT_TYPES = (
    "order.created",
    "order.paid",
    "order.closed",
    "order.refunded",
    "refund.succeeded",
    "refund.failed",
)
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
DEFAULT_ROTATION_OVERLAP_S = 24 * 3600
MAX_ROTATION_OVERLAP_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    merchant_id: str
    url: str
    event_types: tuple[str, ...]
    enabled: bool
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    created_at: datetime

    def __repr__(self) -> str:
        # Never the secrets: a repr ends up in logs and tracebacks.
        return f"Endpoint({self.endpoint_id!r}, merchant={self.merchant_id!r}, url={self.url!r})"

    def wants(self, event_type: str) -> bool:
        return self.enabled and (not self.event_types or event_type in self.event_types)

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a request sent at `now`: the current one, and the previous
        one while the rotation's overlap lasts."""
        found = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at is not None
            and now < self.previous_secret_expires_at
        ):
            found.append(self.previous_secret)
        return found


def new_secret() -> str:
    return SECRET_PREFIX + random_source.token_urlsafe(SECRET_BYTES)


def checked_event_types(event_types: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted({t for t in event_types if t not in KNOWN_EVENT_TYPES})
    if unknown:
        raise InvalidArgument(
            "event_types", f"unknown event type(s) {unknown}; known: {', '.join(KNOWN_EVENT_TYPES)}"
        )
    # Order kept, duplicates dropped: the stored list reads like what was asked for.
    return tuple(dict.fromkeys(event_types))


def rotation_overlap(overlap_s: int) -> timedelta:
    """How long the old secret keeps signing after a rotation (0: the default, 24 h)."""
    if overlap_s < 0 or overlap_s > MAX_ROTATION_OVERLAP_S:
        raise InvalidArgument("overlap_s", f"must be 0..{MAX_ROTATION_OVERLAP_S} seconds, got {overlap_s}")
    return timedelta(seconds=overlap_s or DEFAULT_ROTATION_OVERLAP_S)


def rotated(endpoint: Endpoint, now: datetime, overlap: timedelta) -> Endpoint:
    """A new current secret; the old one keeps signing for `overlap`.

    Only two secrets sign at once: rotating during an overlap drops the oldest.
    """
    return replace(
        endpoint,
        secret=new_secret(),
        previous_secret=endpoint.secret,
        previous_secret_expires_at=now + overlap,
    )
