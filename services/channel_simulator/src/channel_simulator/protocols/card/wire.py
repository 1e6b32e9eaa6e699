"""The card acquirer's wire format, the acquirer's side: Stripe's form-encoded parameters, its
integer amounts, and its error answers.

Sources: Stripe API reference (https://docs.stripe.com/api): "Expanding responses" and the
form encoding with bracket keys (`metadata[payment_id]=...`, `expand[0]=latest_charge`),
"Errors" (the `{"error": {...}}` body), "Metadata" (50 keys, key 40 and value 500
characters); https://docs.stripe.com/currencies for the smallest units.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web
from paykit.money import AmountError, CurrencyError, Money, exponent

from channel_simulator.edge import AnswerError
from channel_simulator.operations import Refusal, Refused

NAME: Final = "card"
# account_config (channel_gateway connectors/card/sandbox.py) builds api_base = simulator + "/card",
# and the connector calls {api_base}/v1/...: every route lives under /card/v1.
PREFIX: Final = "/card"
API_PATH: Final = PREFIX + "/v1"

# Stripe's own bounds on what a request may carry.
MAX_PARAMS: Final = 200
MAX_METADATA_KEYS: Final = 50
MAX_METADATA_KEY_CHARS: Final = 40
MAX_METADATA_VALUE_CHARS: Final = 500
MAX_DESCRIPTION_CHARS: Final = 1_000
MAX_ID_CHARS: Final = 255
MAX_LIST_LIMIT: Final = 100

# -- amounts ------------------------------------------------------------------------------

# Where Stripe's smallest unit is not ISO 4217's minor unit: MGA counts whole ariary, ISK keeps
# two decimals (and whole kronur only); BHD, JOD, KWD, OMR, TND take multiples of 10
# (https://docs.stripe.com/currencies, "Special cases", "Three-decimal currencies").
_EXPONENT_OVERRIDES: Final[Mapping[str, int]] = {"ISK": 2, "MGA": 0}
_THREE_DECIMAL: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
_THREE_DECIMAL_STEP: Final = 10
_DIGITS: Final = re.compile(r"[0-9]{1,15}")


def _shift(currency: str) -> int:
    """Decimal places the acquirer counts beyond (or short of) ISO 4217's minor unit."""
    return _EXPONENT_OVERRIDES.get(currency, exponent(currency)) - exponent(currency)


def to_amount(money: Money) -> int:
    """`money` as the acquirer's integer amount (exact: every amount here came from one)."""
    shift = _shift(money.currency)
    factor = int(10 ** abs(shift))
    return money.minor * factor if shift >= 0 else money.minor // factor


def money(amount: str, currency: str, param: str = "amount") -> Money:
    """The acquirer's (integer amount, lowercase currency) as Money, above zero; CardError if not."""
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise invalid(f"Invalid currency: {currency!r} (a lowercase ISO 4217 code)", "currency")
    code = currency.upper()
    if not _DIGITS.fullmatch(amount) or int(amount) == 0:
        raise invalid(f"Invalid positive integer: {amount!r}", param)
    units = int(amount)
    try:
        shift = _shift(code)
        if code in _THREE_DECIMAL and units % _THREE_DECIMAL_STEP:
            raise invalid(f"{code} amounts must be multiples of {_THREE_DECIMAL_STEP}", param)
        if shift <= 0:
            return Money(units * 10**-shift, code)
        minor, remainder = divmod(units, 10**shift)
        if remainder:
            raise invalid(f"{code} amounts must be multiples of {10**shift}", param)
        return Money(minor, code)
    except (AmountError, CurrencyError) as exc:
        raise invalid(str(exc), param) from exc


def currency_of(amount: Money) -> str:
    return amount.currency.lower()


# -- errors -------------------------------------------------------------------------------


class CardError(AnswerError):
    """An error answer in Stripe's shape: `{"error": {"type", "code", "message", ...}}`."""

    def __init__(self, status: int, kind: str, message: str, **fields: Any) -> None:
        super().__init__(f"{status} {kind}: {message}")
        self.status = status
        self.payload = {"error": {"type": kind, "message": message, **{k: v for k, v in fields.items() if v}}}

    def answer(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.payload, status=self.status)


def invalid(message: str, param: str | None = None, code: str = "parameter_invalid") -> CardError:
    return CardError(400, "invalid_request_error", message, code=code, param=param)


def missing(kind: str, object_id: str, param: str = "id") -> CardError:
    return CardError(
        404, "invalid_request_error", f"No such {kind}: {object_id!r}", code="resource_missing", param=param
    )


def refused(exc: Refused) -> CardError:
    """The neutral core's refusals, Stripe's way: a state conflict is a 400 too; full is Stripe's 5xx."""
    if exc.kind is Refusal.FULL:
        return CardError(503, "api_error", exc.message)
    return invalid(exc.message, code=exc.code.lower())


# -- parameters ---------------------------------------------------------------------------

_FAMILY: Final = re.compile(r"([a-z_]+)\[([^\[\]]*)\]")


class Params:
    """A request's parameters as Stripe sends them: flat keys, bracketed for hashes and arrays
    (`metadata[k]`, `expand[0]`), each given once. Unknown ones are refused, as Stripe does."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        if len(pairs) > MAX_PARAMS:
            raise invalid(f"more than {MAX_PARAMS} parameters")
        self.values: dict[str, str] = {}
        for key, value in pairs:
            if key in self.values:
                raise invalid(f"Parameter {key} is given twice", key)
            self.values[key] = value

    @classmethod
    def parse(cls, text: str) -> Params:
        try:
            return cls(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
        except ValueError as exc:
            raise invalid(f"malformed parameters: {exc}") from exc

    def only(self, plain: frozenset[str], families: frozenset[str] = frozenset()) -> Params:
        """Refuse any parameter but these (families: `name[...]` keys of a hash or an array)."""
        for key in self.values:
            family = _FAMILY.fullmatch(key)
            known = key in plain or (family is not None and family.group(1) in families)
            if not known:
                raise invalid(f"Received unknown parameter: {key}", key, "parameter_unknown")
        return self

    def text(self, name: str, *, max_chars: int = MAX_ID_CHARS) -> str:
        """The parameter, "" when absent."""
        value = self.values.get(name, "")
        if len(value) > max_chars:
            raise invalid(f"{name} is longer than {max_chars} characters", name)
        return value

    def required(self, name: str, *, max_chars: int = MAX_ID_CHARS) -> str:
        value = self.text(name, max_chars=max_chars)
        if not value:
            raise invalid(f"Missing required param: {name}.", name, "parameter_missing")
        return value

    def flag(self, name: str) -> bool:
        value = self.values.get(name, "false")
        if value not in ("true", "false"):
            raise invalid(f"Invalid boolean: {value!r}", name)
        return value == "true"

    def listed(self, name: str) -> list[str]:
        """An array parameter (`name[0]`, `name[1]`, ... or `name[]`), in index order."""
        found: list[tuple[int, str]] = []
        for key, value in self.values.items():
            family = _FAMILY.fullmatch(key)
            if family is not None and family.group(1) == name:
                index = family.group(2)
                if index and not index.isdigit():
                    raise invalid(f"Invalid array index in {key}", key)
                found.append((int(index) if index else len(found), value))
        return [value for _index, value in sorted(found)]

    def metadata(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, value in self.values.items():
            family = _FAMILY.fullmatch(key)
            if family is None or family.group(1) != "metadata":
                continue
            name = family.group(2)
            if not name or len(name) > MAX_METADATA_KEY_CHARS or len(value) > MAX_METADATA_VALUE_CHARS:
                raise invalid(f"metadata key or value too long: {key}", key)
            found[name] = value
        if len(found) > MAX_METADATA_KEYS:
            raise invalid(f"metadata has more than {MAX_METADATA_KEYS} keys", "metadata")
        return found

    def expanded(self) -> frozenset[str]:
        return frozenset(self.listed("expand"))

    def limit(self, default: int) -> int:
        text = self.values.get("limit", str(default))
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIST_LIMIT:
            raise invalid(f"limit must be within 1..{MAX_LIST_LIMIT}", "limit")
        return int(text)

    def fingerprint(self) -> tuple[tuple[str, str], ...]:
        """What an idempotent replay must match: the same parameters, whatever their order."""
        return tuple(sorted(self.values.items()))
