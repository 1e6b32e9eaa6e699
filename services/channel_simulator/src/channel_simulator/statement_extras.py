"""Statement lines the operator plants (POST /v1/admin/statement-extras), whatever the protocol.

A planted line is a StatementExtra (accounts.py) kept on the merchant account and listed by
its protocol's statement() on its day, next to the real trades and refunds. The JSON body:

    {"protocol": "alipay", "day": "2026-03-01", "kind": "PAYMENT" | "REFUND",
     "out_trade_no": "pay_x", "amount": "12.34", "currency": "CNY",
     "trade_no"?: "...", "out_refund_no"?: "rfd_x" (required for a REFUND), "refund_no"?: "...",
     "occurred_at"?: "2026-03-01T10:00:00+08:00", "subject"?: "..."}

trade_no (and refund_no) default to the real record's when out_trade_no (out_refund_no) names
one of the protocol's, else to a number the channel invents: a PAYMENT for an out_trade_no the
merchant never sent is the "invented payment" reconciliation must flag.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Final

from channel_simulator import fields
from channel_simulator.accounts import MerchantAccount, StatementExtra, StatementLineKind
from channel_simulator.limits import MAX_ID_CHARS, MAX_TEXT_CHARS
from channel_simulator.sandbox import Sandbox

_DAY_SHAPE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(text: str) -> date:
    """A business day written "yyyy-mm-dd"; fields.FieldError otherwise."""
    try:
        if not _DAY_SHAPE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise fields.FieldError('day must be a date, "yyyy-mm-dd"') from None


def _moment(data: dict[str, Any]) -> datetime | None:
    text = fields.text(data, "occurred_at", max_chars=40, required=False)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fields.FieldError("occurred_at must be an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise fields.FieldError("occurred_at needs its UTC offset (e.g. +08:00)")
    return moment


def _kind(data: dict[str, Any]) -> StatementLineKind:
    text = fields.text(data, "kind", max_chars=16)
    try:
        return StatementLineKind(text)
    except ValueError:
        known = ", ".join(k.value for k in StatementLineKind)
        raise fields.FieldError(f"kind must be one of {known}") from None


def parse_extra(sandbox: Sandbox, merchant: MerchantAccount, body: bytes) -> StatementExtra:
    """The planted line `body` describes at `merchant`; fields.FieldError naming the bad field."""
    data = fields.json_object(body)
    protocol = fields.text(data, "protocol", max_chars=MAX_ID_CHARS)
    if protocol not in sandbox.protocols:
        raise fields.FieldError(f"protocol {protocol!r} is not enabled; enabled: {sorted(sandbox.protocols)}")
    kind = _kind(data)
    out_trade_no = fields.text(data, "out_trade_no", max_chars=MAX_ID_CHARS)
    out_refund_no = fields.text(
        data, "out_refund_no", max_chars=MAX_ID_CHARS, required=kind is StatementLineKind.REFUND
    )
    day = parse_day(fields.text(data, "day", max_chars=10))
    amount, occurred_at = fields.money(data), _moment(data)
    subject = fields.text(data, "subject", max_chars=MAX_TEXT_CHARS, required=False)
    trade_no = fields.text(data, "trade_no", max_chars=MAX_ID_CHARS, required=False)
    refund_no = fields.text(data, "refund_no", max_chars=MAX_ID_CHARS, required=False)
    # Numbers are drawn only once every field has been read: a refused body uses none.
    if not trade_no:
        trade = merchant.trade(protocol, out_trade_no)
        trade_no = trade.trade_no if trade is not None else merchant.next_trade_no()
    if kind is StatementLineKind.REFUND and not refund_no:
        refund = merchant.refund(protocol, out_refund_no)
        refund_no = refund.refund_no if refund is not None else merchant.next_refund_no()
    return StatementExtra(
        protocol, day, kind, out_trade_no, trade_no, amount, out_refund_no, refund_no, occurred_at, subject
    )


def extra_view(merchant: MerchantAccount, extra: StatementExtra) -> dict[str, Any]:
    return {
        "merchant": merchant.merchant_id,
        "protocol": extra.protocol,
        "day": extra.day.isoformat(),
        "kind": extra.kind.value,
        "out_trade_no": extra.out_trade_no,
        "trade_no": extra.trade_no,
        "amount": extra.amount.format(),
        "currency": extra.amount.currency,
        "out_refund_no": extra.out_refund_no,
        "refund_no": extra.refund_no,
        "occurred_at": None if extra.occurred_at is None else extra.occurred_at.isoformat(),
        "subject": extra.subject,
    }
