"""Alipay's asynchronous notifications (异步通知, notify_type trade_status_sync), as form fields.

[Alipay: 当面付异步通知参数] A payment: notify_time, notify_type, notify_id, app_id, charset,
version, sign_type, sign, trade_no, out_trade_no, seller_id, buyer_id, trade_status
(TRADE_SUCCESS), total_amount, receipt_amount, buyer_pay_amount, subject, gmt_create,
gmt_payment. A refund is the same trade_status_sync about its trade, plus out_biz_no (the
merchant's out_request_no), refund_fee (the trade's refunded TOTAL so far, not this refund's
amount) and gmt_refund ("yyyy-MM-dd HH:mm:ss.SSS"); a refund that empties the trade says
TRADE_CLOSED with gmt_close. Only refunds that moved money are notified.

The body is form-encoded utf-8, signed with the Alipay key over every non-empty field but
sign and sign_type; it is built once per notification, so every copy and retry is the same
bytes (notify_time is the first attempt's). Acknowledged by HTTP 200 and exactly "success".
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from channel_simulator.accounts import MerchantAccount, Refund, Trade
from channel_simulator.protocols.alipay import methods, wire

NOTIFY_TYPE: Final = "trade_status_sync"
VERSION: Final = "1.0"
SIGN_TYPE: Final = "RSA2"
ACK_BODY: Final = b"success"


def _envelope(notify_id: str, app_id: str, seller_id: str, now: datetime) -> dict[str, str]:
    return {
        "notify_id": notify_id,
        "notify_time": wire.beijing_time(now),
        "notify_type": NOTIFY_TYPE,
        "app_id": app_id,
        "charset": "utf-8",
        "version": VERSION,
        "sign_type": SIGN_TYPE,
        "seller_id": seller_id,
    }


def _trade_fields(trade: Trade) -> dict[str, str]:
    if trade.amount is None or trade.paid_at is None:
        raise ValueError(f"trade {trade.out_trade_no} is not paid: nothing to notify")
    amount = wire.amount_text(trade.amount)
    return {
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_id": methods.BUYER_USER_ID,
        "total_amount": amount,
        "receipt_amount": amount,
        "buyer_pay_amount": amount,
        "subject": trade.subject,
        "gmt_create": wire.beijing_time(trade.created_at),
        "gmt_payment": wire.beijing_time(trade.paid_at),
    }


def payment_params(trade: Trade, app_id: str, seller_id: str, now: datetime) -> dict[str, str]:
    return {
        **_envelope(trade.notify_id, app_id, seller_id, now),
        **_trade_fields(trade),
        "trade_status": "TRADE_SUCCESS",
    }


def refund_params(
    merchant: MerchantAccount, trade: Trade, refund: Refund, app_id: str, seller_id: str, now: datetime
) -> dict[str, str]:
    if refund.refunded_at is None or trade.amount is None:
        raise ValueError(f"refund {refund.out_refund_no} has not finished: nothing to notify")
    refunded = methods.refunded_total(merchant, trade, until=refund.refunded_at)
    params = {
        **_envelope(refund.notify_id, app_id, seller_id, now),
        **_trade_fields(trade),
        "trade_status": "TRADE_SUCCESS",
        "out_biz_no": refund.out_refund_no,
        "refund_fee": wire.amount_text(refunded),
        "gmt_refund": wire.beijing_time_ms(refund.refunded_at),
    }
    if refunded == trade.amount:
        params.update(trade_status="TRADE_CLOSED", gmt_close=wire.beijing_time(refund.refunded_at))
    return params
