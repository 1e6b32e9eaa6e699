"""The sandbox channel's wire format: JSON bodies, decimal-string amounts, HMAC headers.

Protocol (documented by the channel, see services/channel_simulator): every
message carries X-Sim-Merchant, X-Sim-Timestamp and X-Sim-Signature =
hex HMAC-SHA256(key, ts "\n" METHOD "\n" path "\n" body), valid for 300 s.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from paykit.money import AmountError, CurrencyError, Money

from channel_gateway.domain.channel import (
    ChargeCommand,
    ChargeReply,
    ChargeState,
    NotificationRejected,
    QueryReply,
    VerifiedNotification,
)

TIMESTAMP_TOLERANCE_S = 300
ACK_BODY = "success"
_STATES = {
    "PENDING": ChargeState.PENDING,
    "SUCCESS": ChargeState.SUCCEEDED,
    "DECLINED": ChargeState.DECLINED,
    "NOT_FOUND": ChargeState.NOT_FOUND,
}


def sign(key: bytes, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = b"\n".join([timestamp.encode(), method.encode(), path.encode(), body])
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def auth_headers(
    merchant_id: str, key: bytes, method: str, path: str, body: bytes, now_s: int
) -> dict[str, str]:
    ts = str(now_s)
    return {
        "X-Sim-Merchant": merchant_id,
        "X-Sim-Timestamp": ts,
        "X-Sim-Signature": sign(key, ts, method, path, body),
    }


def check_signature(key: bytes, method: str, path: str, headers: Any, body: bytes, now_s: float) -> None:
    ts = headers.get("X-Sim-Timestamp", "")
    given = headers.get("X-Sim-Signature", "")
    if not ts or not given:
        raise NotificationRejected("missing X-Sim-Timestamp or X-Sim-Signature")
    try:
        skew_s = abs(now_s - int(ts))
    except ValueError as exc:
        raise NotificationRejected("X-Sim-Timestamp is not an integer") from exc
    if skew_s > TIMESTAMP_TOLERANCE_S:
        raise NotificationRejected(f"timestamp is {skew_s:.0f}s away, outside {TIMESTAMP_TOLERANCE_S}s")
    if not hmac.compare_digest(sign(key, ts, method, path, body), given):
        raise NotificationRejected("signature does not match")


def charge_body(command: ChargeCommand) -> bytes:
    # Money leaves minor units only here, in the channel's decimal format.
    return json.dumps(
        {
            "out_trade_no": command.payment_id,
            "amount": command.amount.format(),
            "currency": command.amount.currency,
            "subject": command.subject,
            "notify_url": command.notify_url,
        }
    ).encode()


def charge_reply(data: dict[str, Any]) -> ChargeReply:
    state = _STATES.get(str(data.get("result")))
    if state is None:
        raise ValueError(f"unexpected charge result {data.get('result')!r}")
    return ChargeReply(
        state=state,
        channel_trade_no=str(data.get("trade_no") or ""),
        pay_url=str(data.get("qr_code") or ""),
        decline_code=str(data.get("code") or ""),
        decline_message=str(data.get("message") or ""),
    )


def query_reply(data: dict[str, Any]) -> QueryReply:
    state = _STATES.get(str(data.get("result")))
    if state is None:
        raise ValueError(f"unexpected query result {data.get('result')!r}")
    amount = Money.parse(data["amount"], data["currency"]) if data.get("amount") else None
    paid_at = datetime.fromisoformat(data["paid_at"]) if data.get("paid_at") else None
    return QueryReply(state, str(data.get("trade_no") or ""), amount, paid_at)


def notification(body: bytes) -> VerifiedNotification:
    """Parse a notification whose signature was already checked."""
    try:
        data = json.loads(body)
        status = data["status"]
        amount = Money.parse(data["amount"], data["currency"], allow_zero=False)
        occurred_at = datetime.fromisoformat(data["paid_at"]) if data.get("paid_at") else datetime.now(UTC)
        fields = (str(data["notify_id"]), str(data["out_trade_no"]), str(data["trade_no"]))
    # AmountError is a ValueError: it must be caught first to keep its precise reason.
    except (AmountError, CurrencyError) as exc:
        raise NotificationRejected(f"amount in wrong format: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise NotificationRejected(f"malformed notification: {exc}") from exc
    if status not in ("SUCCESS", "CLOSED", "FAILED"):
        raise NotificationRejected(f"unknown status {status!r}")
    notify_id, out_trade_no, trade_no = fields
    return VerifiedNotification(notify_id, out_trade_no, trade_no, status == "SUCCESS", amount, occurred_at)
