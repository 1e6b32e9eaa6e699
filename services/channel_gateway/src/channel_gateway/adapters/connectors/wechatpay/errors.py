"""WeChat Pay API v3 error answers and what each code means to us.

An API v3 refusal is an HTTP 4xx/5xx whose body is JSON {"code", "message", "detail"?}
("错误信息" in the API v3 rules: 4xx when the request failed, e.g. a missing parameter or an
insufficient balance; 500/501/503 for a fault inside WeChat Pay; see
https://pay.weixin.qq.com/wiki/doc/apiv3_partner/open/pay/chapter2_7_2.shtml and each API's
error-code list, e.g. https://pay.weixin.qq.com/doc/global/v3/en/4012356484 for close order).
The raw code is always kept (ChannelRefused.channel_code, ChargeReply.decline_code,
RefundReply.failure_code).

KIND_OF_CODE is the one table from WeChat Pay's codes to ChannelErrorKind. Codes that say
something about the trade itself (already paid, closed, unknown to WeChat Pay, number reused)
are read by the operation that asked (see connector.py), never here, since "not found" means
"closed" to a close and "not found" to a query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from channel_gateway.domain.channel import ChannelErrorKind

_K = ChannelErrorKind

KIND_OF_CODE: Final = MappingProxyType(
    {
        # Our request was malformed or not allowed in this state: nothing happened.
        "PARAM_ERROR": _K.INVALID_REQUEST,
        "INVALID_REQUEST": _K.INVALID_REQUEST,
        "INVALID_TRANSACTIONID": _K.INVALID_REQUEST,
        # tradebill: no bill for that day (e.g. no trade), or not produced yet (after 10:00 next day).
        "NO_STATEMENT_EXIST": _K.INVALID_REQUEST,
        "STATEMENT_CREATING": _K.CHANNEL_UNAVAILABLE,
        # Our credentials or account set-up: nothing happened, asking again will not help.
        "SIGN_ERROR": _K.AUTHENTICATION,
        "MCH_NOT_EXISTS": _K.AUTHENTICATION,
        "NO_AUTH": _K.AUTHENTICATION,
        "APPID_MCHID_NOT_MATCH": _K.AUTHENTICATION,
        # Too many requests: nothing happened, try later.
        "FREQUENCY_LIMITED": _K.RATE_LIMITED,
        "RATELIMIT_EXCEED": _K.RATE_LIMITED,
        # A fault inside WeChat Pay or its bank: it may have acted, only a query can tell.
        "SYSTEM_ERROR": _K.UNKNOWN_OUTCOME,
        "SYSTEMERROR": _K.UNKNOWN_OUTCOME,
        "BANK_ERROR": _K.UNKNOWN_OUTCOME,
        # The payer is entering the password (code payment): in progress, not refused.
        "USERPAYING": _K.UNKNOWN_OUTCOME,
        # Refused on its merits (balance, account, risk, refund period): try another way.
        "NOTENOUGH": _K.DECLINED,
        "NOT_ENOUGH": _K.DECLINED,
        "ACCOUNTERROR": _K.DECLINED,
        "ACCOUNT_ERROR": _K.DECLINED,
        "RULE_LIMIT": _K.DECLINED,
        "TRADE_ERROR": _K.DECLINED,
        "USER_ACCOUNT_ABNORMAL": _K.DECLINED,
        "TRADE_OVERDUE": _K.DECLINED,
        "REFUND_EXCEED": _K.DECLINED,
    }
)

# Codes about the trade or refund itself, read by the operation that asked.
ALREADY_PAID: Final = frozenset({"ORDERPAID", "ORDER_PAID"})
CLOSED: Final = frozenset({"ORDER_CLOSED", "ORDERCLOSED"})
NOT_FOUND: Final = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"})
# Our number is taken by a trade or refund with other parameters: neither success nor refusal.
NUMBER_TAKEN: Final = frozenset({"OUT_TRADE_NO_USED", "RESOURCE_ALREADY_EXISTS"})
# The longest message we keep from an answer (they end up in logs and replies).
MESSAGE_MAX_CHARS: Final = 256
_HTTP_TOO_MANY_REQUESTS: Final = 429
_HTTP_UNAUTHORIZED: Final = 401


@dataclass(frozen=True)
class WechatError:
    status: int
    code: str
    message: str


def parse(status: int, body: bytes) -> WechatError:
    """Read an error answer; ValueError when it is not WeChat Pay's {code, message} JSON."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("error answer is not a JSON object")
    code, message = data.get("code"), data.get("message", "")
    if not isinstance(code, str) or not code or not isinstance(message, str):
        raise ValueError("error answer without a text code and message")
    return WechatError(status, code, message[:MESSAGE_MAX_CHARS])


def kind_of(error: WechatError) -> ChannelErrorKind:
    """The kind of a refusal. A code we do not know proves nothing was done only when the HTTP
    status says so without doubt (401, 429); otherwise it may have happened (UNKNOWN_OUTCOME)."""
    known = KIND_OF_CODE.get(error.code)
    if known is not None:
        return known
    if error.status == _HTTP_UNAUTHORIZED:
        return ChannelErrorKind.AUTHENTICATION
    if error.status == _HTTP_TOO_MANY_REQUESTS:
        return ChannelErrorKind.RATE_LIMITED
    return ChannelErrorKind.UNKNOWN_OUTCOME
