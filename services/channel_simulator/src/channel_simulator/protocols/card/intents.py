"""The card acquirer's PaymentIntents: create (and confirm), confirm, capture, cancel, retrieve, search.

A PaymentIntent is a core trade numbered by its intent id (operations.create_charge with
out_trade_no = "pi_..."), so the core's fates, faults and notifications apply:

- created with confirm=true and automatic capture, a card is authorised and captured while
  the acquirer answers (ChargeRequest.settles_at_once): the answer is the succeeded intent;
- with capture_method=manual it is authorised only (requires_capture; the core's payer is
  told not to pay) until POST .../capture takes the money;
- a card that needs 3-D Secure (pm_card_threeDSecure2Required, pm_card_authenticationRequired)
  answers requires_action; the simulated payer authenticates after pay_delay_ms and the intent
  succeeds (payment_intent.succeeded);
- created without confirm, nothing is charged (requires_confirmation) until POST .../confirm;
- a decline (a declining test card, `sim:decline` in the description, or the account's
  decline_rate) is 402 card_error with the intent, status requires_payment_method. The core
  stores no trade for a decline; the protocol keeps the declined intent (retrieve, search,
  cancel) and sends payment_intent.payment_failed.

`sim:` directives are read from `description`. The account's rates are drawn on every
create, confirmed or not; a decline drawn for an unconfirmed create is answered at once.
The sandbox captures whole authorisations only, and does not confirm a declined intent
again (Stripe would, with another card): create a new one.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Final

from paykit.money import Money

from channel_simulator import lifecycle, operations
from channel_simulator.accounts import Trade
from channel_simulator.limits import MAX_URL_CHARS
from channel_simulator.notifier import Notifier, plan_for
from channel_simulator.operations import DECLINE_MESSAGE, ChargeRequest, Fate, Refused
from channel_simulator.protocols.base import PaymentNotice
from channel_simulator.protocols.card import wire
from channel_simulator.protocols.card.accounts import new_id
from channel_simulator.protocols.card.http import Call, Reply
from channel_simulator.protocols.card.settlement import batch_capture
from channel_simulator.protocols.card.views import intent_status, intent_view
from channel_simulator.protocols.card.wire import NAME, CardError, invalid

CAPTURE_METHODS: Final = frozenset({"automatic", "automatic_async", "manual"})
CANCELLATION_REASONS: Final = frozenset({"abandoned", "duplicate", "fraudulent", "requested_by_customer"})
SEARCH_DEFAULT_LIMIT: Final = 10
_EXPAND: Final = frozenset({"expand"})

# Stripe's test PaymentMethods (https://docs.stripe.com/testing#declined-payments):
# payment method -> (error code, decline code, message).
Decline = tuple[str, str, str]
GENERIC_DECLINE: Final[Decline] = ("card_declined", "generic_decline", DECLINE_MESSAGE)
_DECLINED: Final[Decline] = ("card_declined", "generic_decline", "Your card was declined.")
_INSUFFICIENT: Final[Decline] = ("card_declined", "insufficient_funds", "Your card has insufficient funds.")
DECLINING_CARDS: Final[dict[str, Decline]] = {
    "pm_card_chargeDeclined": _DECLINED,
    "pm_card_visa_chargeDeclined": _DECLINED,
    "pm_card_chargeDeclinedInsufficientFunds": _INSUFFICIENT,
    "pm_card_visa_chargeDeclinedInsufficientFunds": _INSUFFICIENT,
    "pm_card_chargeDeclinedLostCard": ("card_declined", "lost_card", "Your card was declined."),
    "pm_card_visa_chargeDeclinedLostCard": ("card_declined", "lost_card", "Your card was declined."),
    "pm_card_chargeDeclinedStolenCard": ("card_declined", "stolen_card", "Your card was declined."),
    "pm_card_visa_chargeDeclinedStolenCard": ("card_declined", "stolen_card", "Your card was declined."),
    "pm_card_chargeDeclinedFraudulent": ("card_declined", "fraudulent", "Your card was declined."),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "expired_card", "Your card has expired."),
    "pm_card_chargeDeclinedIncorrectCvc": (
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    "pm_card_chargeDeclinedProcessingError": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}
AUTHENTICATING_CARDS: Final = frozenset(
    {"pm_card_threeDSecure2Required", "pm_card_threeDSecureRequired", "pm_card_authenticationRequired"}
)


def payment_error(decline: Decline) -> dict[str, Any]:
    code, decline_code, message = decline
    return {"type": "card_error", "code": code, "decline_code": decline_code, "message": message}


def _payment_method(value: str) -> str:
    if value and not value.startswith("pm_"):
        raise CardError(
            400,
            "invalid_request_error",
            f"No such PaymentMethod: {value!r}",
            code="resource_missing",
            param="payment_method",
        )
    return value


# -- shared by the handlers -------------------------------------------------------------------


def find_intent(call: Call, intent_id: str) -> Trade:
    trade = call.merchant.trade(NAME, intent_id) or call.account.declined.get(intent_id)
    if trade is None or trade.is_tombstone:
        raise wire.missing("payment_intent", intent_id, "intent")
    return trade


def _view(call: Call, trade: Trade, expand: frozenset[str]) -> dict[str, Any]:
    batch_capture(call.account.batches, trade)
    return intent_view(trade, expand_charge="latest_charge" in expand)


def _unexpected_state(trade: Trade, action: str) -> Reply:
    status = intent_status(trade)
    error = CardError(
        400,
        "invalid_request_error",
        f"You cannot {action} this PaymentIntent because it has a status of {status}.",
        code="payment_intent_unexpected_state",
        payment_intent=intent_view(trade),
    )
    return Reply.error(error)


def _declined(trade: Trade, error: dict[str, Any]) -> Reply:
    return Reply.json({"error": {**error, "payment_intent": intent_view(trade)}}, 402)


def _notify_failed(call: Call, trade: Trade) -> None:
    """payment_intent.payment_failed, with the intent as it was declined."""
    plan = plan_for(trade.directives, call.merchant.behaviour)
    notice = PaymentNotice(call.merchant, trade.snapshot())
    notifier = Notifier(call.sandbox.session(), call.protocol)
    call.sandbox.spawn(notifier.send(notice, plan, trade.deliveries))


def _notify_paid(call: Call, trade: Trade) -> None:
    call.sandbox.spawn(lifecycle.notify_payment(call.sandbox, call.merchant, trade))


# -- create -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewIntent:
    amount: Money
    description: str
    metadata: dict[str, str]
    payment_method: str
    capture_method: str
    confirm: bool
    return_url: str
    expand: frozenset[str]

    @property
    def manual(self) -> bool:
        return self.capture_method == "manual"


_CREATE_PARAMS: Final = frozenset(
    {"amount", "currency", "payment_method", "capture_method", "description", "confirm", "return_url"}
)


def _parse_create(params: wire.Params) -> NewIntent:
    params.only(_CREATE_PARAMS, frozenset({"metadata", "payment_method_types", "expand"}))
    amount = wire.money(params.required("amount"), params.required("currency"))
    types = params.listed("payment_method_types")
    if types and types != ["card"]:
        raise invalid(
            "The sandbox acquirer takes cards only: payment_method_types[0]=card", "payment_method_types"
        )
    capture_method = params.text("capture_method") or "automatic"
    if capture_method not in CAPTURE_METHODS:
        raise invalid(f"capture_method must be one of {', '.join(sorted(CAPTURE_METHODS))}", "capture_method")
    payment_method = _payment_method(params.text("payment_method"))
    confirm = params.flag("confirm")
    if confirm and not payment_method:
        raise invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            "payment_method",
            "parameter_missing",
        )
    return NewIntent(
        amount=amount,
        description=params.text("description", max_chars=wire.MAX_DESCRIPTION_CHARS),
        metadata=params.metadata(),
        payment_method=payment_method,
        capture_method=capture_method,
        confirm=confirm,
        return_url=params.text("return_url", max_chars=MAX_URL_CHARS),
        expand=params.expanded(),
    )


def _charge_request(intent_id: str, new: NewIntent) -> tuple[ChargeRequest, Decline | None]:
    """The core's charge for a new intent, and the declining test card's decline if any."""
    try:
        ask = ChargeRequest.with_directives(intent_id, new.amount, "", new.description)
    except Refused as exc:
        raise wire.refused(exc) from exc
    asked = ask.directives
    card_decline = DECLINING_CARDS.get(new.payment_method) if new.confirm else None
    core = asked
    if not new.confirm:
        # Nothing is charged before confirmation: the payer waits, and so do the request's faults.
        core = dataclasses.replace(
            asked, no_pay=True, decline=False, timeout=False, success_after_timeout=False
        )
    elif new.manual:
        # Authorised only; the capture takes the money, not the payer.
        core = dataclasses.replace(asked, no_pay=True)
    if card_decline is not None:
        core = dataclasses.replace(core, decline=True)
    authenticates = new.payment_method in AUTHENTICATING_CARDS
    extra = {
        "metadata": new.metadata,
        "capture_method": new.capture_method,
        "payment_method": new.payment_method,
        "return_url": new.return_url,
        "confirmed": new.confirm,
        "authorised": new.confirm and new.manual,
        "authenticates": authenticates,
        "decline_on_confirm": asked.decline and not new.confirm,
    }
    at_once = new.confirm and not new.manual and not authenticates
    return dataclasses.replace(ask, directives=core, settles_at_once=at_once, extra=extra), card_decline


async def create_intent(call: Call) -> Reply | None:
    new = _parse_create(call.params)
    intent_id = new_id("pi")
    ask, card_decline = _charge_request(intent_id, new)
    try:
        outcome = await operations.create_charge(call.sandbox, call.merchant, NAME, ask)
    except Refused as exc:
        raise wire.refused(exc) from exc
    if outcome.fate is Fate.LOST:
        return None
    if outcome.fate is Fate.DECLINED or outcome.trade is None:
        return _decline_new(call, ask, card_decline or GENERIC_DECLINE)
    call.account.index(intent_id, new.metadata)
    batch_capture(call.account.batches, outcome.trade)
    shown = outcome.shown or outcome.trade
    view = intent_view(shown, expand_charge="latest_charge" in new.expand)
    return Reply.json(view, lost=outcome.fate is Fate.ANSWER_LOST)


def _decline_new(call: Call, ask: ChargeRequest, decline: Decline) -> Reply:
    """The declined intent, kept by the protocol (the core keeps no trade for a decline)."""
    error = payment_error(decline)
    trade = Trade(
        protocol=NAME,
        merchant_id=call.merchant.merchant_id,
        trade_no=call.merchant.next_trade_no(),
        out_trade_no=ask.out_trade_no,
        amount=ask.amount,
        notify_url="",
        subject=ask.subject,
        # The notification directives as asked (the decline itself is not a directive to keep).
        directives=dataclasses.replace(ask.directives, decline=False),
        extra={**ask.extra, "confirmed": True, "last_payment_error": error},
    )
    # Spawned before the intent is kept: a busy sandbox refuses the request and keeps nothing.
    _notify_failed(call, trade)
    call.account.keep_declined(trade)
    return _declined(trade, error)


# -- confirm, capture, cancel -----------------------------------------------------------------


async def confirm_intent(call: Call) -> Reply:
    call.params.only(frozenset({"payment_method", "return_url"}), _EXPAND)
    trade = find_intent(call, call.request.match_info["id"])
    confirmable = intent_status(trade) in ("requires_confirmation", "requires_payment_method")
    if trade.out_trade_no in call.account.declined or not confirmable:
        return _unexpected_state(trade, "confirm")
    payment_method = _payment_method(call.params.text("payment_method")) or trade.extra.get(
        "payment_method", ""
    )
    if not payment_method:
        raise invalid("You cannot confirm this PaymentIntent because it's missing a payment method.")
    asked_decline = trade.extra.pop("decline_on_confirm", False)
    decline = DECLINING_CARDS.get(payment_method)
    if decline is None and (asked_decline or call.merchant.chance(call.merchant.behaviour.decline_rate)):
        decline = GENERIC_DECLINE
    trade.extra.update(payment_method=payment_method, confirmed=True, last_payment_error=None)
    if decline is not None:
        error = payment_error(decline)
        trade.extra["last_payment_error"] = error
        _notify_failed(call, trade)
        return _declined(trade, error)
    if trade.extra.get("capture_method") == "manual":
        trade.extra["authorised"] = True
    elif payment_method in AUTHENTICATING_CARDS:
        pay_delay_ms = trade.directives.pay_delay_ms
        delay_ms = call.merchant.behaviour.pay_delay_ms if pay_delay_ms is None else pay_delay_ms
        call.sandbox.spawn(lifecycle.payer(call.sandbox, call.merchant, trade, delay_ms))
    else:
        # The task starts only once this handler yields, after the trade is paid.
        _notify_paid(call, trade)
        trade.pay()
    return Reply.json(_view(call, trade, call.params.expanded()))


async def capture_intent(call: Call) -> Reply:
    call.params.only(frozenset({"amount_to_capture"}), _EXPAND)
    trade = find_intent(call, call.request.match_info["id"])
    if trade.out_trade_no in call.account.declined or intent_status(trade) != "requires_capture":
        return _unexpected_state(trade, "capture")
    asked = call.params.text("amount_to_capture")
    whole = trade.amount
    if (
        asked
        and whole is not None
        and wire.money(asked, wire.currency_of(whole), "amount_to_capture") != whole
    ):
        raise invalid("The sandbox captures whole authorisations only", "amount_to_capture")
    _notify_paid(call, trade)
    trade.pay()
    return Reply.json(_view(call, trade, call.params.expanded()))


async def cancel_intent(call: Call) -> Reply:
    call.params.only(frozenset({"cancellation_reason"}), _EXPAND)
    reason = call.params.text("cancellation_reason")
    if reason and reason not in CANCELLATION_REASONS:
        raise invalid(f"cancellation_reason must be one of {', '.join(sorted(CANCELLATION_REASONS))}")
    trade = find_intent(call, call.request.match_info["id"])
    if intent_status(trade) in ("succeeded", "canceled", "processing"):
        return _unexpected_state(trade, "cancel")
    if trade.out_trade_no in call.account.declined:
        trade.close()
    else:
        try:
            operations.close_charge(call.merchant, NAME, trade.out_trade_no)
        except Refused:
            return _unexpected_state(trade, "cancel")
    trade.extra["cancellation_reason"] = reason or None
    return Reply.json(_view(call, trade, call.params.expanded()))


# -- retrieve and search ----------------------------------------------------------------------


async def retrieve_intent(call: Call) -> Reply:
    call.params.only(frozenset(), _EXPAND)
    trade = find_intent(call, call.request.match_info["id"])
    return Reply.json(_view(call, trade, call.params.expanded()))


# Stripe's search query language, the one clause the sandbox understands: metadata['k']:'v'
# (https://docs.stripe.com/search#search-query-language; \' and \\ escape inside quotes).
_QUOTED: Final = r"'((?:[^'\\]|\\.)*)'"
_METADATA_CLAUSE: Final = re.compile(rf"metadata\[{_QUOTED}\]\s*:\s*{_QUOTED}")


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


async def search_intents(call: Call) -> Reply:
    call.params.only(frozenset({"query", "limit"}), _EXPAND)
    clause = _METADATA_CLAUSE.fullmatch(call.params.required("query", max_chars=1_000).strip())
    if clause is None:
        raise invalid("The sandbox searches by one clause only: metadata['key']:'value'", "query")
    limit = call.params.limit(SEARCH_DEFAULT_LIMIT)
    found = call.account.search(_unquote(clause.group(1)), _unquote(clause.group(2)))
    expand = frozenset(e.removeprefix("data.") for e in call.params.expanded())
    views = [_view(call, find_intent(call, intent_id), expand) for intent_id in found[:limit]]
    return Reply.json(
        {
            "object": "search_result",
            "data": views,
            "has_more": len(found) > limit,
            "next_page": None,
            "url": f"{wire.API_PATH}/payment_intents/search",
        }
    )
