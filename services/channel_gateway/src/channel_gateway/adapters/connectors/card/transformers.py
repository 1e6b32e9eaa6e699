"""The card acquirer's wire format (Stripe's PaymentIntents API): form-encoded requests, JSON answers.

Money turns into the acquirer's format here and nowhere else. The acquirer counts
an amount as an integer of the currency's "smallest unit", which is ISO 4217's
minor unit except where Stripe says otherwise (https://docs.stripe.com/currencies,
"Zero-decimal currencies", "Three-decimal currencies", "Special cases"):

- MGA is zero-decimal at Stripe although ISO 4217 gives it 2 decimals;
- ISK is ISO zero-decimal but stays two-decimal in Stripe's API (an amount of 100
  is 1 krona, and it must be a multiple of 100; Stripe support, "Deprecation of
  fractional ISK charges and refunds");
- BHD, JOD, KWD, OMR and TND are three-decimal, and the last digit must be 0.

A conversion that is not exact is refused (AmountError), never rounded: the
connector refuses such a request before sending it, and an answer carrying one is
no answer.

Every function that reads an answer raises ValueError (or KeyError/TypeError) on
anything it does not recognise; the connector turns that into ChannelUnavailable,
because an answer we cannot read is no answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from paykit.money import AmountError, CurrencyError, Money, exponent

from channel_gateway.adapters.connectors.card.errors import AcquirerError
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChargeCommand,
    ChargeReply,
    ChargeState,
    CloseReply,
    CloseResult,
    NotificationRejected,
    PaymentNotification,
    QueryReply,
    RefundCommand,
    RefundNotification,
    RefundReply,
    RefundState,
    VerifiedNotification,
)

# -- money --------------------------------------------------------------------------

# Where Stripe's smallest unit is not ISO 4217's minor unit (see the module docstring).
_EXPONENT_OVERRIDES: Final[Mapping[str, int]] = {"ISK": 2, "MGA": 0}
_THREE_DECIMAL: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
_THREE_DECIMAL_STEP: Final = 10


def acquirer_exponent(currency: str) -> int:
    """Decimal places of the acquirer's integer amounts in `currency` (CurrencyError if unknown)."""
    return _EXPONENT_OVERRIDES.get(currency, exponent(currency))


def to_amount(money: Money) -> int:
    """`money` as the acquirer's integer amount; AmountError when it has no exact one."""
    shift = acquirer_exponent(money.currency) - exponent(money.currency)
    amount: int
    if shift >= 0:
        amount = money.minor * 10**shift
    else:
        amount, remainder = divmod(money.minor, 10**-shift)
        if remainder:
            raise AmountError(
                f"{money} has no whole amount at the acquirer (it counts whole {money.currency})"
            )
    if money.currency in _THREE_DECIMAL and amount % _THREE_DECIMAL_STEP:
        raise AmountError(f"{money}: the acquirer takes {money.currency} amounts in multiples of 0.010 only")
    return amount


def from_amount(amount: object, currency: object) -> Money:
    """The acquirer's (integer amount, lowercase currency) as Money, exactly."""
    if not isinstance(currency, str) or currency != currency.lower():
        raise CurrencyError(f"currency {currency!r} is not the acquirer's lowercase ISO 4217 code")
    code = currency.upper()
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise AmountError(f"amount {amount!r} is not a non-negative integer")
    shift = acquirer_exponent(code) - exponent(code)
    if shift <= 0:
        return Money(amount * 10**-shift, code)
    minor, remainder = divmod(amount, 10**shift)
    if remainder:
        raise AmountError(f"amount {amount} {currency} is not a whole {code} minor unit")
    return Money(minor, code)


def currency_code(money: Money) -> str:
    # Stripe wants the ISO code in lowercase in every request (docs.stripe.com/currencies).
    return money.currency.lower()


# -- requests -----------------------------------------------------------------------

Form = list[tuple[str, str]]
# Stripe's limits (docs.stripe.com/metadata: 500 characters a value; description 1000).
METADATA_VALUE_MAX_CHARS: Final = 500
DESCRIPTION_MAX_CHARS: Final = 1_000
SEARCH_LIMIT: Final = 10
REFUND_LIST_LIMIT: Final = 100
CANCELLATION_REASON: Final = "abandoned"


def encode(form: Sequence[tuple[str, str]]) -> bytes:
    """application/x-www-form-urlencoded, with Stripe's bracket notation already in the keys."""
    return urlencode(list(form)).encode()


def payment_method_for(command: ChargeCommand, default: str) -> str:
    """The card to charge: the command's method when it is a PaymentMethod id ("pm_..."), a token
    the payer's browser got from the acquirer; else the account's configured default (a test
    card such as "pm_card_visa"); "" when there is neither."""
    method = command.method.strip()
    return method if method.startswith("pm_") else default


def create_intent_form(
    command: ChargeCommand, payment_method: str, capture_method: str, return_url: str, confirm: bool
) -> Form:
    form: Form = [
        ("amount", str(to_amount(command.amount))),
        ("currency", currency_code(command.amount)),
        ("payment_method", payment_method),
        # Cards only: no redirect-based method can be chosen, so confirm=true needs no return_url.
        ("payment_method_types[0]", "card"),
        ("capture_method", capture_method),
        ("description", command.subject[:DESCRIPTION_MAX_CHARS]),
        ("metadata[payment_id]", command.payment_id),
        ("metadata[order_id]", command.order_id),
    ]
    if confirm:
        form.append(("confirm", "true"))
        if return_url:
            form.append(("return_url", return_url))
    return form


def confirm_form(payment_method: str, return_url: str) -> Form:
    form: Form = [("payment_method", payment_method)]
    if return_url:
        form.append(("return_url", return_url))
    return form


def capture_form(amount: Money | None) -> Form:
    # Without amount_to_capture the whole authorised amount is captured.
    return [] if amount is None else [("amount_to_capture", str(to_amount(amount)))]


def cancel_form() -> Form:
    return [("cancellation_reason", CANCELLATION_REASON)]


def refund_form(command: RefundCommand, intent_id: str) -> Form:
    # Stripe's `reason` is an enum (duplicate, fraudulent, requested_by_customer); ours is free text.
    return [
        ("payment_intent", intent_id),
        ("amount", str(to_amount(command.amount))),
        ("metadata[refund_id]", command.refund_id),
        ("metadata[payment_id]", command.payment_id),
        ("metadata[reason]", command.reason[:METADATA_VALUE_MAX_CHARS]),
    ]


def _quoted(value: str) -> str:
    # Stripe's search query language: strings in single quotes, \' and \\ escaped.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def search_params(payment_id: str) -> Form:
    return [
        ("query", f"metadata['payment_id']:{_quoted(payment_id)}"),
        ("limit", str(SEARCH_LIMIT)),
        ("expand[0]", "data.latest_charge"),
    ]


def retrieve_params() -> Form:
    # The latest charge's creation time is when the intent was paid.
    return [("expand[0]", "latest_charge")]


def list_refunds_params(intent_id: str) -> Form:
    return [("payment_intent", intent_id), ("limit", str(REFUND_LIST_LIMIT))]


# -- answers ------------------------------------------------------------------------

INTENT_STATUSES: Final = frozenset(
    {
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "canceled",
        "succeeded",
    }
)
# Stripe "Cancel a PaymentIntent": these can be canceled (processing only "in rare cases").
CANCELABLE_STATUSES: Final = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)
_PENDING_STATUSES: Final = frozenset(
    {"requires_confirmation", "requires_action", "processing", "requires_capture"}
)
_REFUND_STATES: Final[Mapping[str, RefundState]] = {
    "pending": RefundState.PROCESSING,
    "requires_action": RefundState.PROCESSING,
    "succeeded": RefundState.SUCCEEDED,
    "failed": RefundState.FAILED,
    "canceled": RefundState.FAILED,
}


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{key} is {type(value).__name__}, not text")
    return value


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{key} is {type(value).__name__}, not an object")
    return value


def _id(data: Mapping[str, Any], kind: str, prefix: str) -> str:
    if data.get("object") != kind:
        raise ValueError(f"answer is a {data.get('object')!r}, not a {kind}")
    found = _text(data, "id")
    if not found.startswith(prefix):
        raise ValueError(f"{kind} id {found!r} does not start with {prefix!r}")
    return found


def _time(value: object) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"time {value!r} is not unix seconds")
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class Intent:
    """A PaymentIntent, as much of it as we use."""

    id: str
    status: str
    amount: Money
    amount_received: Money
    capture_method: str
    # Ours, echoed from metadata ("" when the answer carries none, e.g. a mock's fixture).
    payment_id: str
    order_id: str
    pay_url: str
    error_code: str
    error_message: str
    paid_at: datetime | None


def read_intent(data: Mapping[str, Any]) -> Intent:
    intent_id = _id(data, "payment_intent", "pi_")
    status = _text(data, "status")
    if status not in INTENT_STATUSES:
        raise ValueError(f"unknown payment intent status {status!r}")
    metadata = _object(data, "metadata")
    error = _object(data, "last_payment_error")
    action = _object(data, "next_action")
    redirect = _object(action, "redirect_to_url") if action.get("type") == "redirect_to_url" else {}
    charge = data.get("latest_charge")
    paid_at = _time(charge["created"]) if isinstance(charge, dict) and status == "succeeded" else None
    return Intent(
        id=intent_id,
        status=status,
        amount=from_amount(data.get("amount"), data.get("currency")),
        amount_received=from_amount(data.get("amount_received", 0), data.get("currency")),
        capture_method=_text(data, "capture_method"),
        payment_id=_text(metadata, "payment_id"),
        order_id=_text(metadata, "order_id"),
        pay_url=_text(redirect, "url"),
        error_code=_text(error, "decline_code") or _text(error, "code") or _text(error, "type"),
        error_message=_text(error, "message"),
        paid_at=paid_at,
    )


def check_intent(intent: Intent, payment_id: str, amount: Money | None = None) -> Intent:
    """`intent`, if it can be the answer about our payment; ValueError when it is another's."""
    if intent.payment_id and intent.payment_id != payment_id:
        raise ValueError(f"intent {intent.id} belongs to payment {intent.payment_id!r}, not {payment_id}")
    if amount is not None and intent.amount != amount:
        raise ValueError(f"intent {intent.id} is for {intent.amount}, the charge asked for {amount}")
    return intent


def charge_state(intent: Intent) -> ChargeState:
    if intent.status == "succeeded":
        return ChargeState.SUCCEEDED
    if intent.status == "canceled":
        return ChargeState.CLOSED
    if intent.status in _PENDING_STATUSES:
        # requires_capture: authorised, not captured, so no money is taken yet.
        return ChargeState.PENDING
    # requires_payment_method: declined when an attempt failed, else waiting for a card.
    return ChargeState.DECLINED if intent.error_code else ChargeState.PENDING


def charge_reply(intent: Intent) -> ChargeReply:
    state = charge_state(intent)
    declined = state is ChargeState.DECLINED
    return ChargeReply(
        state=state,
        channel_trade_no=intent.id,
        pay_url=intent.pay_url if state is ChargeState.PENDING else "",
        decline_code=intent.error_code if declined else "",
        decline_message=intent.error_message if declined else "",
    )


def declined_reply(error: AcquirerError) -> ChargeReply:
    """A charge the acquirer answered with a card error (402): declined, nothing taken."""
    intent = error.payment_intent or {}
    intent_id = intent.get("id")
    return ChargeReply(
        state=ChargeState.DECLINED,
        channel_trade_no=intent_id if isinstance(intent_id, str) else "",
        decline_code=error.channel_code,
        decline_message=error.message,
    )


def query_reply(intent: Intent) -> QueryReply:
    state = charge_state(intent)
    if state is ChargeState.SUCCEEDED:
        if not intent.amount_received.is_positive:
            raise ValueError(f"intent {intent.id} succeeded with nothing received")
        return QueryReply(state, intent.id, intent.amount_received, intent.paid_at)
    return QueryReply(state, intent.id, intent.amount, None)


def close_reply(intent: Intent) -> CloseReply | None:
    """The close's result when the intent's status settles it; None while it is still payable."""
    if intent.status == "succeeded":
        return CloseReply(CloseResult.ALREADY_PAID, f"payment intent {intent.id} already succeeded")
    if intent.status == "canceled":
        return CloseReply(CloseResult.CLOSED)
    return None


_INTENT_PREFERENCE: Final = (
    "succeeded",
    "processing",
    "requires_capture",
    "requires_action",
    "requires_confirmation",
    "requires_payment_method",
    "canceled",
)


def pick_intent(intents: Sequence[Intent], payment_id: str) -> Intent | None:
    """Of the intents found for a payment, the one that says most about its money.

    Normally there is one (the create is idempotent on the payment id); a second
    can only come from a charge repeated after Stripe pruned the key (24 h): then
    a succeeded one wins, since money taken must never be reported as not taken."""
    ours = [i for i in intents if i.payment_id == payment_id]
    ours.sort(key=lambda i: _INTENT_PREFERENCE.index(i.status))
    return ours[0] if ours else None


def read_list(data: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    """The objects of a list or search_result answer."""
    if data.get("object") != kind:
        raise ValueError(f"answer is a {data.get('object')!r}, not a {kind}")
    items = data.get("data")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise TypeError("data is not a list of objects")
    return items


@dataclass(frozen=True)
class CardRefund:
    id: str
    status: str
    amount: Money
    payment_intent: str
    # Ours, echoed from metadata ("" when absent).
    refund_id: str
    payment_id: str
    failure_reason: str
    created: datetime


def read_refund(data: Mapping[str, Any]) -> CardRefund:
    refund_id = _id(data, "refund", "re_")
    status = _text(data, "status")
    if status not in _REFUND_STATES:
        raise ValueError(f"unknown refund status {status!r}")
    metadata = _object(data, "metadata")
    return CardRefund(
        id=refund_id,
        status=status,
        amount=from_amount(data.get("amount"), data.get("currency")),
        payment_intent=_text(data, "payment_intent"),
        refund_id=_text(metadata, "refund_id"),
        payment_id=_text(metadata, "payment_id"),
        failure_reason=_text(data, "failure_reason"),
        created=_time(data.get("created")),
    )


def check_refund(refund: CardRefund, refund_id: str, amount: Money | None = None) -> CardRefund:
    """`refund`, if it can be the answer about our refund; ValueError when it is another's."""
    if refund.refund_id and refund.refund_id != refund_id:
        raise ValueError(f"refund {refund.id} is our {refund.refund_id!r}, not {refund_id}")
    if amount is not None and refund.amount != amount:
        raise ValueError(f"refund {refund.id} is for {refund.amount}, we asked for {amount}")
    return refund


def refund_reply(refund: CardRefund) -> RefundReply:
    state = _REFUND_STATES[refund.status]
    return RefundReply(
        state=state,
        channel_refund_no=refund.id,
        failure_code=refund.failure_reason or (refund.status if state is RefundState.FAILED else ""),
        amount=refund.amount,
        # A refund has no "succeeded at"; its creation is the closest the acquirer tells.
        refunded_at=refund.created if state is RefundState.SUCCEEDED else None,
    )


# -- notifications ------------------------------------------------------------------

PAYMENT_EVENTS: Final = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed"})
REFUND_EVENTS: Final = frozenset({"refund.created", "refund.updated", "refund.failed"})
CHARGE_REFUNDED: Final = "charge.refunded"
# Of an event type we do not act on, this much is kept in the reason.
_KIND_SHOWN_CHARS: Final = 80


def _payment_notification(
    event_id: str, kind: str, data: Mapping[str, Any], at: datetime
) -> PaymentNotification:
    intent = read_intent(data)
    if not intent.payment_id:
        raise NotificationRejected(f"payment intent {intent.id} carries no metadata.payment_id: not ours")
    succeeded = kind == "payment_intent.succeeded"
    if succeeded != (intent.status == "succeeded"):
        raise NotificationRejected(f"{kind} about an intent in status {intent.status!r}")
    amount = intent.amount_received if succeeded else intent.amount
    if not amount.is_positive:
        raise NotificationRejected(f"{kind} with amount {amount}")
    return PaymentNotification(
        channel_notify_id=event_id,
        payment_id=intent.payment_id,
        channel_trade_no=intent.id,
        succeeded=succeeded,
        amount=amount,
        occurred_at=intent.paid_at or at,
    )


def _refund_notification(
    event_id: str, refund: CardRefund, payment_id: str, at: datetime
) -> RefundNotification | AcknowledgedOnly:
    if not refund.refund_id or not payment_id:
        raise NotificationRejected(f"refund {refund.id} carries no metadata.refund_id/payment_id: not ours")
    state = _REFUND_STATES[refund.status]
    if state not in (RefundState.SUCCEEDED, RefundState.FAILED):
        # Genuine (refund.created, or an update on the way): taken, so Stripe stops sending it.
        return AcknowledgedOnly(event_id, f"refund {refund.id} is still {refund.status!r}: nothing final")
    if not refund.amount.is_positive:
        raise NotificationRejected(f"refund {refund.id} with amount {refund.amount}")
    return RefundNotification(
        channel_notify_id=event_id,
        refund_id=refund.refund_id,
        payment_id=payment_id,
        channel_refund_no=refund.id,
        succeeded=state is RefundState.SUCCEEDED,
        amount=refund.amount,
        occurred_at=at,
    )


def _charge_refunded(
    event_id: str, charge: Mapping[str, Any], at: datetime
) -> RefundNotification | AcknowledgedOnly:
    """charge.refunded: the charge's newest refund of ours is the one this event is about (the
    event is sent as each refund is made, with the charge as it then was)."""
    _id(charge, "charge", "ch_")
    listed = _object(charge, "refunds")
    if not listed:
        raise NotificationRejected("charge.refunded without its refunds list: refund.updated tells instead")
    refunds = [read_refund(r) for r in read_list(listed, "list")]
    ours = [r for r in refunds if r.refund_id]
    if not ours:
        raise NotificationRejected("charge.refunded lists no refund of ours")
    newest = max(ours, key=lambda r: r.created)
    payment_id = newest.payment_id or _text(_object(charge, "metadata"), "payment_id")
    return _refund_notification(event_id, newest, payment_id, at)


def notification(body: bytes) -> VerifiedNotification | AcknowledgedOnly:
    """Parse an event whose signature was already checked. A well-formed event of a type we do not
    act on is AcknowledgedOnly: refusing it would only make Stripe send it again for days."""
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            raise TypeError("event is not a JSON object")
        event_id = _id(event, "event", "evt_")
        kind = _text(event, "type")
        at = _time(event.get("created"))
        data = _object(_object(event, "data"), "object")
        if kind in PAYMENT_EVENTS:
            return _payment_notification(event_id, kind, data, at)
        if kind in REFUND_EVENTS:
            refund = read_refund(data)
            return _refund_notification(event_id, refund, refund.payment_id, at)
        if kind == CHARGE_REFUNDED:
            return _charge_refunded(event_id, data, at)
    # AmountError is a ValueError: caught first to keep its precise reason.
    except (AmountError, CurrencyError) as exc:
        raise NotificationRejected(f"amount in wrong format: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise NotificationRejected(f"malformed event: {exc}") from exc
    return AcknowledgedOnly(event_id, f"event type {kind[:_KIND_SHOWN_CHARS]!r} is not acted on")
