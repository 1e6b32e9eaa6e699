"""Our Stripe-Signature scheme against Stripe's own library (the `stripe` package): what one signs,
the other verifies, and both refuse a stale timestamp, a wrong secret and an altered body."""

from __future__ import annotations

import json
import time

import pytest
import stripe
from channel_gateway.adapters.connectors import card
from channel_gateway.adapters.connectors.card import signing
from channel_gateway.domain.channel import NotificationRejected, PaymentNotification
from multidict import CIMultiDict

SECRET = "whsec_test_interop_secret"
OTHER_SECRET = "whsec_test_someone_else"
STALE_S = signing.TOLERANCE_S + 60


def _payload() -> bytes:
    intent = {
        "id": "pi_3Interop",
        "object": "payment_intent",
        "amount": 1999,
        "amount_received": 1999,
        "currency": "usd",
        "status": "succeeded",
        "capture_method": "automatic",
        "metadata": {"payment_id": "pay_interop", "order_id": "ord_interop"},
        "last_payment_error": None,
        "next_action": None,
        "latest_charge": "ch_3Interop",
    }
    event = {
        "id": "evt_3Interop",
        "object": "event",
        "api_version": "2025-04-30.basil",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": intent},
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _stripe_header(payload: bytes, secret: str, timestamp_s: int) -> str:
    # The stripe package's own signer (the one its docs give for signing test payloads).
    return str(
        stripe.WebhookSignature.generate_signature_header(payload.decode(), secret, timestamp=timestamp_s)
    )


# -- ours -> stripe --------------------------------------------------------------------


def test_a_payload_we_sign_verifies_with_the_stripe_package() -> None:
    payload, now_s = _payload(), int(time.time())
    header = signing.signature_header(SECRET, now_s, payload)
    assert stripe.WebhookSignature.verify_header(payload, header, SECRET, tolerance=signing.TOLERANCE_S)
    event = stripe.Webhook.construct_event(payload, header, SECRET)
    assert (event.id, event.type) == ("evt_3Interop", "payment_intent.succeeded")


@pytest.mark.parametrize(
    ("secret", "altered", "age_s", "stripe_says"),
    [
        (SECRET, False, STALE_S, "Timestamp outside the tolerance zone"),
        (OTHER_SECRET, False, 0, "No signatures found matching the expected signature"),
        (SECRET, True, 0, "No signatures found matching the expected signature"),
    ],
)
def test_the_stripe_package_refuses_what_we_signed_stale_with_another_secret_or_altered(
    secret: str, altered: bool, age_s: int, stripe_says: str
) -> None:
    payload = _payload()
    header = signing.signature_header(secret, int(time.time()) - age_s, payload)
    sent = payload.replace(b"1999", b"9999") if altered else payload
    with pytest.raises(stripe.SignatureVerificationError, match=stripe_says):
        stripe.WebhookSignature.verify_header(sent, header, SECRET, tolerance=signing.TOLERANCE_S)


# -- stripe -> ours --------------------------------------------------------------------


def test_a_payload_the_stripe_package_signs_verifies_with_ours() -> None:
    payload, now_s = _payload(), int(time.time())
    header = _stripe_header(payload, SECRET, now_s)
    assert signing.verify(SECRET, header, payload, time.time()) == now_s


def test_any_of_several_v1_signatures_will_do_while_a_secret_is_rolled() -> None:
    payload, now_s = _payload(), int(time.time())
    old = signing.signature(OTHER_SECRET, now_s, payload)
    header = f"{_stripe_header(payload, SECRET, now_s)},v1={old},v0=deadbeef"
    assert signing.verify(SECRET, header, payload, time.time()) == now_s
    assert signing.verify(OTHER_SECRET, header, payload, time.time()) == now_s
    assert stripe.WebhookSignature.verify_header(payload, header, OTHER_SECRET, tolerance=signing.TOLERANCE_S)


@pytest.mark.parametrize(
    ("secret", "altered", "age_s", "we_say"),
    [
        (SECRET, False, STALE_S, "old, outside the 300s tolerance"),
        (SECRET, False, -STALE_S, "in the future, outside the 300s tolerance"),
        (OTHER_SECRET, False, 0, "no v1 signature matches the payload"),
        (SECRET, True, 0, "no v1 signature matches the payload"),
    ],
)
def test_we_refuse_what_the_stripe_package_signed_stale_with_another_secret_or_altered(
    secret: str, altered: bool, age_s: int, we_say: str
) -> None:
    payload = _payload()
    header = _stripe_header(payload, secret, int(time.time()) - age_s)
    sent = payload.replace(b"1999", b"9999") if altered else payload
    with pytest.raises(NotificationRejected, match=we_say):
        signing.verify(SECRET, header, sent, time.time())


@pytest.mark.parametrize(
    ("header", "we_say"),
    [
        (None, "missing Stripe-Signature"),
        ("", "missing Stripe-Signature"),
        ("garbage", "malformed"),
        ("t=abc,v1=00", "exactly one t="),
        ("t=1,t=2,v1=00", "exactly one t="),
        ("t=\u00b2,v1=00", "exactly one t="),
        (f"t={int(time.time())},v0=00", "no v1 signature"),
        (f"t={int(time.time())},v1=\u00e9\u00e9", "no v1 signature matches"),
        ("t=1," + "v1=0," * 500, "longer than"),
    ],
)
def test_malformed_signature_headers_are_refused_with_the_reason(header: str | None, we_say: str) -> None:
    with pytest.raises(NotificationRejected, match=we_say):
        signing.verify(SECRET, header, _payload(), time.time())


# -- through the connector -------------------------------------------------------------


def test_the_connector_verifies_a_stripe_signed_event_whatever_the_header_case() -> None:
    connector = card.build(
        "card",
        {"api_base_url": "https://acquirer.example", "secret_key": "sk_test_x", "webhook_secret": SECRET},
    )
    payload = _payload()
    header = _stripe_header(payload, SECRET, int(time.time()))
    for headers in (CIMultiDict({"stripe-signature": header}), {"STRIPE-SIGNATURE": header}):
        note = connector.verify_notification("/webhooks/card", headers, payload)
        assert isinstance(note, PaymentNotification) and note.payment_id == "pay_interop"
    with pytest.raises(NotificationRejected, match="no v1 signature matches"):
        connector.verify_notification("/webhooks/card", {"Stripe-Signature": header}, payload + b" ")
    assert connector.acknowledgement(True)[0] == 200
    assert connector.acknowledgement(False)[0] == 400
