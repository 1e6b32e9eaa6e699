"""Alipay's wire models: biz_content of each request, each answer read into our replies, and
notifications. The only place money turns into Alipay's format and back.

Amounts (total_amount, refund_amount, refund_fee, ...) are JSON strings (form values in
notifications) of yuan with exactly two decimals, "19.99"; Alipay's range is 0.01 to
100000000.00 [pay: total_amount]. One that does not convert exactly ("12.345", "1e3", "12.3",
"", a JSON number) is refused, never rounded: an answer carrying it is unreadable (the
connector turns the ValueError into ChannelUnavailable), a notification carrying it is
rejected. Alipay's domestic acquiring is in CNY only.

Times are Beijing time without an offset, "yyyy-MM-dd HH:mm:ss" (gmt_refund may add
milliseconds). China has kept UTC+8 without daylight saving since 1991, so a fixed +08:00
offset is exact and needs no time-zone database.

Every reader raises ValueError (or KeyError/TypeError) on an answer it does not recognise,
and Refusal on an error code that is not an answer about the trade; the connector maps
Refusal to ChannelRefused / ChannelConflict / ChannelUnavailable through errors.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from paykit.money import AmountError, CurrencyError, Money

from channel_gateway.adapters.connectors.alipay.errors import SUCCESS_CODE, AlipayError
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChannelErrorKind,
    ChargeCommand,
    ChargeReply,
    ChargeState,
    CloseReply,
    CloseResult,
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
MIN_AMOUNT_MINOR: Final = 1  # 0.01 yuan
MAX_AMOUNT_MINOR: Final = 100_000_000_00  # 100000000.00 yuan
SHANGHAI: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
TIMESTAMP_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
# Alipay retries an unacknowledged notification 8 times over about 24.5 hours (4m, 10m, 10m,
# 1h, 2h, 6h, 15h). A notify_time older than that window plus a margin cannot be a delivery
# Alipay still makes, so it is a replay: refused. 25 h keeps every genuine retry even if
# notify_time were the first attempt's time (the documents do not promise it is refreshed).
NOTIFY_MAX_AGE: Final = timedelta(hours=25)
# Clock skew allowed for a notify_time in the future (Alipay's clock ahead of ours).
NOTIFY_MAX_AHEAD: Final = timedelta(minutes=5)
NOTIFY_TYPE: Final = "trade_status_sync"
MAX_NOTIFICATION_PARAMS: Final = 100
MAX_SUBJECT_CHARS: Final = 256  # alipay.trade.precreate subject String(256)

_AMOUNT_SHAPE: Final = re.compile(r"(?:0|[1-9][0-9]*)\.[0-9]{2}")
_TIME_SHAPE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?")
# trade_status values [query: alipay.trade.query trade_status].
_PAID: Final = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
# Close answers that mean "this trade no longer awaits payment" [close]; the payment may have
# been paid, so the gateway answers ALREADY_PAID and payment-core asks again by query.
_NOT_AWAITING_PAYMENT: Final = frozenset(
    {
        "ACQ.TRADE_STATUS_ERROR",
        "ACQ.REASON_ILLEGAL_STATUS",
        "ACQ.REASON_TRADE_STATUS_INVALID",
        "ACQ.TRADE_HAS_SUCCESS",
        "ACQ.TRADE_HAS_FINISHED",
    }
)


class Refusal(Exception):
    """An error answer that is not a reply state of the operation; mapped by the connector."""

    def __init__(self, error: AlipayError) -> None:
        super().__init__(error.message)
        self.error = error


# -- money and time ---------------------------------------------------------------------


def amount_text(money: Money) -> str:
    """Money -> Alipay's "total_amount" text; ValueError when Alipay cannot take it."""
    if money.currency != CURRENCY:
        raise CurrencyError(f"Alipay takes {CURRENCY} only, not {money.currency}")
    if not MIN_AMOUNT_MINOR <= money.minor <= MAX_AMOUNT_MINOR:
        raise AmountError(f"amount {money} is outside Alipay's 0.01 to 100000000.00")
    return money.format()


def parse_amount(value: object, name: str) -> Money:
    """Alipay's amount text -> Money, exactly; AmountError on any other shape."""
    if not isinstance(value, str) or not _AMOUNT_SHAPE.fullmatch(value):
        shown = value if not isinstance(value, str) else value[:40]
        raise AmountError(f"{name} {shown!r} is not yuan with two decimals")
    money = Money.parse(value, CURRENCY, allow_zero=False)
    if money.minor > MAX_AMOUNT_MINOR:
        raise AmountError(f"{name} {value!r} exceeds Alipay's 100000000.00")
    return money


def timestamp_text(moment: datetime) -> str:
    """The request `timestamp`: Beijing time, "yyyy-MM-dd HH:mm:ss"."""
    return moment.astimezone(SHANGHAI).strftime(TIMESTAMP_FORMAT)


def parse_time(value: object, name: str) -> datetime:
    if not isinstance(value, str) or not _TIME_SHAPE.fullmatch(value):
        raise ValueError(f"{name} {value!r} is not 'yyyy-MM-dd HH:mm:ss'")
    return datetime.fromisoformat(value).replace(tzinfo=SHANGHAI)


def _optional_time(node: Mapping[str, Any], name: str) -> datetime | None:
    value = node.get(name)
    return None if value in (None, "") else parse_time(value, name)


# -- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One OpenAPI call: the method, its biz_content, and the notify_url when it has one."""

    method: str
    biz: dict[str, Any] = field(default_factory=dict)
    notify_url: str = ""

    def biz_content(self) -> str:
        return json.dumps(self.biz, ensure_ascii=False, separators=(",", ":"))


def charge_call(command: ChargeCommand, seller_id: str) -> Call:
    """alipay.trade.precreate: a QR code the payer scans; Alipay dedups on out_trade_no."""
    biz: dict[str, Any] = {
        "out_trade_no": command.payment_id,
        "total_amount": amount_text(command.amount),
        # subject is required; the order id stands in when the caller gave none.
        "subject": (command.subject or command.order_id)[:MAX_SUBJECT_CHARS],
        "product_code": "FACE_TO_FACE_PAYMENT",
    }
    if seller_id:
        biz["seller_id"] = seller_id
    return Call("alipay.trade.precreate", biz, command.notify_url)


def query_call(payment_id: str) -> Call:
    return Call("alipay.trade.query", {"out_trade_no": payment_id})


def refund_call(command: RefundCommand) -> Call:
    """alipay.trade.refund; out_request_no (our refund id) makes it idempotent at Alipay."""
    biz: dict[str, Any] = {
        "out_trade_no": command.payment_id,
        "refund_amount": amount_text(command.amount),
        "out_request_no": command.refund_id,
        "query_options": ["gmt_refund_pay"],
    }
    if command.reason:
        biz["refund_reason"] = command.reason
    return Call("alipay.trade.refund", biz, command.notify_url)


def refund_query_call(refund_id: str, payment_id: str) -> Call:
    biz = {"out_trade_no": payment_id, "out_request_no": refund_id, "query_options": ["gmt_refund_pay"]}
    return Call("alipay.trade.fastpay.refund.query", biz)


def close_call(payment_id: str) -> Call:
    return Call("alipay.trade.close", {"out_trade_no": payment_id})


def bill_call(day: date) -> Call:
    """The trade bill ("trade": acquiring business bill) of one day [bill]."""
    return Call(
        "alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": day.isoformat()}
    )


# -- answers ----------------------------------------------------------------------------


def _failure(node: Mapping[str, Any]) -> AlipayError | None:
    """None when the node says success; the error otherwise."""
    code = node.get("code")
    if not isinstance(code, str) or not code:
        raise ValueError(f"answer has no code (got {code!r})")
    return None if code == SUCCESS_CODE else AlipayError.of(dict(node))


def _text(node: Mapping[str, Any], name: str) -> str:
    value = node.get(name, "")
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def _check_trade(node: Mapping[str, Any], payment_id: str, *, required: bool) -> None:
    """An answer about another trade is no answer about ours."""
    out_trade_no = _text(node, "out_trade_no")
    if out_trade_no != payment_id and (out_trade_no or required):
        raise ValueError(f"answer is about trade {out_trade_no!r}, not {payment_id!r}")


def charge_reply(node: Mapping[str, Any], command: ChargeCommand) -> ChargeReply:
    error = _failure(node)
    if error is not None:
        if error.sub_code == "ACQ.TRADE_HAS_CLOSE":
            return ChargeReply(
                ChargeState.CLOSED, decline_code=error.channel_code, decline_message=error.message
            )
        if error.kind is ChannelErrorKind.DECLINED and not error.is_conflict:
            return ChargeReply(
                ChargeState.DECLINED, decline_code=error.channel_code, decline_message=error.message
            )
        raise Refusal(error)
    _check_trade(node, command.payment_id, required=True)
    qr_code = _text(node, "qr_code")
    if not qr_code:
        raise ValueError("precreate answered success without qr_code")
    # precreate numbers no trade yet: trade_no comes with the query or the notification.
    return ChargeReply(ChargeState.PENDING, pay_url=qr_code)


def query_reply(node: Mapping[str, Any], payment_id: str) -> QueryReply:
    error = _failure(node)
    if error is not None:
        if error.sub_code == "ACQ.TRADE_NOT_EXIST":
            return QueryReply(ChargeState.NOT_FOUND)
        raise Refusal(error)
    _check_trade(node, payment_id, required=True)
    status = _text(node, "trade_status")
    trade_no = _text(node, "trade_no")
    amount = parse_amount(node["total_amount"], "total_amount") if "total_amount" in node else None
    paid_at = _optional_time(node, "send_pay_date")
    if status in _PAID or (status == "TRADE_CLOSED" and paid_at is not None):
        # TRADE_CLOSED also means "paid, then refunded in full" [query]; send_pay_date is the
        # payment's date, so such a trade was paid: its refunds are separate facts.
        if amount is None or not trade_no:
            raise ValueError(f"{status} answer without total_amount or trade_no")
        return QueryReply(ChargeState.SUCCEEDED, trade_no, amount, paid_at)
    if status == "WAIT_BUYER_PAY":
        return QueryReply(ChargeState.PENDING, trade_no, amount)
    if status == "TRADE_CLOSED":
        return QueryReply(ChargeState.CLOSED, trade_no, amount)
    raise ValueError(f"unexpected trade_status {status!r}")


def refund_reply(node: Mapping[str, Any], command: RefundCommand) -> RefundReply:
    error = _failure(node)
    if error is not None:
        if error.kind is ChannelErrorKind.DECLINED and not error.is_conflict:
            return RefundReply(
                RefundState.FAILED, failure_code=error.channel_code, failure_message=error.message
            )
        raise Refusal(error)
    _check_trade(node, command.payment_id, required=True)
    fund_change = node.get("fund_change", "N")
    if fund_change not in ("Y", "N"):
        raise ValueError(f"unexpected fund_change {fund_change!r}")
    # refund_fee is the trade's refunded total so far, not this refund's amount [unstored:
    # alipay.trade.refund]; it can still prove an answer inconsistent.
    refunded_total = parse_amount(node["refund_fee"], "refund_fee") if node.get("refund_fee") else None
    if fund_change == "N":
        # Accepted, or a repeat of a refund already done: only the refund query can tell
        # ("fund_change=N or absent: confirm with alipay.trade.fastpay.refund.query").
        return RefundReply(RefundState.PROCESSING, _text(node, "trade_no"))
    if refunded_total is None or refunded_total.minor < command.amount.minor:
        raise ValueError(
            f"fund_change Y with refund_fee {refunded_total} below this refund's {command.amount}"
        )
    return RefundReply(
        RefundState.SUCCEEDED, _text(node, "trade_no"), refunded_at=_optional_time(node, "gmt_refund_pay")
    )


def refund_query_reply(node: Mapping[str, Any], refund_id: str, payment_id: str) -> RefundReply:
    """alipay.trade.fastpay.refund.query: REFUND_SUCCESS, or no refund_status at all, which
    Alipay documents as "not received or failed; refund again with the same out_request_no"."""
    error = _failure(node)
    if error is not None:
        if error.sub_code == "ACQ.TRADE_NOT_EXIST":
            return RefundReply(RefundState.NOT_FOUND)
        raise Refusal(error)
    _check_trade(node, payment_id, required=False)
    out_request_no = _text(node, "out_request_no")
    if out_request_no and out_request_no != refund_id:
        raise ValueError(f"answer is about refund {out_request_no!r}, not {refund_id!r}")
    status = _text(node, "refund_status")
    if status == "":
        return RefundReply(RefundState.NOT_FOUND)
    if status != "REFUND_SUCCESS":
        raise ValueError(f"unexpected refund_status {status!r}")
    return RefundReply(
        RefundState.SUCCEEDED,
        _text(node, "trade_no"),
        amount=parse_amount(node.get("refund_amount"), "refund_amount"),
        refunded_at=_optional_time(node, "gmt_refund_pay"),
    )


def close_reply(node: Mapping[str, Any], payment_id: str) -> CloseReply:
    error = _failure(node)
    if error is not None:
        if error.sub_code == "ACQ.TRADE_NOT_EXIST":
            # Never received: it can never be paid, which is all a close promises.
            return CloseReply(CloseResult.CLOSED, f"Alipay has no such trade ({error.channel_code})")
        if error.sub_code == "ACQ.TRADE_HAS_CLOSE":
            return CloseReply(CloseResult.CLOSED, "already closed")
        if error.sub_code in _NOT_AWAITING_PAYMENT:
            return CloseReply(
                CloseResult.ALREADY_PAID, f"the trade no longer awaits payment: {error.message}"
            )
        raise Refusal(error)
    _check_trade(node, payment_id, required=False)
    return CloseReply(CloseResult.CLOSED)


def bill_download_url(node: Mapping[str, Any]) -> str:
    error = _failure(node)
    if error is not None:
        raise Refusal(error)
    url = _text(node, "bill_download_url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"bill_download_url {url[:80]!r} is not an http(s) URL")
    return url


# -- notifications ----------------------------------------------------------------------


def notification_params(body: bytes) -> dict[str, str]:
    """The form fields of a notification body; NotificationRejected when it is not one."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict",
            max_num_fields=MAX_NOTIFICATION_PARAMS,
        )  # fmt: skip
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotificationRejected(f"malformed notification: not a utf-8 form body ({exc})") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            # Which of the two would the signature cover? Neither is trustworthy.
            raise NotificationRejected(f"malformed notification: {key} appears twice")
        params[key] = value
    return params


@dataclass(frozen=True)
class Expected:
    """What every notification for this account must say."""

    app_id: str
    seller_id: str
    now: datetime


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise NotificationRejected(f"malformed notification: no {name}")
    return value


def check_envelope(params: Mapping[str, str], expected: Expected) -> None:
    """app_id, seller_id, notify_type, charset, and notify_time freshness."""
    if params.get("app_id") != expected.app_id:
        raise NotificationRejected(f"app_id {params.get('app_id', '')!r} is not this account's")
    seller_id = params.get("seller_id", "")
    if expected.seller_id and seller_id and seller_id != expected.seller_id:
        raise NotificationRejected(f"seller_id {seller_id!r} is not this account's")
    if params.get("notify_type") != NOTIFY_TYPE:
        raise NotificationRejected(f"unknown notify_type {params.get('notify_type', '')!r}")
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise NotificationRejected(f"charset {params.get('charset')!r}: we ask for utf-8 only")
    try:
        sent_at = parse_time(_required(params, "notify_time"), "notify_time")
    except ValueError as exc:
        raise NotificationRejected(f"malformed notification: {exc}") from None
    if expected.now - sent_at > NOTIFY_MAX_AGE:
        raise NotificationRejected(
            f"stale notification: notify_time {params['notify_time']} is older than {NOTIFY_MAX_AGE}"
        )
    if sent_at - expected.now > NOTIFY_MAX_AHEAD:
        raise NotificationRejected(f"notify_time {params['notify_time']} is in the future")


def _refund_notification(params: Mapping[str, str]) -> RefundNotification:
    status = params.get("trade_status", "")
    if status not in (*_PAID, "TRADE_CLOSED"):
        raise NotificationRejected(f"refund notification with trade_status {status!r}")
    return RefundNotification(
        channel_notify_id=_required(params, "notify_id"),
        refund_id=_required(params, "out_biz_no"),
        payment_id=_required(params, "out_trade_no"),
        channel_refund_no=_required(params, "trade_no"),
        # Alipay only notifies refunds that moved money.
        succeeded=True,
        # refund_fee is the trade's refunded total: this refund's amount when it is the
        # trade's only refund. After an earlier partial refund it is more, and payment-core
        # flags the mismatch rather than record it (see the package docstring).
        amount=parse_amount(_required(params, "refund_fee"), "refund_fee"),
        occurred_at=parse_time(_required(params, "gmt_refund"), "gmt_refund"),
    )


def _payment_notification(params: Mapping[str, str]) -> PaymentNotification | AcknowledgedOnly:
    status = params.get("trade_status", "")
    notify_id = _required(params, "notify_id")
    if status in ("WAIT_BUYER_PAY", "TRADE_CLOSED"):
        # Genuine, but nothing to act on: WAIT_BUYER_PAY (trade created) is no outcome, and
        # a TRADE_CLOSED without refund fields is a trade closed unpaid (timed out or closed by
        # us), which the close's own answer or the query schedule settles. Refusing either
        # would only make Alipay send it again for a day.
        _required(params, "out_trade_no")
        return AcknowledgedOnly(notify_id, f"trade_status {status}: not a payment outcome")
    if status not in _PAID:
        raise NotificationRejected(f"unknown trade_status {status!r}")
    return PaymentNotification(
        channel_notify_id=notify_id,
        payment_id=_required(params, "out_trade_no"),
        channel_trade_no=_required(params, "trade_no"),
        succeeded=True,
        amount=parse_amount(_required(params, "total_amount"), "total_amount"),
        occurred_at=parse_time(_required(params, "gmt_payment"), "gmt_payment"),
    )


def notification(params: Mapping[str, str], expected: Expected) -> VerifiedNotification | AcknowledgedOnly:
    """Read a notification whose signature was already checked.

    A refund's notification is a trade_status_sync carrying the refund fields (out_biz_no =
    our refund id, refund_fee, gmt_refund); without them it is about the payment: paid
    (TRADE_SUCCESS / TRADE_FINISHED), or AcknowledgedOnly (WAIT_BUYER_PAY, TRADE_CLOSED).
    """
    check_envelope(params, expected)
    try:
        if any(params.get(k) for k in ("out_biz_no", "refund_fee", "gmt_refund")):
            return _refund_notification(params)
        return _payment_notification(params)
    # AmountError is a ValueError: caught first to keep its precise reason.
    except (AmountError, CurrencyError) as exc:
        raise NotificationRejected(f"amount in wrong format: {exc}") from exc
    except ValueError as exc:
        raise NotificationRejected(f"malformed notification: {exc}") from exc
