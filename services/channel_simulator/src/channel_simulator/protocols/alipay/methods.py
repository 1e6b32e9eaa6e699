"""The gateway.do methods the sandbox Alipay offers, each on the neutral core (operations.py).

Each method reads its biz_content, calls the operation under the protocol's name, and returns
its success node, None (the answer is lost: operations.Fate LOST / ANSWER_LOST), or raises
wire.Failure, which becomes its error node. Codes and fields follow Alipay's pages for each
method; sub_msg is Alipay's Chinese text, with the sandbox's reason in brackets.

- alipay.trade.precreate {out_trade_no, total_amount, subject, seller_id?}: a QR code;
  `sim:` directives are read from subject. A repeat of the same request gets the same answer;
  another amount ACQ.CONTEXT_INCONSISTENT; a closed number ACQ.TRADE_HAS_CLOSE; a paid one
  ACQ.TRADE_HAS_SUCCESS; a decline ACQ.BEYOND_PAY_RESTRICTION.
- alipay.trade.query {out_trade_no | trade_no}: trade_status WAIT_BUYER_PAY, TRADE_SUCCESS,
  TRADE_CLOSED (closed unpaid, or paid and refunded in full: then with send_pay_date);
  ACQ.TRADE_NOT_EXIST. (Real Alipay hides a precreated trade until the payer scans the code;
  the sandbox shows it as WAIT_BUYER_PAY at once.)
- alipay.trade.refund {out_trade_no | trade_no, refund_amount, out_request_no?,
  refund_reason?, query_options?}: settled while it answers, fund_change "Y" and refund_fee =
  the trade's refunded total; a repeat answers fund_change "N". ACQ.TRADE_NOT_EXIST,
  ACQ.TRADE_STATUS_ERROR (unpaid), ACQ.REFUND_AMT_NOT_EQUAL_TOTAL (more than is left),
  ACQ.DISCORDANT_REPEAT_REQUEST (same out_request_no, other refund), ACQ.SELLER_BALANCE_NOT_ENOUGH
  (declined: Behaviour.refund_decline_rate). out_request_no defaults to out_trade_no as at
  Alipay; unlike Alipay (unique per trade) the sandbox keeps it unique per account.
- alipay.trade.fastpay.refund.query {out_trade_no | trade_no, out_request_no}: refund_status
  REFUND_SUCCESS with refund_amount, or no refund_status (not received, or failed).
- alipay.trade.close {out_trade_no | trade_no}: closed; ACQ.TRADE_NOT_EXIST for a number never
  charged (which leaves a tombstone: that charge arriving later is refused), ACQ.TRADE_HAS_CLOSE
  for a closed trade, ACQ.TRADE_STATUS_ERROR for a paid one.
- alipay.data.dataservice.bill.downloadurl.query {bill_type: "trade", bill_date: yyyy-MM-dd}:
  bill_download_url, a link valid BILL_LINK_TTL_S to the day's trade bill (statement.py).
  isp.bill_not_exist for a day not begun in Beijing; unlike Alipay, which makes a day's bill
  the next morning, the sandbox serves today's as it stands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, assert_never
from urllib.parse import urlsplit

from paykit.money import Money

from channel_simulator import operations
from channel_simulator.accounts import MerchantAccount, Refund, RefundStatus, Trade, TradeStatus
from channel_simulator.limits import MAX_ID_CHARS, MAX_TEXT_CHARS, MAX_URL_CHARS
from channel_simulator.operations import (
    ChargeRequest,
    Fate,
    RefundRejected,
    RefundRequest,
    Refusal,
    Refused,
)
from channel_simulator.protocols.alipay import wire
from channel_simulator.protocols.alipay.wire import NAME, Biz, Failure, invalid
from channel_simulator.sandbox import Sandbox

# The simulated payer, as Alipay shows a buyer to the merchant (masked logon id, user id).
BUYER_LOGON_ID: Final = "sim***@sandbox.example"
BUYER_USER_ID: Final = "2088000000009999"
BILL_TYPE: Final = "trade"

# operations.Refused codes -> (sub_code, Alipay's sub_msg).
_REFUSED: Final[dict[str, tuple[str, str]]] = {
    "INVALID_DIRECTIVE": ("ACQ.INVALID_PARAMETER", "参数无效"),
    "CURRENCY_MISMATCH": ("ACQ.INVALID_PARAMETER", "参数无效"),
    "TRADE_CLOSED": ("ACQ.TRADE_HAS_CLOSE", "交易已经关闭"),
    "OUT_TRADE_NO_USED": ("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改"),
    "TRADE_ALREADY_PAID": ("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"),
    "OUT_REFUND_NO_USED": ("ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求"),
    "SANDBOX_FULL": ("ACQ.SYSTEM_ERROR", "系统错误"),
}
# A code the table lacks, by its kind.
_REFUSED_BY_KIND: Final[dict[Refusal, tuple[str, str]]] = {
    Refusal.INVALID: ("ACQ.INVALID_PARAMETER", "参数无效"),
    Refusal.CONFLICT: ("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"),
    Refusal.FULL: ("ACQ.SYSTEM_ERROR", "系统错误"),
}
# operations.RefundRejected codes, and the refund the channel declined.
_REFUND_REJECTED: Final[dict[str, tuple[str, str]]] = {
    "TRADE_NOT_FOUND": ("ACQ.TRADE_NOT_EXIST", "交易不存在"),
    "TRADE_NOT_PAID": ("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"),
    "REFUND_AMOUNT_EXCEEDED": ("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限"),
}
REFUND_DECLINED: Final = ("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")
CHARGE_DECLINED: Final = ("ACQ.BEYOND_PAY_RESTRICTION", "商户收款额度超限")


def failure(sub_code_and_msg: tuple[str, str], reason: str) -> Failure:
    sub_code, sub_msg = sub_code_and_msg
    return Failure(sub_code, f"{sub_msg} [{reason}]")


def refused(exc: Refused) -> Failure:
    return failure(_REFUSED.get(exc.code, _REFUSED_BY_KIND[exc.kind]), f"{exc.code}: {exc.message}")


def not_exist(reason: str) -> Failure:
    return failure(_REFUND_REJECTED["TRADE_NOT_FOUND"], reason)


@dataclass(frozen=True)
class Call:
    """One authenticated call: who asked, the common parameters, biz_content."""

    sandbox: Sandbox
    merchant: MerchantAccount
    app_id: str
    seller_id: str
    params: Mapping[str, str]
    biz: Biz
    # The download link of the app's trade bill of a day.
    bill_link: Callable[[date], str]
    now: datetime


Node = dict[str, Any]
Method = Callable[[Call], Awaitable[Node | None]]


def ok(**fields: Any) -> Node:
    return {"code": wire.SUCCESS_CODE, "msg": wire.MESSAGES[wire.SUCCESS_CODE], **fields}


def _notify_url(params: Mapping[str, str]) -> str:
    url = params.get("notify_url", "")
    parts = urlsplit(url)
    if url and (len(url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.netloc):
        raise invalid("notify_url must be an absolute http(s) URL")
    return url


def _trade(call: Call) -> Trade:
    """The trade biz_content names by out_trade_no or trade_no; ACQ.TRADE_NOT_EXIST if none."""
    out_trade_no = call.biz.text("out_trade_no", MAX_ID_CHARS, required=False)
    trade_no = call.biz.text("trade_no", MAX_ID_CHARS, required=False)
    if not out_trade_no and not trade_no:
        raise invalid("out_trade_no or trade_no is required")
    found = operations.query_charge(
        call.merchant, NAME, out_trade_no=out_trade_no or None, trade_no=None if out_trade_no else trade_no
    )
    if found is None or found.is_tombstone or (trade_no and found.trade_no != trade_no):
        raise not_exist(f"no trade {out_trade_no or trade_no}")
    return found


def refunded_total(merchant: MerchantAccount, trade: Trade, until: datetime | None = None) -> Money:
    """What the trade's SUCCESS refunds add up to (those finished by `until`, when given)."""
    if trade.amount is None:
        raise ValueError(f"trade {trade.out_trade_no} has no amount")
    total = Money.zero(trade.amount.currency)
    for refund in merchant.refunds_of(trade):
        done = refund.refunded_at
        if refund.status is RefundStatus.SUCCESS and done is not None and (until is None or done <= until):
            total = total + refund.amount
    return total


def trade_status(merchant: MerchantAccount, trade: Trade) -> str:
    """Alipay's trade_status; a trade refunded in full is TRADE_CLOSED (still with its payment)."""
    match trade.status:
        case TradeStatus.PENDING:
            return "WAIT_BUYER_PAY"
        case TradeStatus.CLOSED:
            return "TRADE_CLOSED"
        case TradeStatus.SUCCESS:
            fully = trade.amount is not None and refunded_total(merchant, trade) == trade.amount
            return "TRADE_CLOSED" if fully else "TRADE_SUCCESS"
        case unexpected:
            assert_never(unexpected)


def qr_code(trade: Trade) -> str:
    """What the simulated payer scans (a sandbox scheme: no real Alipay address)."""
    return f"alipaysim://qr/{trade.trade_no}"


# -- the methods ---------------------------------------------------------------------------


async def precreate(call: Call) -> Node | None:
    biz = call.biz
    out_trade_no = biz.text("out_trade_no", MAX_ID_CHARS)
    amount = biz.amount("total_amount")
    subject = biz.text("subject", MAX_TEXT_CHARS)
    seller_id = biz.text("seller_id", MAX_ID_CHARS, required=False)
    if seller_id and seller_id != call.seller_id:
        raise invalid(f"seller_id {seller_id} is not this app's seller")
    try:
        ask = ChargeRequest.with_directives(
            out_trade_no, amount, _notify_url(call.params), subject, extra={"app_id": call.app_id}
        )
        outcome = await operations.create_charge(call.sandbox, call.merchant, NAME, ask)
    except Refused as exc:
        raise refused(exc) from exc
    if outcome.fate in (Fate.LOST, Fate.ANSWER_LOST):
        return None
    shown = outcome.shown
    if outcome.fate is Fate.DECLINED or shown is None:
        raise failure(CHARGE_DECLINED, f"{operations.DECLINE_CODE}: {operations.DECLINE_MESSAGE}")
    if outcome.repeated and shown.status is TradeStatus.SUCCESS:
        raise failure(("ACQ.TRADE_HAS_SUCCESS", "交易已被支付"), f"trade {out_trade_no} is paid")
    return ok(out_trade_no=shown.out_trade_no, qr_code=qr_code(shown))


async def query(call: Call) -> Node | None:
    trade = _trade(call)
    if trade.amount is None:
        raise not_exist(f"no trade {trade.out_trade_no}")
    node = ok(
        trade_no=trade.trade_no,
        out_trade_no=trade.out_trade_no,
        trade_status=trade_status(call.merchant, trade),
        total_amount=wire.amount_text(trade.amount),
    )
    if trade.paid_at is not None:
        node.update(
            buyer_logon_id=BUYER_LOGON_ID,
            buyer_user_id=BUYER_USER_ID,
            buyer_pay_amount=wire.amount_text(trade.amount),
            receipt_amount=wire.amount_text(trade.amount),
            send_pay_date=wire.beijing_time(trade.paid_at),
        )
    return node


def _refund_request(call: Call, trade: Trade) -> RefundRequest:
    biz = call.biz
    amount = biz.amount("refund_amount")
    return RefundRequest(
        out_refund_no=biz.text("out_request_no", MAX_ID_CHARS, required=False) or trade.out_trade_no,
        out_trade_no=trade.out_trade_no,
        amount=amount,
        # Alipay posts a refund's trade_status_sync to the trade's notify_url unless told another.
        notify_url=_notify_url(call.params) or trade.notify_url,
        reason=biz.text("refund_reason", MAX_TEXT_CHARS, required=False),
        settles_at_once=True,
    )


async def refund(call: Call) -> Node | None:
    trade = _trade(call)
    options = call.biz.options("query_options")
    ask = _refund_request(call, trade)
    try:
        outcome = await operations.create_refund(call.sandbox, call.merchant, NAME, ask)
    except Refused as exc:
        raise refused(exc) from exc
    if isinstance(outcome, RefundRejected):
        reason = f"{outcome.code}: {outcome.message}"
        raise failure(_REFUND_REJECTED.get(outcome.code, REFUND_DECLINED), reason)
    shown = outcome.shown
    if shown.status is RefundStatus.FAILED:
        raise failure(REFUND_DECLINED, shown.code or "REFUND_DECLINED")
    moved = shown.status is RefundStatus.SUCCESS and not outcome.repeated
    node = ok(
        trade_no=trade.trade_no,
        out_trade_no=trade.out_trade_no,
        buyer_logon_id=BUYER_LOGON_ID,
        fund_change="Y" if moved else "N",
        refund_fee=wire.amount_text(refunded_total(call.merchant, trade)),
    )
    if "gmt_refund_pay" in options and shown.refunded_at is not None:
        node["gmt_refund_pay"] = wire.beijing_time(shown.refunded_at)
    return node


def _refund_of(call: Call, trade: Trade, out_request_no: str) -> Refund | None:
    found = operations.query_refund(call.merchant, NAME, out_refund_no=out_request_no)
    return found if found is not None and found.out_trade_no == trade.out_trade_no else None


async def refund_query(call: Call) -> Node | None:
    trade = _trade(call)
    out_request_no = call.biz.text("out_request_no", MAX_ID_CHARS)
    options = call.biz.options("query_options")
    node = ok(trade_no=trade.trade_no, out_trade_no=trade.out_trade_no, out_request_no=out_request_no)
    found = _refund_of(call, trade, out_request_no)
    if found is None or found.status is not RefundStatus.SUCCESS or trade.amount is None:
        # Alipay: success without refund_status means "not received, or failed".
        return node
    node.update(
        total_amount=wire.amount_text(trade.amount),
        refund_amount=wire.amount_text(found.amount),
        refund_status="REFUND_SUCCESS",
    )
    if "gmt_refund_pay" in options and found.refunded_at is not None:
        node["gmt_refund_pay"] = wire.beijing_time(found.refunded_at)
    return node


async def close(call: Call) -> Node | None:
    out_trade_no = call.biz.text("out_trade_no", MAX_ID_CHARS, required=False)
    try:
        trade = _trade(call)
    except Failure:
        if out_trade_no and call.merchant.trade(NAME, out_trade_no) is None:
            # Never charged: the tombstone makes sure that charge, arriving late, is refused.
            try:
                operations.close_charge(call.merchant, NAME, out_trade_no)
            except Refused as exc:
                raise refused(exc) from exc
        raise
    if trade.status is TradeStatus.CLOSED:
        raise failure(("ACQ.TRADE_HAS_CLOSE", "交易已经关闭"), f"trade {trade.out_trade_no} is closed")
    try:
        operations.close_charge(call.merchant, NAME, trade.out_trade_no)
    except Refused as exc:
        raise refused(exc) from exc
    return ok(trade_no=trade.trade_no, out_trade_no=trade.out_trade_no)


async def bill_download_url(call: Call) -> Node | None:
    bill_type = call.biz.text("bill_type", MAX_ID_CHARS)
    if bill_type != BILL_TYPE:
        raise failure(("INVAILID_ARGUMENTS", "参数错误"), f"bill_type {bill_type!r}: only {BILL_TYPE!r}")
    text = call.biz.text("bill_date", 10)
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise failure(("INVAILID_ARGUMENTS", "参数错误"), "bill_date must be yyyy-MM-dd")
    if day > wire.beijing_day(call.now):
        raise failure(("isp.bill_not_exist", "账单不存在"), f"{day} has not begun in Beijing")
    return ok(bill_download_url=call.bill_link(day))


METHODS: Final[dict[str, Method]] = {
    "alipay.trade.precreate": precreate,
    "alipay.trade.query": query,
    "alipay.trade.refund": refund,
    "alipay.trade.fastpay.refund.query": refund_query,
    "alipay.trade.close": close,
    "alipay.data.dataservice.bill.downloadurl.query": bill_download_url,
}
