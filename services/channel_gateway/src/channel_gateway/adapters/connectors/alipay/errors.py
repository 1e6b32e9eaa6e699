"""Alipay's error codes, each mapped to a ChannelErrorKind; the raw code is always kept.

An Alipay answer that is not ``code == "10000"`` carries a gateway ``code`` (with ``msg``)
and usually a ``sub_code`` (with ``sub_msg``). The sub_code decides when this table knows it;
otherwise the gateway code does; otherwise the outcome is unknown (UNKNOWN_OUTCOME: only a
query can tell), because a code we cannot read proves nothing about what happened.

Operation-specific readings of a few codes (ACQ.TRADE_NOT_EXIST answering a query means
"no such trade", answering a close means "never received, so closed"; ACQ.TRADE_HAS_CLOSE
answering a charge means the trade is closed; ACQ.TRADE_STATUS_ERROR answering a close
means "no longer awaiting payment") live in transformers.py, next to each operation.

Sources (stored public copies of Alipay's documentation; third-party mirrors noted):

[common]   Public error codes (公共错误码), opendocs.alipay.com/open/common/105806, mirrored at
           https://open.alitrip.com/docs/doc.htm?articleId=105806&docType=1&treeId=262 and quoted
           at https://cnblogs.com/rsapaper/p/9726452.html: 10000 success; 20000 service
           unavailable (isp.unknow-error, aop.unknow-error: "retry later"); 20001 insufficient
           authorisation (aop.invalid-auth-token, aop.auth-token-time-out,
           aop.invalid-app-auth-token, aop.invalid-app-auth-token-no-api,
           aop.app-auth-token-time-out, aop.no-product-reg-by-partner); 40001 missing required
           parameter (isv.missing-method, isv.missing-signature, isv.missing-signature-type,
           isv.missing-signature-key "no public key uploaded", isv.missing-app-id,
           isv.missing-timestamp, isv.missing-version, ...); 40002 invalid parameter
           (isv.invalid-signature, isv.invalid-app-id, ...); 40004 business failure (sub_code
           per API); 40006 insufficient permissions (isv.insufficient-isv-permissions,
           isv.insufficient-user-permissions).
[pay]      Face-to-face payment (当面付) English docs, alipay.trade.pay/precreate error codes,
           https://open.alitrip.com/docs/doc.htm?articleId=104632&docType=1&treeId=140 and the
           app-pay list https://zhifubao.apifox.cn/api-126427173: ACQ.SYSTEM_ERROR ("query the
           order"), ACQ.INVALID_PARAMETER, ACQ.ACCESS_FORBIDDEN, ACQ.EXIST_FORBIDDEN_WORD,
           ACQ.PARTNER_ERROR, ACQ.TOTAL_FEE_EXCEED, ACQ.CONTEXT_INCONSISTENT ("the stored trade
           differs from this request"), ACQ.TRADE_HAS_SUCCESS, ACQ.TRADE_HAS_CLOSE,
           ACQ.BUYER_SELLER_EQUAL, ACQ.TRADE_BUYER_NOT_MATCH, ACQ.BUYER_ENABLE_STATUS_FORBID,
           ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR, ACQ.BEYOND_PAY_RESTRICTION,
           ACQ.SELLER_BEEN_BLOCKED.
[query]    alipay.trade.query business codes, https://zhifubao.apifox.cn/api-126426144:
           ACQ.INVALID_PARAMETER, ACQ.SYSTEM_ERROR, ACQ.TRADE_NOT_EXIST.
[close]    alipay.trade.close business codes, http://zhifubao.apifox.cn/api-126371943:
           ACQ.INVALID_PARAMETER, ACQ.REASON_ILLEGAL_STATUS, ACQ.REASON_TRADE_STATUS_INVALID,
           ACQ.SYSTEM_ERROR, ACQ.TRADE_NOT_EXIST, ACQ.TRADE_STATUS_ERROR ("only a trade
           awaiting payment can be closed").
[cancel]   alipay.trade.cancel business codes (same acquiring family as refunds),
           https://www.apifox.cn/apidoc/docs-site/3618910/api-126370346:
           ACQ.REASON_TRADE_BEEN_FREEZEN, ACQ.REASON_TRADE_REFUND_FEE_ERR,
           ACQ.SELLER_BALANCE_NOT_ENOUGH, ACQ.TRADE_HAS_FINISHED, AQC.SYSTEM_ERROR (sic).
[bill]     alipay.data.dataservice.bill.downloadurl.query, F2F English docs,
           https://open.alitrip.com/docs/doc.htm?articleId=104674&docType=1&treeId=140:
           INVAILID_ARGUMENTS (sic), BILL_NOT_EXIST ("no report for the day"), UNKNOW_ERROR.
[unstored] Codes from Alipay's current pages that are not among the stored copies, so
           unverified here: the refund list of alipay.trade.refund (ACQ.REFUND_AMT_NOT_EQUAL_TOTAL
           "refund exceeds what is left", ACQ.DISCORDANT_REPEAT_REQUEST "same out_request_no,
           different request", ACQ.BUYER_BALANCE_NOT_ENOUGH, ACQ.PAYMENT_FAIL), the newer bill
           code isp.bill_not_exist, the flow-control codes aop.ACQ.SYSTEM_BUSY and
           isv.app-call-limited (rate limits answered by the gateway before the method runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from channel_gateway.domain.channel import ChannelErrorKind

SUCCESS_CODE: Final = "10000"

_K = ChannelErrorKind

# Gateway codes, used when the sub_code is not in SUB_CODES [common].
GATEWAY_CODES: Final[dict[str, ChannelErrorKind]] = {
    "20000": _K.UNKNOWN_OUTCOME,  # service unavailable: "retry later"; may have been acted on
    "20001": _K.AUTHENTICATION,  # authorisation tokens refused
    "40001": _K.INVALID_REQUEST,  # a required parameter is missing
    "40002": _K.INVALID_REQUEST,  # a parameter is invalid
    "40006": _K.AUTHENTICATION,  # the app lacks the permission for this method
    # 40004 (business failure) is deliberately absent: only its sub_code says what failed.
}

SUB_CODES: Final[dict[str, ChannelErrorKind]] = {
    # -- the gateway itself [common] ----------------------------------------------------
    "isp.unknow-error": _K.UNKNOWN_OUTCOME,
    "aop.unknow-error": _K.UNKNOWN_OUTCOME,
    "aop.invalid-auth-token": _K.AUTHENTICATION,
    "aop.auth-token-time-out": _K.AUTHENTICATION,
    "aop.invalid-app-auth-token": _K.AUTHENTICATION,
    "aop.invalid-app-auth-token-no-api": _K.AUTHENTICATION,
    "aop.app-auth-token-time-out": _K.AUTHENTICATION,
    "aop.no-product-reg-by-partner": _K.AUTHENTICATION,
    "isv.missing-signature-key": _K.AUTHENTICATION,  # 40001, but it is our account's setup
    "isv.invalid-signature": _K.AUTHENTICATION,  # 40002: our key is not the one Alipay holds
    "isv.invalid-app-id": _K.AUTHENTICATION,  # 40002: the app_id is not an app of Alipay's
    "isv.insufficient-isv-permissions": _K.AUTHENTICATION,
    "isv.insufficient-user-permissions": _K.AUTHENTICATION,
    # -- flow control [unstored] ---------------------------------------------------------
    "aop.ACQ.SYSTEM_BUSY": _K.RATE_LIMITED,
    "isv.app-call-limited": _K.RATE_LIMITED,
    # -- acquiring: outcome unknown, query first [pay] [query] [close] [cancel] ----------
    "ACQ.SYSTEM_ERROR": _K.UNKNOWN_OUTCOME,
    "AQC.SYSTEM_ERROR": _K.UNKNOWN_OUTCOME,
    # The trade under our out_trade_no is paid: the charge answer cannot say for how much,
    # a query can (and the query schedule will ask) [pay].
    "ACQ.TRADE_HAS_SUCCESS": _K.UNKNOWN_OUTCOME,
    # -- acquiring: our request or our account [pay] [query] [close] ----------------------
    "ACQ.INVALID_PARAMETER": _K.INVALID_REQUEST,
    "ACQ.EXIST_FORBIDDEN_WORD": _K.INVALID_REQUEST,
    "ACQ.ACCESS_FORBIDDEN": _K.AUTHENTICATION,
    "ACQ.PARTNER_ERROR": _K.AUTHENTICATION,
    "ACQ.SELLER_BEEN_BLOCKED": _K.AUTHENTICATION,
    # -- acquiring: refused on its merits (charge DECLINED / refund FAILED) [pay] [cancel] --
    "ACQ.TOTAL_FEE_EXCEED": _K.DECLINED,
    "ACQ.BUYER_SELLER_EQUAL": _K.DECLINED,
    "ACQ.BUYER_ENABLE_STATUS_FORBID": _K.DECLINED,
    "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR": _K.DECLINED,
    "ACQ.BEYOND_PAY_RESTRICTION": _K.DECLINED,
    "ACQ.BUYER_BALANCE_NOT_ENOUGH": _K.DECLINED,
    "ACQ.PAYMENT_FAIL": _K.DECLINED,
    "ACQ.TRADE_HAS_CLOSE": _K.DECLINED,
    "ACQ.TRADE_NOT_EXIST": _K.DECLINED,
    "ACQ.TRADE_STATUS_ERROR": _K.DECLINED,
    "ACQ.TRADE_HAS_FINISHED": _K.DECLINED,
    "ACQ.REASON_ILLEGAL_STATUS": _K.DECLINED,
    "ACQ.REASON_TRADE_STATUS_INVALID": _K.DECLINED,
    "ACQ.REASON_TRADE_BEEN_FREEZEN": _K.DECLINED,
    "ACQ.REASON_TRADE_REFUND_FEE_ERR": _K.DECLINED,
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": _K.DECLINED,
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": _K.DECLINED,
    # -- bills [bill] ---------------------------------------------------------------------
    "INVAILID_ARGUMENTS": _K.INVALID_REQUEST,
    # Not (yet) generated: Alipay produces a day's bill the next morning; ask again later.
    "BILL_NOT_EXIST": _K.CHANNEL_UNAVAILABLE,
    "isp.bill_not_exist": _K.CHANNEL_UNAVAILABLE,
    "UNKNOW_ERROR": _K.UNKNOWN_OUTCOME,
}

# Alipay holds something else under our key (out_trade_no / out_request_no): neither a
# success nor a refusal of our request [pay] [unstored].
CONFLICT_SUB_CODES: Final = frozenset(
    {"ACQ.CONTEXT_INCONSISTENT", "ACQ.TRADE_BUYER_NOT_MATCH", "ACQ.DISCORDANT_REPEAT_REQUEST"}
)


@dataclass(frozen=True)
class AlipayError:
    """The error fields of a (signed) response node."""

    code: str
    msg: str
    sub_code: str
    sub_msg: str

    @classmethod
    def of(cls, node: dict[str, Any]) -> AlipayError:
        def text(key: str) -> str:
            value = node.get(key, "")
            return value if isinstance(value, str) else str(value)

        return cls(text("code"), text("msg"), text("sub_code"), text("sub_msg"))

    @property
    def channel_code(self) -> str:
        """The most precise code: the sub_code, else the gateway code."""
        return self.sub_code or self.code

    @property
    def message(self) -> str:
        parts = [f"code {self.code} {self.msg}".strip()]
        if self.sub_code:
            parts.append(f"sub_code {self.sub_code} {self.sub_msg}".strip())
        return "; ".join(parts)

    @property
    def is_conflict(self) -> bool:
        return self.sub_code in CONFLICT_SUB_CODES

    @property
    def kind(self) -> ChannelErrorKind:
        """What the code means for our request; UNKNOWN_OUTCOME for codes this table lacks."""
        if self.sub_code in SUB_CODES:
            return SUB_CODES[self.sub_code]
        return GATEWAY_CODES.get(self.code, ChannelErrorKind.UNKNOWN_OUTCOME)
