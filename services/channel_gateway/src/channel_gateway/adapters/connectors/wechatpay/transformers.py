"""WeChat Pay API v3 wire models: JSON bodies in, replies and notifications out.

The only place money changes form for WeChat Pay: amounts travel as integer counts of fen
(amount.total, amount.refund; "单位为分"), currency "CNY" (domestic WeChat Pay settles CNY
only). An amount that is not a JSON integer (12.5, "1250", true), is negative or zero, or comes
with another currency is refused, never rounded.

Field names and states follow the API v3 references (read, not copied):
- Native order, POST /v3/pay/transactions/native -> {code_url}: Native pay development guide,
  https://pay.weixin.qq.com/wiki/doc/apiv3_partner/open/pay/chapter2_7_2.shtml
- query by out_trade_no (trade_state SUCCESS | REFUND | NOTPAY | CLOSED | REVOKED | USERPAYING
  | PAYERROR | ACCEPT; amount.total; success_time): https://pay.weixin.qq.com/doc/v3/merchant/4013070356
- close order (204 No Content): https://pay.weixin.qq.com/doc/global/v3/en/4012356484
- domestic refund and its query (status SUCCESS | CLOSED | PROCESSING | ABNORMAL; amount.refund,
  amount.total, currency), refund callback (refund_status, amount without currency):
  https://pay.weixin.qq.com/doc/v3/merchant/4012082022
- trade bill (hash_type, hash_value, download_url; uncompressed unless tar_type=GZIP):
  https://pay.weixin.qq.com/docs/merchant/apis/jsapi-payment/get-trade-bill.html
- payment callback TRANSACTION.SUCCESS (id, create_time, event_type, resource_type
  encrypt-resource, resource{algorithm, ciphertext, nonce, associated_data, original_type}):
  https://wechatpay.im/webhook/v3/TRANSACTION.SUCCESS
The vendor SDK wechatpayv3 (transaction.py) builds the same paths and bodies.

Readers of answers raise ValueError (KeyError, TypeError, AmountError, CurrencyError) on
anything they do not recognise: the connector turns that into ChannelUnavailable, since an
answer we cannot read is no answer. Notification readers raise NotificationRejected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from paykit.money import AmountError, CurrencyError, Money

from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChannelConflict,
    ChargeCommand,
    ChargeReply,
    ChargeState,
    NotificationRejected,
    PaymentNotification,
    QueryReply,
    RefundCommand,
    RefundNotification,
    RefundReply,
    RefundState,
    VerifiedNotification,
)

CURRENCY: Final = "CNY"
# WeChat Pay's field limits (Native order / refund references): description string(127),
# out_trade_no string(6..32) of [0-9A-Za-z_-|*], out_refund_no string(1..64), reason string(80).
DESCRIPTION_MAX_CHARS: Final = 127
REASON_MAX_CHARS: Final = 80
_OUT_TRADE_NO: Final = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
_OUT_REFUND_NO: Final = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
_TRADE_STATES: Final = {
    "SUCCESS": ChargeState.SUCCEEDED,
    # Paid, then (partly) refunded: the payment itself succeeded.
    "REFUND": ChargeState.SUCCEEDED,
    "NOTPAY": ChargeState.PENDING,
    "USERPAYING": ChargeState.PENDING,
    "ACCEPT": ChargeState.PENDING,
    "CLOSED": ChargeState.CLOSED,
    "REVOKED": ChargeState.CLOSED,
    "PAYERROR": ChargeState.DECLINED,
}
_PAID_STATES: Final = frozenset({"SUCCESS", "REFUND"})
_REFUND_STATES: Final = {
    "SUCCESS": RefundState.SUCCEEDED,
    "PROCESSING": RefundState.PROCESSING,
    # The money left the merchant but could not reach the payer's account (e.g. a cancelled
    # card); it waits for the merchant to redirect it at WeChat Pay. Not final, not failed:
    # calling it FAILED would let the amount be refunded a second time.
    "ABNORMAL": RefundState.PROCESSING,
    # Closed without paying the payer: no money moved.
    "CLOSED": RefundState.FAILED,
}
ABNORMAL_MESSAGE: Final = (
    "WeChat Pay could not return the money to the payer's account; it must be handled at WeChat Pay"
)
TRANSACTION_SUCCESS: Final = "TRANSACTION.SUCCESS"
REFUND_EVENTS: Final = {"REFUND.SUCCESS": "SUCCESS", "REFUND.CLOSED": "CLOSED", "REFUND.ABNORMAL": "ABNORMAL"}
REFUND_ABNORMAL: Final = "REFUND.ABNORMAL"


# -- money ----------------------------------------------------------------------------


def fen_of(amount: Money) -> int:
    """The fen a request carries; only a positive CNY amount can be sent to WeChat Pay."""
    if amount.currency != CURRENCY:
        raise CurrencyError(f"WeChat Pay takes {CURRENCY} only, not {amount.currency}")
    if amount.minor <= 0:
        raise AmountError(f"amount {amount} is not positive")
    return amount.minor


def money_of_fen(value: object, currency: object = CURRENCY, field: str = "amount") -> Money:
    """A positive integer count of fen (as JSON gave it) and its currency, exactly."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise AmountError(f"{field} {value!r} is not an integer count of fen")
    if value <= 0:
        raise AmountError(f"{field} {value} is not a positive count of fen")
    if currency != CURRENCY:
        raise CurrencyError(f"{field} is in {currency!r}, WeChat Pay settles {CURRENCY} only")
    return Money(value, CURRENCY)


def _amount(data: dict[str, Any], key: str, field: str) -> Money:
    amount = data["amount"]
    if not isinstance(amount, dict):
        raise TypeError("amount is not an object")
    # A refund callback's amount carries no currency: domestic refunds are CNY.
    return money_of_fen(amount.get(key), amount.get("currency", CURRENCY), field)


# -- requests -------------------------------------------------------------------------


def _json(data: dict[str, Any]) -> bytes:
    # The exact bytes we send are the bytes we sign.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def check_out_trade_no(payment_id: str) -> str:
    if not _OUT_TRADE_NO.fullmatch(payment_id):
        raise ValueError(
            f"payment id {payment_id[:40]!r} is not a WeChat Pay out_trade_no (6-32 of [0-9A-Za-z_-|*])"
        )
    return payment_id


def check_out_refund_no(refund_id: str) -> str:
    if not _OUT_REFUND_NO.fullmatch(refund_id):
        raise ValueError(f"refund id {refund_id[:70]!r} is not a WeChat Pay out_refund_no")
    return refund_id


def charge_body(command: ChargeCommand, appid: str, mchid: str) -> bytes:
    """POST /v3/pay/transactions/native."""
    return _json(
        {
            "appid": appid,
            "mchid": mchid,
            "description": (command.subject or command.payment_id)[:DESCRIPTION_MAX_CHARS],
            "out_trade_no": check_out_trade_no(command.payment_id),
            "notify_url": command.notify_url,
            "amount": {"total": fen_of(command.amount), "currency": CURRENCY},
        }
    )


def refund_body(command: RefundCommand) -> bytes:
    """POST /v3/refund/domestic/refunds; out_refund_no is our refund id (WeChat Pay's
    idempotency key for the refund), total the captured amount WeChat Pay checks it against."""
    refund, total = fen_of(command.amount), fen_of(command.payment_amount)
    if refund > total:
        raise AmountError(f"refund {command.amount} exceeds the payment's {command.payment_amount}")
    body: dict[str, Any] = {
        "out_trade_no": check_out_trade_no(command.payment_id),
        "out_refund_no": check_out_refund_no(command.refund_id),
        "notify_url": command.notify_url,
        "amount": {"refund": refund, "total": total, "currency": CURRENCY},
    }
    if command.reason:
        body["reason"] = command.reason[:REASON_MAX_CHARS]
    return _json(body)


def close_body(mchid: str) -> bytes:
    """POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close."""
    return _json({"mchid": mchid})


# -- answers --------------------------------------------------------------------------


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} missing or not text")
    return value


def _time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{field} {value!r} is not an RFC 3339 time")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{field} {value!r} has no UTC offset")
    return moment


def _check_ours(data: dict[str, Any], key: str, ours: str) -> None:
    """An answer naming another trade, refund or merchant is not an answer to our question."""
    if key in data and data[key] != ours:
        raise ValueError(f"answer is about {key} {str(data[key])[:64]!r}, not {ours!r}")


def charge_reply(data: dict[str, Any]) -> ChargeReply:
    # Native pay answers only the QR link; the transaction id exists once the payer pays.
    return ChargeReply(ChargeState.PENDING, pay_url=_text(data, "code_url"))


def query_reply(data: dict[str, Any], payment_id: str, mchid: str) -> QueryReply:
    _check_ours(data, "out_trade_no", payment_id)
    _check_ours(data, "mchid", mchid)
    trade_state = str(data.get("trade_state"))
    state = _TRADE_STATES.get(trade_state)
    if state is None:
        raise ValueError(f"unexpected trade_state {trade_state[:40]!r}")
    paid = trade_state in _PAID_STATES
    # amount.total is the order amount (what we asked); payer_total is after coupons.
    amount = _amount(data, "total", "amount.total") if paid or "amount" in data else None
    return QueryReply(
        state=state,
        channel_trade_no=_text(data, "transaction_id") if paid else str(data.get("transaction_id") or ""),
        amount=amount,
        paid_at=_time(data.get("success_time"), "success_time") if paid else None,
    )


def refund_reply(
    data: dict[str, Any], refund_id: str, payment_id: str, asked: Money | None = None
) -> RefundReply:
    """The refund's state; `asked` is the amount we asked for (None for a query)."""
    _check_ours(data, "out_refund_no", refund_id)
    _check_ours(data, "out_trade_no", payment_id)
    status = str(data.get("status"))
    state = _REFUND_STATES.get(status)
    if state is None:
        raise ValueError(f"unexpected refund status {status[:40]!r}")
    amount = _amount(data, "refund", "amount.refund")
    if asked is not None and amount != asked:
        # WeChat Pay holds our out_refund_no for another amount: money may have moved under it.
        raise ChannelConflict(
            f"WeChat Pay holds refund {refund_id} for {amount}, this request is for {asked}"
        )
    failure_code, failure_message = "", ""
    if status in ("ABNORMAL", "CLOSED"):
        failure_code = status
        failure_message = ABNORMAL_MESSAGE if status == "ABNORMAL" else "the refund was closed"
    return RefundReply(
        state=state,
        channel_refund_no=_text(data, "refund_id"),
        failure_code=failure_code,
        failure_message=failure_message,
        amount=amount,
        refunded_at=_time(data.get("success_time"), "success_time")
        if state is RefundState.SUCCEEDED
        else None,
    )


@dataclass(frozen=True)
class BillLink:
    hash_type: str
    hash_value: str
    download_url: str


def bill_link(data: dict[str, Any]) -> BillLink:
    """GET /v3/bill/tradebill's answer: where the file is and the hash to check it against."""
    return BillLink(
        _text(data, "hash_type").upper(), _text(data, "hash_value").lower(), _text(data, "download_url")
    )


# -- notifications --------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """A callback's outer JSON (plain text); `resource` is still encrypted."""

    notify_id: str
    created_at: datetime
    event_type: str
    algorithm: str
    ciphertext: str
    nonce: str
    associated_data: str
    original_type: str


def envelope(body: bytes) -> Envelope:
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise TypeError("notification body is not a JSON object")
        if data.get("resource_type") != "encrypt-resource":
            raise ValueError(f"resource_type {str(data.get('resource_type'))[:40]!r} is not encrypt-resource")
        resource = data["resource"]
        if not isinstance(resource, dict):
            raise TypeError("resource is not an object")
        associated_data = resource.get("associated_data") or ""
        if not isinstance(associated_data, str):
            raise TypeError("resource.associated_data is not text")
        return Envelope(
            notify_id=_text(data, "id"),
            created_at=_time(data.get("create_time"), "create_time"),
            event_type=_text(data, "event_type"),
            algorithm=_text(resource, "algorithm"),
            ciphertext=_text(resource, "ciphertext"),
            nonce=_text(resource, "nonce"),
            associated_data=associated_data,
            original_type=str(resource.get("original_type") or ""),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise NotificationRejected(f"malformed notification: {exc}") from exc


def _resource(plaintext: bytes) -> dict[str, Any]:
    data = json.loads(plaintext)
    if not isinstance(data, dict):
        raise TypeError("decrypted resource is not a JSON object")
    return data


def _payment(env: Envelope, data: dict[str, Any], mchid: str, appid: str) -> PaymentNotification:
    _check_ours(data, "mchid", mchid)
    _check_ours(data, "appid", appid)
    if data.get("trade_state") != "SUCCESS":
        raise ValueError(f"{TRANSACTION_SUCCESS} with trade_state {str(data.get('trade_state'))[:40]!r}")
    return PaymentNotification(
        channel_notify_id=env.notify_id,
        payment_id=_text(data, "out_trade_no"),
        channel_trade_no=_text(data, "transaction_id"),
        succeeded=True,
        amount=_amount(data, "total", "amount.total"),
        occurred_at=_time(data.get("success_time"), "success_time"),
    )


def _refund(env: Envelope, data: dict[str, Any], mchid: str) -> RefundNotification | AcknowledgedOnly:
    _check_ours(data, "mchid", mchid)
    status = REFUND_EVENTS[env.event_type]
    if data.get("refund_status") != status:
        raise ValueError(f"{env.event_type} with refund_status {str(data.get('refund_status'))[:40]!r}")
    if status == "ABNORMAL":
        # Neither final nor failed (see _REFUND_STATES), and a refund notification can only say
        # succeeded or failed: taken (so WeChat Pay stops sending it) and kept with this reason.
        refund_id = _text(data, "out_refund_no")
        reason = f"{REFUND_ABNORMAL} for refund {refund_id}: {ABNORMAL_MESSAGE}; it stays PROCESSING"
        return AcknowledgedOnly(env.notify_id, reason)
    succeeded = status == "SUCCESS"
    return RefundNotification(
        channel_notify_id=env.notify_id,
        refund_id=_text(data, "out_refund_no"),
        payment_id=_text(data, "out_trade_no"),
        channel_refund_no=_text(data, "refund_id"),
        succeeded=succeeded,
        amount=_amount(data, "refund", "amount.refund"),
        occurred_at=_time(data.get("success_time"), "success_time") if succeeded else env.created_at,
    )


def notification(
    env: Envelope, plaintext: bytes, mchid: str, appid: str
) -> VerifiedNotification | AcknowledgedOnly:
    """Read a decrypted callback resource whose signature was already checked."""
    is_payment = env.event_type == TRANSACTION_SUCCESS
    if not is_payment and env.event_type not in REFUND_EVENTS:
        raise NotificationRejected(f"unknown event_type {env.event_type[:40]!r}")
    original_type = "transaction" if is_payment else "refund"
    if env.original_type not in ("", original_type):
        raise NotificationRejected(f"{env.event_type} carries a {env.original_type[:40]!r} resource")
    try:
        data = _resource(plaintext)
        return _payment(env, data, mchid, appid) if is_payment else _refund(env, data, mchid)
    # AmountError and CurrencyError are ValueErrors: caught first to keep their precise reason.
    except (AmountError, CurrencyError) as exc:
        raise NotificationRejected(f"amount in wrong format: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise NotificationRejected(f"malformed notification resource: {exc}") from exc
