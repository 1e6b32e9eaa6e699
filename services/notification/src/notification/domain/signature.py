"""Signing a delivery: the Paykit-Signature header (the receiving side is in verify.py)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from paykit.errors import invariant

HEADER = "Paykit-Signature"
# At most the current and the previous secret sign at once (during a rotation).
MAX_SIGNING_SECRETS = 2


def sign(secrets: Sequence[str], body: bytes, timestamp: int) -> str:
    """`t=<unix>,v1=<hex>[,v1=<hex>]`: one v1 per secret, newest first."""
    invariant(1 <= len(secrets) <= MAX_SIGNING_SECRETS, f"sign needs 1..2 secrets, got {len(secrets)}")
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()}" for s in secrets]
    return ",".join(parts)
