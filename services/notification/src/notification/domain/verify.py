"""Verifying a Paykit webhook signature: copy this module into your receiver.

Pure standard library, no Paykit import. The header looks like

    Paykit-Signature: t=1767225600,v1=5257a8...,v1=9c1f0e...

`t` is the Unix time the request was signed; each `v1` is the lowercase hex
HMAC-SHA256, keyed by one of your endpoint's secrets (UTF-8), of
f"{t}." followed by the raw request body bytes. During a secret rotation two
`v1` values are sent (new and previous secret); accept the request when any
of them matches any secret you hold. Verify against the raw body exactly as
received, before parsing the JSON.

    ok = verify(request.headers["Paykit-Signature"], raw_body, [secret], time.time())
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

DEFAULT_TOLERANCE_S = 300
# A header longer than this is not ours; refusing it bounds the work per request.
MAX_HEADER_CHARS = 4096


def expected_signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def parse_header(header: str) -> tuple[int, list[str]] | None:
    """(timestamp, v1 signatures), or None when the header is malformed."""
    if not header or len(header) > MAX_HEADER_CHARS:
        return None
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if timestamp is not None or not value.isdigit():
                return None
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
        # Unknown schemes are ignored so a future v2 does not break old receivers.
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(
    header: str,
    body: bytes | str,
    secrets: Iterable[str],
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """True when `header` signs `body` with one of `secrets` at a time within `tolerance_s` of `now`.

    A stale (or far-future) timestamp is refused even with a good signature, so
    a captured request cannot be replayed later.
    """
    parsed = parse_header(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    if abs(now - timestamp) > tolerance_s:
        return False
    raw = body.encode() if isinstance(body, str) else body
    for secret in secrets:
        wanted = expected_signature(secret, timestamp, raw)
        # compare_digest: the time taken does not reveal how much of a guess was right.
        if any(hmac.compare_digest(wanted, candidate) for candidate in signatures):
            return True
    return False
