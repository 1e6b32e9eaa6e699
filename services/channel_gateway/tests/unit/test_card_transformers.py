"""The card acquirer's wire format read strictly: its error table, its money units, its answers
and its events. Amounts convert exactly or the message is refused."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from channel_gateway.adapters.connectors import card
from channel_gateway.adapters.connectors.card import errors, sandbox, signing, transformers
from channel_gateway.adapters.connectors.registry import FACTORIES, build_connector
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChannelConflict,
    ChannelErrorKind,
    ChannelRefused,
    ChannelUnavailable,
    ChargeCommand,
    ChargeState,
    CloseResult,
    NotificationRejected,
    PaymentNotification,
    RawExchange,
    RefundCommand,
    RefundNotification,
    RefundState,
)
from hypothesis import given
from hypothesis import strategies as st
from paykit.money import CURRENCY_EXPONENTS, MAX_MINOR_UNITS, AmountError, CurrencyError, Money

K = ChannelErrorKind
RAW = RawExchange("charge", "", 400, "", 1)


def _error_body(**fields: Any) -> str:
    return json.dumps({"error": fields})


# -- the error table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            402,
            _error_body(type="card_error", code="card_declined", decline_code="insufficient_funds"),
            K.DECLINED,
        ),
        (400, _error_body(type="invalid_request_error", code="parameter_missing"), K.INVALID_REQUEST),
        (404, _error_body(type="invalid_request_error", code="resource_missing"), K.INVALID_REQUEST),
        # Stripe answers a bad key with type invalid_request_error: the status decides.
        (
            401,
            _error_body(type="invalid_request_error", message="Invalid API Key provided"),
            K.AUTHENTICATION,
        ),
        (401, _error_body(type="authentication_error"), K.AUTHENTICATION),
        (403, _error_body(type="permission_error"), K.AUTHENTICATION),
        (429, _error_body(type="invalid_request_error", code="rate_limit"), K.RATE_LIMITED),
        (429, "", K.RATE_LIMITED),
        (409, _error_body(type="idempotency_error"), errors.CONFLICT),
        (400, _error_body(type="idempotency_error"), errors.CONFLICT),
        (409, _error_body(type="invalid_request_error", code="idempotency_key_in_use"), K.UNKNOWN_OUTCOME),
        (409, _error_body(type="invalid_request_error", code="lock_timeout"), K.CHANNEL_UNAVAILABLE),
        (424, _error_body(type="api_error"), K.UNKNOWN_OUTCOME),
        (400, _error_body(type="api_error"), K.UNKNOWN_OUTCOME),
        (500, _error_body(type="api_error"), K.UNKNOWN_OUTCOME),
        (503, "<html>busy</html>", K.UNKNOWN_OUTCOME),
        (302, "", K.UNKNOWN_OUTCOME),
        (418, "not json", K.INVALID_REQUEST),
    ],
)
def test_error_table_maps_status_type_and_code_to_a_kind(status: int, body: str, expected: object) -> None:
    assert errors.verdict(errors.read_error(status, body)) == expected


def test_error_keeps_the_most_precise_code_raw() -> None:
    declined = errors.read_error(
        402, _error_body(type="card_error", code="card_declined", decline_code="lost_card")
    )
    assert (declined.channel_code, declined.code) == ("lost_card", "card_declined")
    assert (
        errors.read_error(400, _error_body(type="invalid_request_error")).channel_code
        == "invalid_request_error"
    )
    assert errors.read_error(502, "garbage").channel_code == "http_502"


def test_error_answers_become_the_interface_exceptions() -> None:
    with pytest.raises(ChannelConflict):
        errors.raise_for(errors.read_error(409, _error_body(type="idempotency_error")), "charge", RAW)
    with pytest.raises(ChannelUnavailable):
        errors.raise_for(errors.read_error(500, ""), "charge", RAW)
    with pytest.raises(ChannelRefused) as refused:
        errors.raise_for(errors.read_error(429, _error_body(code="rate_limit")), "query", RAW)
    assert (refused.value.kind, refused.value.channel_code) == (K.RATE_LIMITED, "rate_limit")
    # A card error outside a charge has no reply state: refused, never as DECLINED.
    with pytest.raises(ChannelRefused) as card_error:
        errors.raise_for(
            errors.read_error(402, _error_body(type="card_error", code="expired_card")), "refund", RAW
        )
    assert (card_error.value.kind, card_error.value.channel_code) == (K.INVALID_REQUEST, "expired_card")
    assert card_error.value.raw is RAW


# -- money ----------------------------------------------------------------------------

_CURRENCIES = sorted(CURRENCY_EXPONENTS)
THREE_DECIMAL = {"BHD", "JOD", "KWD", "OMR", "TND"}


@given(st.sampled_from(_CURRENCIES), st.integers(min_value=0, max_value=MAX_MINOR_UNITS // 1000))
def test_money_round_trips_through_the_acquirers_units_or_is_refused(currency: str, minor: int) -> None:
    money = Money(minor, currency)
    try:
        amount = transformers.to_amount(money)
    except AmountError:
        # Only where the acquirer's unit is coarser than ours: MGA (whole ariary), three-decimal (x.xx0).
        assert (currency == "MGA" and minor % 100) or (currency in THREE_DECIMAL and minor % 10)
        return
    assert isinstance(amount, int)
    assert transformers.from_amount(amount, currency.lower()) == money


@given(st.sampled_from(_CURRENCIES), st.integers(min_value=0, max_value=10**12))
def test_acquirer_amounts_read_as_money_and_back_exactly(currency: str, amount: int) -> None:
    try:
        money = transformers.from_amount(amount, currency.lower())
    except AmountError:
        assert currency == "ISK" and amount % 100  # fractional krona: not a whole minor unit
        return
    if currency in THREE_DECIMAL and amount % 10:
        with pytest.raises(AmountError):
            transformers.to_amount(money)
    else:
        assert transformers.to_amount(money) == amount


@pytest.mark.parametrize(
    ("money", "amount"),
    [
        (Money(1999, "USD"), 1999),
        (Money(500, "JPY"), 500),  # zero-decimal: yen, not hundredths
        (Money(1000, "KRW"), 1000),
        (Money(5, "ISK"), 500),  # ISK stays two-decimal in Stripe's API
        (Money(300, "MGA"), 3),  # MGA is zero-decimal at Stripe, two-decimal in ISO 4217
        (Money(5120, "KWD"), 5120),
    ],
)
def test_zero_decimal_and_special_currencies_use_the_acquirers_unit(money: Money, amount: int) -> None:
    assert transformers.to_amount(money) == amount
    assert transformers.from_amount(amount, money.currency.lower()) == money


@pytest.mark.parametrize(
    ("amount", "currency", "error"),
    [
        (1999, "USD", CurrencyError),  # the acquirer's codes are lowercase
        (19.99, "usd", AmountError),
        (True, "usd", AmountError),
        ("1999", "usd", AmountError),
        (-1, "usd", AmountError),
        (550, "isk", AmountError),  # 5.50 krona
        (1, "xyz", CurrencyError),
    ],
)
def test_unreadable_acquirer_amounts_are_refused(
    amount: object, currency: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        transformers.from_amount(amount, currency)


def test_amounts_the_acquirer_cannot_take_are_refused_not_rounded() -> None:
    with pytest.raises(AmountError, match=r"multiples of 0\.010"):
        transformers.to_amount(Money(5124, "KWD"))
    with pytest.raises(AmountError, match="whole MGA"):
        transformers.to_amount(Money(150, "MGA"))


# -- requests -------------------------------------------------------------------------


def _command(**changes: Any) -> ChargeCommand:
    fields: dict[str, Any] = {
        "payment_id": "pay_1",
        "order_id": "ord_1",
        "amount": Money(500, "JPY"),
        "method": "qr",
        "subject": "tea",
        "notify_url": "http://gateway/webhooks/card",
    }
    fields.update(changes)
    return ChargeCommand(**fields)


def test_create_form_carries_minor_units_lowercase_currency_and_our_ids() -> None:
    form = dict(transformers.create_intent_form(_command(), "pm_card_visa", "automatic", "", confirm=True))
    assert form["amount"] == "500" and form["currency"] == "jpy"
    assert (form["metadata[payment_id]"], form["metadata[order_id]"]) == ("pay_1", "ord_1")
    assert (form["confirm"], form["capture_method"], form["payment_method"]) == (
        "true",
        "automatic",
        "pm_card_visa",
    )
    assert "return_url" not in form
    assert b"metadata%5Bpayment_id%5D=pay_1" in transformers.encode(list(form.items()))


def test_the_card_is_the_commands_payment_method_else_the_configured_default() -> None:
    assert transformers.payment_method_for(_command(method="pm_1Abc"), "pm_card_visa") == "pm_1Abc"
    assert transformers.payment_method_for(_command(method="qr"), "pm_card_visa") == "pm_card_visa"
    assert transformers.payment_method_for(_command(method="qr"), "") == ""


def test_search_query_quotes_the_payment_id() -> None:
    query = dict(transformers.search_params("pay_'x\\"))["query"]
    assert query == "metadata['payment_id']:'pay_\\'x\\\\'"


# -- answers --------------------------------------------------------------------------


def _intent(**changes: Any) -> dict[str, Any]:
    intent: dict[str, Any] = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 1999,
        "amount_received": 1999,
        "currency": "usd",
        "status": "succeeded",
        "capture_method": "automatic",
        "metadata": {"payment_id": "pay_1", "order_id": "ord_1"},
        "last_payment_error": None,
        "next_action": None,
        "latest_charge": {"id": "ch_1", "object": "charge", "created": 1_790_000_000},
    }
    intent.update(changes)
    return intent


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, ChargeState.SUCCEEDED),
        ({"status": "processing"}, ChargeState.PENDING),
        ({"status": "requires_capture"}, ChargeState.PENDING),
        ({"status": "requires_confirmation"}, ChargeState.PENDING),
        ({"status": "requires_payment_method"}, ChargeState.PENDING),
        (
            {
                "status": "requires_payment_method",
                "last_payment_error": {"type": "card_error", "code": "card_declined"},
            },
            ChargeState.DECLINED,
        ),
        ({"status": "canceled"}, ChargeState.CLOSED),
    ],
)
def test_intent_statuses_map_to_charge_states(changes: dict[str, Any], state: ChargeState) -> None:
    reply = transformers.charge_reply(transformers.read_intent(_intent(**changes)))
    assert (reply.state, reply.channel_trade_no) == (state, "pi_1")


def test_three_d_secure_redirect_is_the_pay_url_of_a_pending_charge() -> None:
    intent = _intent(
        status="requires_action",
        next_action={"type": "redirect_to_url", "redirect_to_url": {"url": "https://acs.example/3ds"}},
    )
    reply = transformers.charge_reply(transformers.read_intent(intent))
    assert (reply.state, reply.pay_url) == (ChargeState.PENDING, "https://acs.example/3ds")


def test_a_declined_intent_keeps_the_decline_code() -> None:
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "no",
    }
    reply = transformers.charge_reply(
        transformers.read_intent(_intent(status="requires_payment_method", last_payment_error=error))
    )
    assert (reply.state, reply.decline_code, reply.decline_message) == (
        ChargeState.DECLINED,
        "insufficient_funds",
        "no",
    )
    from_402 = transformers.declined_reply(
        errors.read_error(402, _error_body(**error, payment_intent=_intent(status="requires_payment_method")))
    )
    assert (from_402.state, from_402.decline_code, from_402.channel_trade_no) == (
        ChargeState.DECLINED,
        "insufficient_funds",
        "pi_1",
    )


def test_query_reports_what_was_received_and_when() -> None:
    reply = transformers.query_reply(transformers.read_intent(_intent(amount_received=1999)))
    assert reply.amount == Money(1999, "USD")
    assert reply.paid_at == datetime.fromtimestamp(1_790_000_000, UTC)
    with pytest.raises(ValueError, match="nothing received"):
        transformers.query_reply(transformers.read_intent(_intent(amount_received=0)))


def test_an_answer_about_another_payment_or_amount_is_no_answer() -> None:
    intent = transformers.read_intent(_intent())
    with pytest.raises(ValueError, match="belongs to payment"):
        transformers.check_intent(intent, "pay_2")
    with pytest.raises(ValueError, match="the charge asked for"):
        transformers.check_intent(intent, "pay_1", Money(2000, "USD"))
    # A mock's fixture echoes no metadata: nothing contradicts it.
    assert transformers.check_intent(transformers.read_intent(_intent(metadata={})), "pay_2").id == "pi_1"


@pytest.mark.parametrize(
    "changes",
    [
        {"object": "charge"},
        {"id": "ch_1"},
        {"status": "paid"},
        {"amount": "19.99"},
        {"currency": "USD"},
        {"metadata": []},
    ],
)
def test_unrecognised_intents_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        transformers.read_intent(_intent(**changes))


def test_close_is_settled_by_a_paid_or_canceled_intent_only() -> None:
    paid = transformers.close_reply(transformers.read_intent(_intent()))
    assert paid is not None and paid.result is CloseResult.ALREADY_PAID
    canceled = transformers.close_reply(transformers.read_intent(_intent(status="canceled")))
    assert canceled is not None and canceled.result is CloseResult.CLOSED
    assert transformers.close_reply(transformers.read_intent(_intent(status="processing"))) is None


def test_of_several_intents_for_a_payment_a_succeeded_one_wins() -> None:
    intents = [
        transformers.read_intent(_intent(id="pi_a", status="canceled")),
        transformers.read_intent(_intent(id="pi_b")),
        transformers.read_intent(_intent(id="pi_c", metadata={"payment_id": "pay_other"})),
    ]
    found = transformers.pick_intent(intents, "pay_1")
    assert found is not None and found.id == "pi_b"
    assert transformers.pick_intent(intents, "pay_9") is None


def _refund(**changes: Any) -> dict[str, Any]:
    refund: dict[str, Any] = {
        "id": "re_1",
        "object": "refund",
        "amount": 500,
        "currency": "usd",
        "status": "succeeded",
        "payment_intent": "pi_1",
        "metadata": {"refund_id": "rfd_1", "payment_id": "pay_1"},
        "failure_reason": None,
        "created": 1_790_000_100,
    }
    refund.update(changes)
    return refund


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", RefundState.PROCESSING),
        ("requires_action", RefundState.PROCESSING),
        ("succeeded", RefundState.SUCCEEDED),
        ("failed", RefundState.FAILED),
        ("canceled", RefundState.FAILED),
    ],
)
def test_refund_statuses_map_to_refund_states(status: str, state: RefundState) -> None:
    reply = transformers.refund_reply(transformers.read_refund(_refund(status=status)))
    assert (reply.state, reply.channel_refund_no, reply.amount) == (state, "re_1", Money(500, "USD"))
    assert (reply.refunded_at is not None) == (state is RefundState.SUCCEEDED)


def test_a_failed_refund_keeps_its_reason() -> None:
    reply = transformers.refund_reply(
        transformers.read_refund(_refund(status="failed", failure_reason="expired_or_canceled_card"))
    )
    assert reply.failure_code == "expired_or_canceled_card"
    with pytest.raises(ValueError, match="we asked for"):
        transformers.check_refund(transformers.read_refund(_refund()), "rfd_1", Money(501, "USD"))


def test_refund_form_carries_our_ids_and_the_amount_in_minor_units() -> None:
    command = RefundCommand(
        "rfd_1", "pay_1", "ord_1", Money(5, "ISK"), Money(10, "ISK"), "duplicate payment", ""
    )
    form = dict(transformers.refund_form(command, "pi_1"))
    assert form == {
        "payment_intent": "pi_1",
        "amount": "500",
        "metadata[refund_id]": "rfd_1",
        "metadata[payment_id]": "pay_1",
        "metadata[reason]": "duplicate payment",
    }


# -- events ---------------------------------------------------------------------------


def _event(kind: str, obj: dict[str, Any], **changes: Any) -> bytes:
    event: dict[str, Any] = {
        "id": "evt_1",
        "object": "event",
        "type": kind,
        "created": 1_790_000_200,
        "livemode": False,
        "data": {"object": obj},
    }
    event.update(changes)
    return json.dumps(event).encode()


def test_payment_intent_succeeded_is_a_successful_payment_notification() -> None:
    note = transformers.notification(_event("payment_intent.succeeded", _intent()))
    assert isinstance(note, PaymentNotification)
    assert (note.channel_notify_id, note.payment_id, note.channel_trade_no) == ("evt_1", "pay_1", "pi_1")
    assert note.succeeded and note.amount == Money(1999, "USD")


def test_payment_intent_payment_failed_is_a_failed_payment_notification() -> None:
    failed = _intent(status="requires_payment_method", amount_received=0, latest_charge=None)
    note = transformers.notification(_event("payment_intent.payment_failed", failed))
    assert isinstance(note, PaymentNotification) and not note.succeeded
    assert note.amount == Money(1999, "USD")
    assert note.occurred_at == datetime.fromtimestamp(1_790_000_200, UTC)


def test_refund_updated_is_a_refund_notification() -> None:
    note = transformers.notification(_event("refund.updated", _refund()))
    assert isinstance(note, RefundNotification)
    assert (note.refund_id, note.payment_id, note.channel_refund_no, note.succeeded) == (
        "rfd_1",
        "pay_1",
        "re_1",
        True,
    )
    assert not transformers.notification(_event("refund.updated", _refund(status="failed"))).succeeded


def test_charge_refunded_tells_about_its_newest_refund_of_ours() -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "metadata": {"payment_id": "pay_1"},
        "refunds": {
            "object": "list",
            "data": [
                _refund(id="re_old", metadata={"refund_id": "rfd_old"}, created=1_790_000_000),
                _refund(id="re_new", metadata={"refund_id": "rfd_new"}, created=1_790_000_100),
                _refund(id="re_foreign", metadata={}, created=1_790_000_200),
            ],
        },
    }
    note = transformers.notification(_event("charge.refunded", charge))
    assert isinstance(note, RefundNotification)
    assert (note.refund_id, note.channel_refund_no, note.payment_id) == ("rfd_new", "re_new", "pay_1")


PENDING_REFUND_CHARGE = {
    "id": "ch_1",
    "object": "charge",
    "refunds": {"object": "list", "data": [_refund(status="pending")]},
}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_event("customer.created", {"id": "cus_1", "object": "customer"}), "'customer.created' is not"),
        (_event("payment_intent.created", _intent(status="requires_confirmation")), "is not acted on"),
        (_event("refund.updated", _refund(status="pending")), "still 'pending'"),
        (_event("refund.created", _refund(status="pending")), "still 'pending'"),
        (_event("charge.refunded", PENDING_REFUND_CHARGE), "still 'pending'"),
    ],
)  # fmt: skip
def test_a_genuine_event_with_nothing_to_act_on_is_acknowledged_only_with_the_reason(
    body: bytes, reason: str
) -> None:
    read = transformers.notification(body)
    assert isinstance(read, AcknowledgedOnly) and read.channel_notify_id == "evt_1"
    assert reason in read.reason


def test_a_signed_event_not_acted_on_is_acknowledged_and_a_forged_one_still_refused() -> None:
    connector = card.build("card_acq", CONFIG)
    body = _event("customer.created", {"id": "cus_1", "object": "customer"})
    signed = {"Stripe-Signature": signing.signature_header(CONFIG["webhook_secret"], int(time.time()), body)}
    assert isinstance(connector.verify_notification("/webhooks/card_acq", signed, body), AcknowledgedOnly)
    forged = {"Stripe-Signature": signing.signature_header("whsec_someone_else", int(time.time()), body)}
    with pytest.raises(NotificationRejected, match="no v1 signature matches"):
        connector.verify_notification("/webhooks/card_acq", forged, body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_event("payment_intent.succeeded", _intent(metadata={})), "not ours"),
        (_event("payment_intent.succeeded", _intent(status="processing")), "in status 'processing'"),
        (_event("payment_intent.succeeded", _intent(currency="USD")), "amount in wrong format"),
        (_event("payment_intent.succeeded", _intent(amount_received=19.99)), "amount in wrong format"),
        (_event("refund.updated", _refund(amount=0)), "with amount"),
        (_event("charge.refunded", {"id": "ch_1", "object": "charge"}), "refunds list"),
        (_event("payment_intent.succeeded", _intent(), id="ev_1"), "malformed event"),
        (b"[]", "malformed event"),
        (b"{not json", "malformed event"),
    ],
)
def test_events_we_cannot_trust_or_use_are_rejected_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(NotificationRejected, match=reason):
        transformers.notification(body)


# -- config ---------------------------------------------------------------------------

CONFIG = {
    "api_base_url": "https://acquirer.example",
    "secret_key": "sk_test_sEcReTvAlUe",
    "webhook_secret": "whsec_sEcReTvAlUe",
    "default_payment_method": "pm_card_visa",
}


def test_card_is_registered_and_builds_from_its_config() -> None:
    assert FACTORIES["card"] is card.build
    connector = build_connector("card_acq", "card", CONFIG)
    assert connector.name == "card_acq"
    assert "sEcReT" not in repr(connector)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"secret_key": None}, "secret_key"),
        ({"webhook_secret": ""}, "webhook_secret"),
        ({"api_base_url": "ftp://x"}, "api_base_url"),
        ({"api_base_url": "https://api.stripe.com/v1"}, "api_base_url"),
        ({"secret_key": "pk_test_sEcReTvAlUe"}, "secret_key"),
        ({"default_payment_method": "4242424242424242"}, "default_payment_method"),
        ({"secret_key": "sk_live_sEcReTvAlUe"}, "test mode only"),
        ({"capture_method": "later"}, "capture_method"),
    ],
)
def test_bad_config_is_refused_naming_the_key_never_its_value(changes: dict[str, Any], named: str) -> None:
    config = {**CONFIG, **changes}
    with pytest.raises(ValueError, match=named) as refused:
        build_connector("card_acq", "card", {k: v for k, v in config.items() if v is not None})
    assert "sEcReT" not in str(refused.value) and "4242424242424242" not in str(refused.value)


def test_a_live_key_without_a_default_card_is_accepted() -> None:
    config = {**CONFIG, "secret_key": "sk_live_sEcReTvAlUe"}
    del config["default_payment_method"]
    assert card.build("card_live", config).name == "card_live"


def test_sandbox_account_config_points_at_the_simulators_card_protocol() -> None:
    config = sandbox.account_config(
        "http://127.0.0.1:9000/",
        {"secret_key": "sk_test_1", "webhook_secret": "whsec_1", "api_path": "/card"},
    )
    assert config == {
        "api_base_url": "http://127.0.0.1:9000/card",
        "secret_key": "sk_test_1",
        "webhook_secret": "whsec_1",
        "default_payment_method": "pm_card_visa",
    }
    assert card.build("card_sim", config).name == "card_sim"
    with pytest.raises(ValueError, match="webhook_secret"):
        sandbox.account_config("http://127.0.0.1:9000", {"secret_key": "sk_test_1"})
