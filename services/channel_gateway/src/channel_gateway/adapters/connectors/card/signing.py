"""The acquirer's webhook signature: Stripe's `Stripe-Signature` scheme v1.

Stripe "Check the webhook signatures" (https://docs.stripe.com/webhooks#verify-manually,
also the SDKs' Webhook.Signature: stripe-ruby lib/stripe/webhook.rb, stripe-java
com.stripe.net.Webhook.Signature, stripe-go webhook.ConstructEvent):

    Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]
    v1 = hex(HMAC-SHA256(key = endpoint secret as UTF-8 bytes, msg = "<t>." + raw body))

Several v1 entries appear while the endpoint's secret is being rolled: any match
will do. Other schemes (v0 is a test-mode scheme) are ignored. The timestamp is
signed, so a replay outside the tolerance (300 s, the SDKs' DEFAULT_TOLERANCE) is
refused; so is a timestamp as far in the future (a wrong clock is not trusted).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

from channel_gateway.domain.channel import NotificationRejected

SIGNATURE_HEADER: Final = "Stripe-Signature"
SCHEME: Final = "v1"
TOLERANCE_S: Final = 300
# A header longer than this is not Stripe's (a handful of signatures at most).
HEADER_MAX_CHARS: Final = 2_048


def signature(secret: str, timestamp_s: int, payload: bytes) -> str:
    """The v1 signature of `payload` sent at `timestamp_s`."""
    message = str(timestamp_s).encode() + b"." + payload
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp_s: int, payload: bytes) -> str:
    """The Stripe-Signature value the acquirer sends (used by tests and the sandbox)."""
    return f"t={timestamp_s},{SCHEME}={signature(secret, timestamp_s, payload)}"


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively, whatever mapping the web framework gave us."""
    found = headers.get(name)
    if found is not None:
        return found
    wanted = name.casefold()
    return next((v for k, v in headers.items() if k.casefold() == wanted), None)


def _parse(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, separator, value = item.strip().partition("=")
        if not separator:
            raise NotificationRejected("Stripe-Signature is malformed (want t=<unix>,v1=<hex>)")
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            signatures.append(value)
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        raise NotificationRejected("Stripe-Signature needs exactly one t=<unix seconds>")
    if not signatures:
        raise NotificationRejected(f"Stripe-Signature has no {SCHEME} signature")
    return int(timestamps[0]), signatures


def verify(
    secret: str, header: str | None, payload: bytes, now_s: float, tolerance_s: int = TOLERANCE_S
) -> int:
    """Check a webhook's signature; its signed timestamp, or NotificationRejected with the reason.

    The signature is checked before the time, as Stripe's SDKs do, so a forged message
    is reported as forged even when it is also old."""
    if not header:
        raise NotificationRejected(f"missing {SIGNATURE_HEADER} header")
    if len(header) > HEADER_MAX_CHARS:
        raise NotificationRejected(f"{SIGNATURE_HEADER} header is longer than {HEADER_MAX_CHARS} characters")
    timestamp_s, given = _parse(header)
    expected = signature(secret, timestamp_s, payload)
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header is untrusted input.
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in given):
        raise NotificationRejected(
            f"no {SCHEME} signature matches the payload (wrong secret or altered body)"
        )
    skew_s = now_s - timestamp_s
    if skew_s > tolerance_s:
        raise NotificationRejected(f"timestamp is {skew_s:.0f}s old, outside the {tolerance_s}s tolerance")
    if -skew_s > tolerance_s:
        raise NotificationRejected(
            f"timestamp is {-skew_s:.0f}s in the future, outside the {tolerance_s}s tolerance"
        )
    return timestamp_s
