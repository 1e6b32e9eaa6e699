"""The card acquirer's error answers, mapped to ChannelErrorKind: this channel's one error table.

The acquirer speaks Stripe's error format: an HTTP status and a JSON body
`{"error": {"type", "code", "decline_code", "message", "param", "payment_intent"}}`.

Sources (what each row rests on):

- Stripe API reference, "Errors" (https://docs.stripe.com/api/errors): the status
  summary (400 bad request: a missing parameter; 401 no valid API key; 402 the
  parameters were valid but the request failed; 403 the key lacks permission; 404
  no such resource; 409 the request conflicts with another, "perhaps due to using
  the same idempotent key"; 424 an external dependency failed; 429 too many
  requests; 500/502/503/504 Stripe's own errors) and the error types api_error,
  card_error, idempotency_error, invalid_request_error.
- Stripe "Idempotent requests" (https://docs.stripe.com/idempotency): the first
  answer under a key is replayed, 500s included; the same key with other
  parameters is an idempotency error; keys may be pruned after 24 hours.
- Stripe "Error codes" (https://docs.stripe.com/error-codes): idempotency_key_in_use
  (a request with the same key is still running), lock_timeout (another request
  holds the object), rate_limit, resource_missing,
  payment_intent_unexpected_state.
- Stripe SDKs' error classes (e.g. stripe-terminal's ApiErrorType): authentication_error,
  rate_limit_error and permission_error are also seen as `type`.

Rows are applied in order: 5xx (and anything that is not a 4xx) -> the outcome is
unknown; a known `code`; then 401/403/429 by status (Stripe answers a bad key with
type invalid_request_error, so the status is what tells); then `type`; then the
remaining statuses; any other 4xx is an invalid request (nothing was done).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn, TypeAlias

from channel_gateway.domain.channel import (
    ChannelConflict,
    ChannelErrorKind,
    ChannelRefused,
    ChannelUnavailable,
    RawExchange,
)

# Not a ChannelErrorKind: the acquirer holds another request under our idempotency key.
CONFLICT: Final = "CONFLICT"
Verdict: TypeAlias = ChannelErrorKind | Literal["CONFLICT"]

_K = ChannelErrorKind
# A known `code` decides before status or type.
_BY_CODE: Final[Mapping[str, Verdict]] = {
    # The first request under our key is still running at the acquirer: it may yet succeed.
    "idempotency_key_in_use": _K.UNKNOWN_OUTCOME,
    # Another request holds the object; this one was not acted on. Try again later.
    "lock_timeout": _K.CHANNEL_UNAVAILABLE,
    "rate_limit": _K.RATE_LIMITED,
    "api_key_expired": _K.AUTHENTICATION,
    "secret_key_required": _K.AUTHENTICATION,
}
# Statuses that say more than the body's type (a bad key comes as invalid_request_error).
_BY_STATUS_FIRST: Final[Mapping[int, Verdict]] = {
    401: _K.AUTHENTICATION,
    403: _K.AUTHENTICATION,
    429: _K.RATE_LIMITED,
}
_BY_TYPE: Final[Mapping[str, Verdict]] = {
    "card_error": _K.DECLINED,
    "idempotency_error": CONFLICT,
    "invalid_request_error": _K.INVALID_REQUEST,
    "authentication_error": _K.AUTHENTICATION,
    "permission_error": _K.AUTHENTICATION,
    "rate_limit_error": _K.RATE_LIMITED,
    # Stripe's own failure, even under a 4xx: whether it acted is unknown.
    "api_error": _K.UNKNOWN_OUTCOME,
}
_BY_STATUS: Final[Mapping[int, Verdict]] = {
    400: _K.INVALID_REQUEST,
    402: _K.DECLINED,
    404: _K.INVALID_REQUEST,
    409: CONFLICT,
    # A dependency outside the acquirer failed mid-request: it may have acted.
    424: _K.UNKNOWN_OUTCOME,
}
_MESSAGE_MAX_CHARS: Final = 300


@dataclass(frozen=True)
class AcquirerError:
    """One error answer, read as far as it could be (an unreadable body leaves the fields empty)."""

    status: int
    type: str = ""
    code: str = ""
    decline_code: str = ""
    message: str = ""
    # The PaymentIntent the error is about (Stripe embeds it in errors on PaymentIntent requests).
    payment_intent: Mapping[str, Any] | None = None

    @property
    def channel_code(self) -> str:
        """The acquirer's most precise code, kept raw: decline code, else code, else type."""
        return self.decline_code or self.code or self.type or f"http_{self.status}"


def read_error(status: int, body: str) -> AcquirerError:
    """The error in an answer; never raises (a garbled body is an error with no fields)."""
    try:
        data = json.loads(body)
    except ValueError:
        return AcquirerError(status)
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return AcquirerError(status)

    def text(key: str) -> str:
        value = error.get(key)
        return value if isinstance(value, str) else ""

    intent = error.get("payment_intent")
    return AcquirerError(
        status=status,
        type=text("type"),
        code=text("code"),
        decline_code=text("decline_code"),
        message=text("message")[:_MESSAGE_MAX_CHARS],
        payment_intent=intent if isinstance(intent, dict) else None,
    )


def verdict(error: AcquirerError) -> Verdict:
    """What the answer means for us, by the table above."""
    if not 400 <= error.status < 500:
        return _K.UNKNOWN_OUTCOME
    if error.code in _BY_CODE:
        return _BY_CODE[error.code]
    if error.status in _BY_STATUS_FIRST:
        return _BY_STATUS_FIRST[error.status]
    if error.type in _BY_TYPE:
        return _BY_TYPE[error.type]
    return _BY_STATUS.get(error.status, _K.INVALID_REQUEST)


def raise_for(error: AcquirerError, operation: str, raw: RawExchange) -> NoReturn:
    """The exception an error answer becomes, for an operation that has no reply state for it.

    A DECLINED here (a card error outside a charge) proves nothing was done, so it is refused
    as an invalid request: ChannelRefused never carries DECLINED (see domain.channel)."""
    found = verdict(error)
    described = f"{operation}: HTTP {error.status} {error.type or '-'}/{error.channel_code}: {error.message}"
    if not isinstance(found, ChannelErrorKind):  # CONFLICT
        raise ChannelConflict(described, raw)
    if found is ChannelErrorKind.UNKNOWN_OUTCOME:
        raise ChannelUnavailable(described, raw)
    kind = ChannelErrorKind.INVALID_REQUEST if found is ChannelErrorKind.DECLINED else found
    raise ChannelRefused(kind, error.channel_code, described, raw)
