"""Reading request fields strictly: a malformed field is refused with its name, never guessed at."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from paykit.money import AmountError, CurrencyError, Money

from channel_simulator.limits import MAX_URL_CHARS


class FieldError(ValueError):
    """A request field that is missing or malformed; the message names it."""


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FieldError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FieldError("body must be a JSON object")
    return data


def text(data: dict[str, Any], name: str, *, max_chars: int, required: bool = True) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise FieldError(f"{name} must be a string")
    if required and not value:
        raise FieldError(f"{name} is required")
    if len(value) > max_chars:
        raise FieldError(f"{name} is longer than {max_chars} characters")
    return value


def url(data: dict[str, Any], name: str) -> str:
    value = text(data, name, max_chars=MAX_URL_CHARS)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FieldError(f"{name} must be an absolute http(s) URL")
    return value


def money(data: dict[str, Any]) -> Money:
    """`amount` (a decimal string in the currency's major unit) and `currency`, exactly, above zero."""
    amount, currency = data.get("amount"), data.get("currency")
    if not isinstance(amount, str) or not isinstance(currency, str):
        raise FieldError('amount and currency must be strings, e.g. "19.99" and "CNY"')
    try:
        return Money.parse(amount, currency, allow_zero=False)
    except (AmountError, CurrencyError) as exc:
        raise FieldError(f"amount: {exc}") from exc
