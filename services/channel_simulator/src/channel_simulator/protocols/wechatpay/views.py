"""WeChat Pay's JSON views of the sandbox's trades and refunds: fen, China-time RFC 3339, its
states and its numbers. Field names follow the API v3 references the gateway's connector cites
(transformers.py there): the query-by-out_trade_no object, the domestic refund object, and the
decrypted resources of TRANSACTION.SUCCESS and REFUND.* callbacks.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from paykit.money import Money

from channel_simulator.accounts import MerchantAccount, Refund, RefundStatus, Trade, TradeStatus
from channel_simulator.protocols.wechatpay.keys import MerchantKeys
from channel_simulator.protocols.wechatpay.wire import CURRENCY

# WeChat Pay's times are China Standard Time, with the offset written out.
CHINA: Final = timezone(timedelta(hours=8), "CST")
TRADE_TYPE: Final = "NATIVE"
BANK_TYPE: Final = "OTHERS"
USER_RECEIVED_ACCOUNT: Final = "支付用户零钱"
_STATE_TEXT: Final = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "CLOSED": "订单已关闭",
}
# A refund the channel declined moved no money: WeChat Pay calls that CLOSED (退款关闭).
_REFUND_STATUS: Final = {
    RefundStatus.PROCESSING: "PROCESSING",
    RefundStatus.SUCCESS: "SUCCESS",
    RefundStatus.FAILED: "CLOSED",
}
# Digits of WeChat Pay's numbers: transaction_id 28 ("4200..."), refund_id 29 ("503...").
_TRANSACTION_ID_PREFIX, _TRANSACTION_ID_DIGITS = "4200", 28
_REFUND_ID_PREFIX, _REFUND_ID_DIGITS = "503", 29


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def _digits(number: str, prefix: str, width: int) -> str:
    """A WeChat Pay style number from the sandbox's own (its digits, zero-padded behind `prefix`)."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return prefix + digits.rjust(width - len(prefix), "0")


def transaction_id(trade_no: str) -> str:
    return _digits(trade_no, _TRANSACTION_ID_PREFIX, _TRANSACTION_ID_DIGITS)


def refund_id(refund_no: str) -> str:
    return _digits(refund_no, _REFUND_ID_PREFIX, _REFUND_ID_DIGITS)


def openid(trade: Trade) -> str:
    """The simulated payer's id at the merchant's appid (stable per trade)."""
    return "oSim" + hashlib.sha256(trade.trade_no.encode()).hexdigest()[:24]


def code_url(trade: Trade) -> str:
    return f"weixin://wxpay/bizpayurl?pr={trade.trade_no}"


def trade_state(merchant: MerchantAccount, trade: Trade) -> str:
    """NOTPAY | SUCCESS | REFUND (paid, and a refund asked for) | CLOSED."""
    if trade.status is TradeStatus.PENDING:
        return "NOTPAY"
    if trade.status is TradeStatus.CLOSED:
        return "CLOSED"
    refunded = any(r.status is not RefundStatus.FAILED for r in merchant.refunds_of(trade))
    return "REFUND" if refunded else "SUCCESS"


def _total(amount: Money | None) -> int:
    if amount is None:
        raise ValueError("a tombstone has no WeChat Pay view")
    return amount.minor


def transaction_view(keys: MerchantKeys, trade: Trade, state: str) -> dict[str, Any]:
    """The query answer (and, with state SUCCESS, the payment callback's resource)."""
    total = _total(trade.amount)
    view: dict[str, Any] = {
        "appid": keys.appid,
        "mchid": keys.mchid,
        "out_trade_no": trade.out_trade_no,
        "trade_type": TRADE_TYPE,
        "trade_state": state,
        "trade_state_desc": _STATE_TEXT[state],
        "attach": "",
        "amount": {"total": total, "currency": CURRENCY},
    }
    if trade.paid_at is not None:
        view.update(
            transaction_id=transaction_id(trade.trade_no),
            bank_type=BANK_TYPE,
            success_time=rfc3339(trade.paid_at),
            payer={"openid": openid(trade)},
            amount={"total": total, "payer_total": total, "currency": CURRENCY, "payer_currency": CURRENCY},
        )
    return view


def refund_status(refund: Refund) -> str:
    return _REFUND_STATUS[refund.status]


def _refund_amount(trade: Trade, refund: Refund) -> dict[str, Any]:
    total, asked = _total(trade.amount), refund.amount.minor
    return {"total": total, "refund": asked, "payer_total": total, "payer_refund": asked}


def refund_view(trade: Trade, refund: Refund) -> dict[str, Any]:
    """The answer of POST /v3/refund/domestic/refunds and of its query."""
    amount = _refund_amount(trade, refund)
    view: dict[str, Any] = {
        "refund_id": refund_id(refund.refund_no),
        "out_refund_no": refund.out_refund_no,
        "transaction_id": transaction_id(trade.trade_no),
        "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": USER_RECEIVED_ACCOUNT,
        "create_time": rfc3339(refund.created_at),
        "status": refund_status(refund),
        "funds_account": "AVAILABLE",
        "amount": {
            **amount,
            "settlement_refund": amount["refund"],
            "settlement_total": amount["total"],
            "discount_refund": 0,
            "currency": CURRENCY,
            "from": [],
        },
    }
    if refund.status is RefundStatus.SUCCESS and refund.refunded_at is not None:
        view["success_time"] = rfc3339(refund.refunded_at)
    return view


def refund_resource(keys: MerchantKeys, trade: Trade, refund: Refund) -> dict[str, Any]:
    """A REFUND.* callback's decrypted resource (its amount carries no currency)."""
    resource: dict[str, Any] = {
        "mchid": keys.mchid,
        "out_trade_no": refund.out_trade_no,
        "transaction_id": transaction_id(trade.trade_no),
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund_id(refund.refund_no),
        "refund_status": refund_status(refund),
        "user_received_account": USER_RECEIVED_ACCOUNT,
        "amount": _refund_amount(trade, refund),
    }
    if refund.status is RefundStatus.SUCCESS and refund.refunded_at is not None:
        resource["success_time"] = rfc3339(refund.refunded_at)
    return resource
