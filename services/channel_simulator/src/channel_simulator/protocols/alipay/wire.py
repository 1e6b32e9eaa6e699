"""The sandbox Alipay's wire: gateway.do requests read, answers signed, errors in Alipay's shape.

Requests [Alipay OpenAPI common request parameters]: ``POST /alipay/gateway.do`` with the
common parameters in the query string and ``biz_content`` (JSON) in the form body; the
gateway reads the union of both (a name given twice is refused: which one was signed?).

Answers: HTTP 200, utf-8 JSON ``{"<method with "." as "_">_response": {...}, "sign": "..."}``,
signed by the Alipay key over the exact text of the response node. A call refused before the
method runs (unknown app_id, bad signature, unknown method) is answered in ``error_response``,
signed too, as Alipay does. The node carries ``code`` ("10000" success) and on failure
``msg``, ``sub_code``, ``sub_msg`` [Alipay public error codes: 20000 service unavailable,
40001 missing parameter, 40002 invalid parameter, 40004 business failure].

Amounts are yuan with two decimals ("19.99", CNY only); times "yyyy-MM-dd HH:mm:ss" in
Beijing time (UTC+8 all year since 1991, so a fixed offset is exact).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from paykit.money import AmountError, CurrencyError, Money

from channel_simulator.edge import AnswerError
from channel_simulator.protocols.alipay import signing

NAME: Final = "alipay"
PREFIX: Final = "/alipay"
GATEWAY_PATH: Final = "/alipay/gateway.do"
BILL_PATH: Final = "/alipay/bills/download"
CURRENCY: Final = "CNY"
SHANGHAI: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
SUCCESS_CODE: Final = "10000"
# Alipay's amount range [alipay.trade.precreate total_amount: 0.01 to 100000000.00].
MAX_AMOUNT_MINOR: Final = 100_000_000_00
# Parameters one call may carry (common ones and biz_content: about a dozen).
MAX_PARAMS: Final = 64
CONTENT_TYPE: Final = "application/json;charset=utf-8"

# The gateway's msg for each code [common].
MESSAGES: Final[dict[str, str]] = {
    SUCCESS_CODE: "Success",
    "20000": "Service Currently Unavailable",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
}


class Failure(Exception):
    """The method ran and refuses: its response node carries code, msg, sub_code and sub_msg."""

    def __init__(self, sub_code: str, sub_msg: str, code: str = "40004") -> None:
        super().__init__(f"{sub_code}: {sub_msg}")
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg

    def node(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "msg": MESSAGES[self.code],
            "sub_code": self.sub_code,
            "sub_msg": self.sub_msg,
        }


def invalid(message: str) -> Failure:
    return Failure("ACQ.INVALID_PARAMETER", f"参数无效 {message}")


def signed_answer(node_name: str, node: Mapping[str, Any], alipay_key: rsa.RSAPrivateKey) -> web.Response:
    """The node as Alipay writes it, signed over its exact text."""
    node_text = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
    sign = signing.sign(alipay_key, node_text)
    body = f'{{"{node_name}":{node_text},"sign":"{sign}"}}'
    return web.Response(body=body.encode(signing.CHARSET), headers={"Content-Type": CONTENT_TYPE})


class GatewayRefusal(AnswerError):
    """A call refused before its method ran: a signed error_response."""

    def __init__(self, code: str, sub_code: str, sub_msg: str, alipay_key: rsa.RSAPrivateKey) -> None:
        super().__init__(f"{sub_code}: {sub_msg}")
        self.node = Failure(sub_code, sub_msg, code).node()
        self.alipay_key = alipay_key

    def answer(self, request: web.Request) -> web.StreamResponse:
        return signed_answer("error_response", self.node, self.alipay_key)


class Outage(AnswerError):
    """The channel is down (Behaviour.unavailable): its front door answers 503, unsigned."""

    def answer(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="Service Unavailable")


def node_name(method: str) -> str:
    """alipay.trade.precreate -> alipay_trade_precreate_response."""
    return method.replace(".", "_") + "_response"


def _pairs(text: str) -> list[tuple[str, str]]:
    return parse_qsl(
        text, keep_blank_values=True, encoding=signing.CHARSET, errors="strict", max_num_fields=MAX_PARAMS
    )


def parse_params(query_string: str, body: bytes) -> dict[str, str]:
    """The union of the query string's and the form body's parameters; ValueError when malformed."""
    params: dict[str, str] = {}
    for name, value in [*_pairs(query_string), *_pairs(body.decode(signing.CHARSET))]:
        if name in params:
            raise ValueError(f"parameter {name} is given twice")
        params[name] = value
    return params


# -- money and time -----------------------------------------------------------------------


def amount_text(money: Money) -> str:
    return money.format()


def parse_amount(value: object, name: str) -> Money:
    """Yuan with at most two decimals, 0.01 to 100000000.00; Failure(ACQ.INVALID_PARAMETER)."""
    if not isinstance(value, str):
        raise invalid(f'{name} must be a string of yuan, e.g. "19.99"')
    try:
        money = Money.parse(value, CURRENCY, allow_zero=False)
    except (AmountError, CurrencyError) as exc:
        raise invalid(f"{name}: {exc}") from None
    if money.minor > MAX_AMOUNT_MINOR:
        raise invalid(f"{name} exceeds 100000000.00")
    return money


def beijing_time(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime(TIME_FORMAT)


def beijing_time_ms(moment: datetime) -> str:
    """gmt_refund's shape: "yyyy-MM-dd HH:mm:ss.SSS"."""
    local = moment.astimezone(SHANGHAI)
    return f"{local.strftime(TIME_FORMAT)}.{local.microsecond // 1000:03d}"


def parse_beijing_time(text: str) -> datetime:
    """ValueError unless "yyyy-MM-dd HH:mm:ss"."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=SHANGHAI)


def beijing_day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class Biz:
    """biz_content, read strictly: a wrong field is refused as ACQ.INVALID_PARAMETER naming it."""

    data: Mapping[str, Any]

    @classmethod
    def parse(cls, text: str) -> Biz:
        try:
            data = json.loads(text) if text else None
        except ValueError:
            raise invalid("biz_content is not JSON") from None
        if not isinstance(data, dict):
            raise invalid("biz_content must be a JSON object")
        return cls(data)

    def text(self, name: str, max_chars: int, *, required: bool = True) -> str:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise invalid(f"{name} is required")
            return ""
        if not isinstance(value, str):
            raise invalid(f"{name} must be a string")
        if len(value) > max_chars:
            raise invalid(f"{name} is longer than {max_chars} characters")
        return value

    def amount(self, name: str) -> Money:
        return parse_amount(self.data.get(name), name)

    def options(self, name: str) -> frozenset[str]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(f"{name} must be a list of strings")
        return frozenset(value)
