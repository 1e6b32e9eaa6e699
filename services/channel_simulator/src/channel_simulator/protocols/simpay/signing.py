"""simpay's signing, as the channel defines it.

Every request to the channel and every notification from it is signed:
    X-Sim-Merchant:  the merchant number at the channel
    X-Sim-Timestamp: Unix seconds
    X-Sim-Signature: hex HMAC-SHA256(key, timestamp + "\n" + METHOD + "\n" + path + "\n" + body)
A message older or newer than SIGNATURE_TOLERANCE_S is refused (replay).
Amounts are decimal strings in the currency's major unit ("19.99").
A notification is acknowledged by answering 200 with the body "success";
anything else makes the channel send it again later.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_TOLERANCE_S = 300
ACK_BODY = "success"


def signature(key: bytes, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = b"\n".join([timestamp.encode(), method.upper().encode(), path.encode(), body])
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(
    key: bytes, timestamp: str, method: str, path: str, body: bytes, given: str, now_s: float
) -> str | None:
    """None when valid, else the reason it is not."""
    try:
        age_s = abs(now_s - int(timestamp))
    except ValueError:
        return "timestamp is not an integer"
    if age_s > SIGNATURE_TOLERANCE_S:
        return f"timestamp outside the {SIGNATURE_TOLERANCE_S}s tolerance"
    if not hmac.compare_digest(signature(key, timestamp, method, path, body), given):
        return "signature does not match"
    return None


def signed_headers(
    merchant_id: str, key: bytes, method: str, path: str, body: bytes, now_s: float
) -> dict[str, str]:
    """The headers of a signed message (request, answer or notification) from or to `merchant_id`."""
    timestamp = str(int(now_s))
    return {
        "X-Sim-Merchant": merchant_id,
        "X-Sim-Timestamp": timestamp,
        "X-Sim-Signature": signature(key, timestamp, method, path, body),
        "Content-Type": "application/json",
    }
