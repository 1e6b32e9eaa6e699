"""Field checks for incoming order requests; each error names its field."""

from __future__ import annotations

import re

from paykit.errors import InvalidArgument
from paykit.money import Money

# Matched with fullmatch: `$` with match() also accepts a trailing newline.
MERCHANT_ORDER_NO_PATTERN = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")
MERCHANT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SUBJECT_MAX_CHARS = 256
MAX_ORDER_AMOUNT_MINOR = 10**12
DEFAULT_EXPIRES_IN_S = 15 * 60
MAX_EXPIRES_IN_S = 7 * 24 * 3600
# What a payer may choose unless ORDER_PAYMENT_METHODS says otherwise.
DEFAULT_PAYMENT_METHODS = frozenset({"qr"})
# Printable ASCII without spaces: the key is echoed to payment-core inside its own key.
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")
REASON_MAX_CHARS = 256
DEFAULT_CLOSE_REASON = "cancelled"


def validate_order_amount(field: str, amount: Money) -> Money:
    """An order's amount: positive and within the limit (the currency was checked at parsing)."""
    if amount.minor <= 0:
        raise InvalidArgument(f"{field}.minor", f"must be positive, got {amount.minor}")
    if amount.minor > MAX_ORDER_AMOUNT_MINOR:
        raise InvalidArgument(f"{field}.minor", f"exceeds the maximum of {MAX_ORDER_AMOUNT_MINOR}")
    return amount


def validate_create(merchant_id: str, merchant_order_no: str, subject: str, expires_in_s: int) -> int:
    if not MERCHANT_ID_PATTERN.fullmatch(merchant_id):
        raise InvalidArgument("merchant_id", "is required: 1-64 letters, digits, '_' or '-'")
    if not MERCHANT_ORDER_NO_PATTERN.fullmatch(merchant_order_no):
        raise InvalidArgument("merchant_order_no", "is required: 1-64 letters, digits or _-.:")
    if len(subject) > SUBJECT_MAX_CHARS:
        raise InvalidArgument("subject", f"is longer than {SUBJECT_MAX_CHARS} characters")
    if expires_in_s < 0 or expires_in_s > MAX_EXPIRES_IN_S:
        raise InvalidArgument("expires_in_s", f"must be between 0 and {MAX_EXPIRES_IN_S}")
    return expires_in_s or DEFAULT_EXPIRES_IN_S


def validate_method(method: str, allowed: frozenset[str] = DEFAULT_PAYMENT_METHODS) -> str:
    # Checked here, before the pay attempt is stored, so a bad method writes nothing.
    if method not in allowed:
        raise InvalidArgument("method", f"must be one of {sorted(allowed)}, got {method!r}")
    return method


def validate_order_id(order_id: str) -> str:
    if not order_id:
        raise InvalidArgument("order_id", "is required")
    return order_id


def validate_reason(reason: str) -> str:
    if len(reason) > REASON_MAX_CHARS:
        raise InvalidArgument("reason", f"is longer than {REASON_MAX_CHARS} characters")
    return reason


def validate_close(order_id: str, reason: str) -> str:
    """The reason a merchant's CloseOrder records; empty means a plain cancellation."""
    validate_order_id(order_id)
    return validate_reason(reason) or DEFAULT_CLOSE_REASON


def validate_idempotency_key(idempotency_key: str) -> str:
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        raise InvalidArgument("idempotency_key", "is required: 1-128 printable ASCII characters, no spaces")
    return idempotency_key


def validate_refund(idempotency_key: str, order_id: str, amount: Money, reason: str) -> None:
    validate_idempotency_key(idempotency_key)
    validate_order_id(order_id)
    validate_order_amount("amount", amount)
    validate_reason(reason)
