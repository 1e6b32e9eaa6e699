"""Field checks for incoming order requests; each error names its field."""

from __future__ import annotations

import re

from paykit.errors import InvalidArgument
from paykit.money import Money

MERCHANT_ORDER_NO_PATTERN = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")
MERCHANT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SUBJECT_MAX_CHARS = 256
MAX_ORDER_AMOUNT_MINOR = 10**12
DEFAULT_EXPIRES_IN_S = 15 * 60
MAX_EXPIRES_IN_S = 7 * 24 * 3600
PAYMENT_METHODS = frozenset({"qr"})


def validate_order_amount(field: str, amount: Money) -> Money:
    """An order's amount: positive and within the limit (the currency was checked at parsing)."""
    if amount.minor <= 0:
        raise InvalidArgument(f"{field}.minor", f"must be positive, got {amount.minor}")
    if amount.minor > MAX_ORDER_AMOUNT_MINOR:
        raise InvalidArgument(f"{field}.minor", f"exceeds the maximum of {MAX_ORDER_AMOUNT_MINOR}")
    return amount


def validate_create(merchant_id: str, merchant_order_no: str, subject: str, expires_in_s: int) -> int:
    if not MERCHANT_ID_PATTERN.match(merchant_id):
        raise InvalidArgument("merchant_id", "is required: 1-64 letters, digits, '_' or '-'")
    if not MERCHANT_ORDER_NO_PATTERN.match(merchant_order_no):
        raise InvalidArgument("merchant_order_no", "is required: 1-64 letters, digits or _-.:")
    if len(subject) > SUBJECT_MAX_CHARS:
        raise InvalidArgument("subject", f"is longer than {SUBJECT_MAX_CHARS} characters")
    if expires_in_s < 0 or expires_in_s > MAX_EXPIRES_IN_S:
        raise InvalidArgument("expires_in_s", f"must be between 0 and {MAX_EXPIRES_IN_S}")
    return expires_in_s or DEFAULT_EXPIRES_IN_S


def validate_method(method: str) -> str:
    if method not in PAYMENT_METHODS:
        raise InvalidArgument("method", f"must be one of {sorted(PAYMENT_METHODS)}, got {method!r}")
    return method
