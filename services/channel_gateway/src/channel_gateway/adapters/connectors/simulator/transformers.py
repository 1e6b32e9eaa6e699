"""The sandbox channel's wire format: JSON bodies, decimal-string amounts, HMAC headers.

Protocol (documented by the channel, see services/channel_simulator): every
message carries X-Sim-Merchant, X-Sim-Timestamp and X-Sim-Signature =
hex HMAC-SHA256(key, ts "\n" METHOD "\n" path "\n" body), valid for 300 s.
Amounts are decimal strings in the currency's major unit; they become Money
only here, exactly (Money.parse refuses "19.999" CNY rather than round it).

Every function that reads an answer raises ValueError (or KeyError/TypeError)
on anything it does not recognise; the connector turns that into
ChannelUnavailable, because an answer we cannot read is no answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any, Final

from paykit.money import AmountError, CurrencyError, Money

from channel_gateway.domain.channel import (
    ChannelConflict,
    ChargeCommand,
    ChargeReply,
    ChargeState,
    CloseReply,
    CloseResult,
    NotificationRejected,
    PaymentNotification,
    PayoutCommand,
    PayoutReply,
    PayoutState,
    QueryReply,
    RefundCommand,
    RefundNotification,
    RefundReply,
    RefundState,
    VerifiedNotification,
)

TIMESTAMP_TOLERANCE_S = 300
ACK_BODY = "success"
_CHARGE_STATES: Final = {
    "PENDING": ChargeState.PENDING,
    "SUCCESS": ChargeState.SUCCEEDED,
    "DECLINED": ChargeState.DECLINED,
    "NOT_FOUND": ChargeState.NOT_FOUND,
    "CLOSED": ChargeState.CLOSED,
}
_REFUND_STATES: Final = {
    "PROCESSING": RefundState.PROCESSING,
    "SUCCESS": RefundState.SUCCEEDED,
    "FAILED": RefundState.FAILED,
    "NOT_FOUND": RefundState.NOT_FOUND,
}
# The channel's codes for a charge it refuses because the trade was closed (see the simulator's close).
_CLOSED_CODES: Final = frozenset({"TRADE_CLOSED"})
_PAYOUT_STATES: Final = {"PAID": PayoutState.PAID, "FAILED": PayoutState.FAILED}
# The channel's code for an out_payout_no it already paid (or declined) with another amount or
# beneficiary (simulator payouts.py): it says nothing of our payout, and money may have moved.
_PAYOUT_NUMBER_TAKEN: Final = "OUT_PAYOUT_NO_USED"


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


# -- requests -------------------------------------------------------------------------


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


def refund_body(command: RefundCommand) -> bytes:
    # The sandbox checks the refund against the trade it holds; it does not take the payment amount.
    return json.dumps(
        {
            "out_refund_no": command.refund_id,
            "out_trade_no": command.payment_id,
            "amount": command.amount.format(),
            "currency": command.amount.currency,
            "notify_url": command.notify_url,
            "reason": command.reason,
        }
    ).encode()


def payout_body(command: PayoutCommand) -> bytes:
    # The settlement id is the channel's idempotency key: a retry after no answer is the same payout.
    return json.dumps(
        {
            "out_payout_no": command.settlement_id,
            "merchant_ref": command.merchant_id,
            "amount": command.amount.format(),
            "currency": command.amount.currency,
        }
    ).encode()


# -- answers --------------------------------------------------------------------------


def _money(data: dict[str, Any]) -> Money | None:
    if data.get("amount") is None:
        return None
    return Money.parse(data["amount"], data["currency"], allow_zero=False)


def _time(value: object) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset")
    return moment


def charge_reply(data: dict[str, Any]) -> ChargeReply:
    result = str(data.get("result"))
    code, message = str(data.get("code") or ""), str(data.get("message") or "")
    if result == "INVALID":
        # Refused outright: no money taken. A closed trade is reported as such.
        refused = ChargeState.CLOSED if code in _CLOSED_CODES else ChargeState.DECLINED
        return ChargeReply(refused, decline_code=code, decline_message=message)
    state = _CHARGE_STATES.get(result)
    if state is None:
        raise ValueError(f"unexpected charge result {result!r}")
    return ChargeReply(
        state=state,
        channel_trade_no=str(data.get("trade_no") or ""),
        pay_url=str(data.get("qr_code") or ""),
        decline_code=code,
        decline_message=message,
    )


def query_reply(data: dict[str, Any]) -> QueryReply:
    state = _CHARGE_STATES.get(str(data.get("result")))
    if state is None:
        raise ValueError(f"unexpected query result {data.get('result')!r}")
    return QueryReply(state, str(data.get("trade_no") or ""), _money(data), _time(data.get("paid_at")))


def refund_reply(data: dict[str, Any]) -> RefundReply:
    result = str(data.get("result"))
    code, message = str(data.get("code") or ""), str(data.get("message") or "")
    if result == "INVALID":
        # Refused outright (e.g. OUT_REFUND_NO_USED, CURRENCY_MISMATCH): no money moved by this request.
        return RefundReply(RefundState.FAILED, failure_code=code, failure_message=message)
    state = _REFUND_STATES.get(result)
    if state is None:
        raise ValueError(f"unexpected refund result {result!r}")
    return RefundReply(
        state=state,
        channel_refund_no=str(data.get("refund_no") or ""),
        failure_code=code,
        failure_message=message,
        amount=_money(data),
        refunded_at=_time(data.get("refunded_at")) if state is RefundState.SUCCEEDED else None,
    )


def close_reply(data: dict[str, Any]) -> CloseReply:
    result, code = str(data.get("result")), str(data.get("code") or "")
    if result == "CLOSED":
        return CloseReply(CloseResult.CLOSED)
    if result == "INVALID" and code == "TRADE_ALREADY_PAID":
        return CloseReply(CloseResult.ALREADY_PAID, str(data.get("message") or "the payer already paid"))
    raise ValueError(f"unexpected close answer {result!r} {code!r}")


def payout_reply(data: dict[str, Any], command: PayoutCommand) -> PayoutReply:
    """The channel's answer to `command`; an answer about another payout is no answer (ValueError)."""
    result = str(data.get("result"))
    code, message = str(data.get("code") or ""), str(data.get("message") or "")
    if result == "INVALID":
        if code == _PAYOUT_NUMBER_TAKEN:
            raise ChannelConflict(
                f"the channel holds another payout numbered {command.settlement_id}: {message}"
            )
        # Refused outright (e.g. INVALID_REQUEST): no payout was made.
        return PayoutReply(PayoutState.FAILED, failure_code=code, failure_message=message)
    state = _PAYOUT_STATES.get(result)
    if state is None:
        raise ValueError(f"unexpected payout result {result!r}")
    if data.get("out_payout_no") != command.settlement_id:
        raise ValueError(f"answer is about payout {data.get('out_payout_no')!r}, not {command.settlement_id}")
    amount = _money(data)
    if amount != command.amount:
        raise ValueError(f"answer is for {amount}, the payout asked for {command.amount}")
    reference = str(data.get("payout_no") or "")
    if state is PayoutState.PAID and not reference:
        raise ValueError("a PAID answer without payout_no")
    return PayoutReply(state, reference, failure_code=code, failure_message=message)


# -- notifications --------------------------------------------------------------------


def _payment_notification(data: dict[str, Any]) -> PaymentNotification:
    status = data["status"]
    if status not in ("SUCCESS", "CLOSED", "FAILED"):
        raise NotificationRejected(f"unknown payment status {status!r}")
    return PaymentNotification(
        channel_notify_id=str(data["notify_id"]),
        payment_id=str(data["out_trade_no"]),
        channel_trade_no=str(data["trade_no"]),
        succeeded=status == "SUCCESS",
        amount=Money.parse(data["amount"], data["currency"], allow_zero=False),
        occurred_at=_time(data.get("paid_at")) or datetime.now(UTC),
    )


def _refund_notification(data: dict[str, Any]) -> RefundNotification:
    status = data["status"]
    if status not in ("SUCCESS", "FAILED"):
        raise NotificationRejected(f"unknown refund status {status!r}")
    return RefundNotification(
        channel_notify_id=str(data["notify_id"]),
        refund_id=str(data["out_refund_no"]),
        payment_id=str(data["out_trade_no"]),
        channel_refund_no=str(data["refund_no"]),
        succeeded=status == "SUCCESS",
        amount=Money.parse(data["amount"], data["currency"], allow_zero=False),
        occurred_at=_time(data.get("refunded_at")) or datetime.now(UTC),
    )


def notification(body: bytes) -> VerifiedNotification:
    """Parse a notification whose signature was already checked; a body without "type" is a payment's."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise TypeError("notification body is not a JSON object")
        kind = data.get("type", "PAYMENT")
        if kind == "PAYMENT":
            return _payment_notification(data)
        if kind == "REFUND":
            return _refund_notification(data)
    # AmountError is a ValueError: it must be caught first to keep its precise reason.
    except (AmountError, CurrencyError) as exc:
        raise NotificationRejected(f"amount in wrong format: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise NotificationRejected(f"malformed notification: {exc}") from exc
    raise NotificationRejected(f"unknown notification type {kind!r}")
