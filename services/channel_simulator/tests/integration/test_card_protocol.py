"""The card protocol (a Stripe-like acquirer under /card/v1) through a real aiohttp client: keys,
PaymentIntents and their test cards, Idempotency-Key replay, refunds, faults, webhooks verified
with the `stripe` package, and the settlement statement read by the reconciliation parser."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
import stripe
from channel_simulator.behaviour import Behaviour
from channel_simulator.harness import LoopThread, RunningSimulator, start_simulator
from channel_simulator.protocols.base import ProtocolRegistry
from channel_simulator.protocols.card import CardProtocol
from channel_simulator.protocols.card.settlement import sale_fee
from paykit.money import Money
from reconciliation.statements import card as card_statement

from services.channel_simulator.tests.integration.card_support import (
    Answer,
    CardClient,
    Delivery,
    WebhookEndpoint,
    start_endpoint,
)
from services.channel_simulator.tests.integration.support import KEY, SimClient, eventually, new_no

ACCOUNT, STATEMENT_ACCOUNT = "CARD-1", "CARD-2"
BATCH_MAX_CAPTURES = 2


def _registry(**options: Any) -> ProtocolRegistry:
    registry = ProtocolRegistry()
    registry.register(CardProtocol.name, CardProtocol.with_options(**options))
    return registry


@pytest.fixture(scope="module")
def card_sim(loop_thread: LoopThread) -> Iterator[RunningSimulator]:
    registry = _registry(batch_max_captures=BATCH_MAX_CAPTURES)
    simulator = loop_thread.run(
        start_simulator((ACCOUNT, STATEMENT_ACCOUNT), KEY, Behaviour(), seed=11, registry=registry)
    )
    try:
        yield simulator
    finally:
        loop_thread.run(simulator.stop())


@pytest.fixture(scope="module")
def credentials(card_sim: RunningSimulator) -> dict[str, Any]:
    status, published = SimClient(card_sim.base_url).admin("/v1/admin/sandbox-credentials")
    assert status == 200, published
    return dict(published["card"]["merchants"])


@pytest.fixture(scope="module")
def endpoint(loop_thread: LoopThread) -> Iterator[WebhookEndpoint]:
    found = WebhookEndpoint()
    runner = loop_thread.run(start_endpoint(found))
    try:
        yield found
    finally:
        loop_thread.run(runner.cleanup())


@pytest.fixture
def acquirer(
    card_sim: RunningSimulator, loop_thread: LoopThread, credentials: dict[str, Any]
) -> Iterator[CardClient]:
    sim = SimClient(card_sim.base_url)
    sim.configure(Behaviour().as_dict())
    yield CardClient(loop_thread, card_sim.base_url, credentials[ACCOUNT]["secret_key"])
    sim.configure(Behaviour().as_dict())


def _admin_bytes(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _verified(secret: str, delivery_body: bytes, header: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(delivery_body.decode(), header, secret, tolerance=300)
    except stripe.SignatureVerificationError:
        return False
    return True


# -- keys ---------------------------------------------------------------------------------


def test_each_account_gets_its_own_stripe_shaped_keys_for_the_gateways_account_config(
    credentials: dict[str, Any],
) -> None:
    assert set(credentials) == {ACCOUNT, STATEMENT_ACCOUNT}
    for published in credentials.values():
        assert set(published) == {"account_id", "secret_key", "webhook_secret", "api_path"}
        assert published["secret_key"].startswith("sk_test_") and len(published["secret_key"]) > 40
        assert published["webhook_secret"].startswith("whsec_")
        assert published["account_id"].startswith("acct_") and published["api_path"] == "/card"
    assert credentials[ACCOUNT]["secret_key"] != credentials[STATEMENT_ACCOUNT]["secret_key"]


def test_a_missing_or_wrong_key_is_401_and_the_key_is_never_echoed_whole(acquirer: CardClient) -> None:
    missing = acquirer.call("GET", "/card/v1/payment_intents/pi_x", key="")
    assert missing.status == 401 and missing.error["type"] == "invalid_request_error"
    wrong_key = "sk_test_" + "x" * 40 + "abcd"
    wrong = acquirer.call("GET", "/card/v1/payment_intents/pi_x", key=wrong_key)
    assert wrong.status == 401 and "Invalid API Key" in wrong.error["message"]
    assert wrong_key not in wrong.raw.decode() and "abcd" in wrong.error["message"]


# -- payment intents ----------------------------------------------------------------------


def test_a_confirmed_card_intent_is_captured_while_the_acquirer_answers(acquirer: CardClient) -> None:
    payment_id = new_no("pay")
    created = acquirer.create_intent(payment_id, 1999, "usd")
    assert created.status == 200, created.raw
    intent = created.body
    assert intent["object"] == "payment_intent" and intent["id"].startswith("pi_")
    assert (intent["status"], intent["amount"], intent["amount_received"]) == ("succeeded", 1999, 1999)
    assert intent["currency"] == "usd" and intent["capture_method"] == "automatic"
    assert intent["metadata"] == {"payment_id": payment_id, "order_id": f"ord_{payment_id}"}
    assert intent["latest_charge"].startswith("ch_") and intent["last_payment_error"] is None

    found = acquirer.get(f"/payment_intents/{intent['id']}", [("expand[0]", "latest_charge")]).body
    charge = found["latest_charge"]
    assert (charge["object"], charge["amount_captured"]) == ("charge", 1999)
    assert isinstance(charge["created"], int) and charge["settlement_batch"].startswith("B")

    missing = acquirer.get("/payment_intents/pi_nope")
    assert (missing.status, missing.error["code"]) == (404, "resource_missing")


def test_the_same_idempotency_key_replays_the_first_answer_and_refuses_other_parameters(
    acquirer: CardClient,
) -> None:
    payment_id = new_no("pay")
    first = acquirer.create_intent(payment_id, 500)
    again = acquirer.create_intent(payment_id, 500)
    assert (again.status, again.raw) == (first.status, first.raw)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(acquirer.get("/payment_intents/search", _by(payment_id)).body["data"]) == 1

    other = acquirer.create_intent(payment_id, 501)
    assert (other.status, other.error["type"]) == (400, "idempotency_error")
    elsewhere = acquirer.post("/refunds", [("payment_intent", first.body["id"])], idempotency_key=payment_id)
    assert (elsewhere.status, elsewhere.error["type"]) == (400, "idempotency_error")


def _by(payment_id: str) -> list[tuple[str, str]]:
    return [("query", f"metadata['payment_id']:'{payment_id}'"), ("expand[0]", "data.latest_charge")]


@pytest.mark.parametrize(
    ("payment_method", "description", "code", "decline_code"),
    [
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "", "card_declined", "insufficient_funds"),
        ("pm_card_chargeDeclined", "", "card_declined", "generic_decline"),
        ("pm_card_chargeDeclinedExpiredCard", "", "expired_card", "expired_card"),
        ("pm_card_visa", "order 7 sim:decline", "card_declined", "generic_decline"),
    ],
)
def test_a_declined_card_is_402_card_error_with_the_intent_and_the_intent_stays_findable(
    acquirer: CardClient, payment_method: str, description: str, code: str, decline_code: str
) -> None:
    payment_id = new_no("pay")
    declined = acquirer.create_intent(payment_id, payment_method=payment_method, description=description)
    assert declined.status == 402, declined.raw
    error = declined.error
    assert (error["type"], error["code"], error["decline_code"]) == ("card_error", code, decline_code)
    intent = error["payment_intent"]
    assert intent["status"] == "requires_payment_method"
    assert intent["last_payment_error"]["decline_code"] == decline_code
    assert acquirer.get(f"/payment_intents/{intent['id']}").body == intent
    assert [i["id"] for i in acquirer.get("/payment_intents/search", _by(payment_id)).body["data"]] == [
        intent["id"]
    ]
    # The decline is the answer under the key: a retry is told the same.
    assert acquirer.create_intent(payment_id, payment_method=payment_method, description=description).raw == (
        declined.raw
    )
    canceled = acquirer.post(f"/payment_intents/{intent['id']}/cancel")
    assert canceled.body["status"] == "canceled"


def test_an_unknown_directive_or_parameter_is_refused_before_anything_is_kept(acquirer: CardClient) -> None:
    payment_id = new_no("pay")
    bad = acquirer.create_intent(payment_id, description="sim:nope")
    assert (bad.status, bad.error["code"]) == (400, "invalid_directive")
    unknown = acquirer.create_intent(new_no("pay"), extra=[("colour", "blue")])
    assert (unknown.status, unknown.error["code"], unknown.error["param"]) == (
        400,
        "parameter_unknown",
        "colour",
    )
    # Nothing was kept under the key: the corrected request goes through.
    assert acquirer.create_intent(payment_id).body["status"] == "succeeded"


def test_manual_capture_authorises_then_captures_and_a_second_capture_is_refused(
    acquirer: CardClient,
) -> None:
    created = acquirer.create_intent(new_no("pay"), 2500, capture_method="manual").body
    assert (created["status"], created["amount_capturable"], created["amount_received"]) == (
        "requires_capture",
        2500,
        0,
    )
    partial = acquirer.post(f"/payment_intents/{created['id']}/capture", [("amount_to_capture", "100")])
    assert partial.status == 400
    captured = acquirer.post(f"/payment_intents/{created['id']}/capture", idempotency_key=new_no("cap"))
    assert (captured.body["status"], captured.body["amount_received"]) == ("succeeded", 2500)
    again = acquirer.post(f"/payment_intents/{created['id']}/capture", idempotency_key=new_no("cap"))
    assert (again.status, again.error["code"]) == (400, "payment_intent_unexpected_state")


def test_an_unconfirmed_intent_is_canceled_and_a_settled_one_cannot_be(acquirer: CardClient) -> None:
    waiting = acquirer.create_intent(new_no("pay"), confirm=False).body
    assert waiting["status"] == "requires_confirmation" and waiting["latest_charge"] is None
    canceled = acquirer.post(
        f"/payment_intents/{waiting['id']}/cancel", [("cancellation_reason", "abandoned")]
    )
    assert (canceled.body["status"], canceled.body["cancellation_reason"]) == ("canceled", "abandoned")
    assert isinstance(canceled.body["canceled_at"], int)
    twice = acquirer.post(f"/payment_intents/{waiting['id']}/cancel")
    assert (twice.status, twice.error["code"]) == (400, "payment_intent_unexpected_state")

    paid = acquirer.create_intent(new_no("pay")).body
    refused = acquirer.post(f"/payment_intents/{paid['id']}/cancel", [("cancellation_reason", "abandoned")])
    assert (refused.status, refused.error["code"]) == (400, "payment_intent_unexpected_state")
    assert refused.error["payment_intent"]["status"] == "succeeded"


def test_an_unconfirmed_intent_is_paid_when_confirmed_or_declined_with_a_declining_card(
    acquirer: CardClient,
) -> None:
    waiting = acquirer.create_intent(new_no("pay"), confirm=False).body
    declined = acquirer.post(
        f"/payment_intents/{waiting['id']}/confirm",
        [("payment_method", "pm_card_visa_chargeDeclinedInsufficientFunds")],
    )
    assert (declined.status, declined.error["decline_code"]) == (402, "insufficient_funds")
    confirmed = acquirer.post(
        f"/payment_intents/{waiting['id']}/confirm", [("payment_method", "pm_card_visa")]
    )
    assert (confirmed.body["status"], confirmed.body["last_payment_error"]) == ("succeeded", None)


def test_a_three_d_secure_card_waits_for_the_payer_then_succeeds(acquirer: CardClient) -> None:
    created = acquirer.create_intent(
        new_no("pay"), payment_method="pm_card_threeDSecure2Required", description="sim:pay_delay=100"
    ).body
    assert created["status"] == "requires_action"
    assert created["next_action"]["type"] == "redirect_to_url"
    eventually(
        lambda: acquirer.get(f"/payment_intents/{created['id']}").body["status"] == "succeeded",
        "the payer to authenticate",
    )


def test_an_answer_lost_on_the_way_is_replayed_under_its_idempotency_key(
    acquirer: CardClient, card_sim: RunningSimulator
) -> None:
    SimClient(card_sim.base_url).configure({"hang_s": 0.3}, ACCOUNT)
    payment_id = new_no("pay")
    with pytest.raises(aiohttp.ClientError):
        acquirer.create_intent(payment_id, description="sim:success_after_timeout")
    retried = acquirer.create_intent(payment_id, description="sim:success_after_timeout")
    assert retried.status == 200 and retried.body["status"] == "succeeded"
    assert retried.headers.get("Idempotent-Replayed") == "true"


def test_a_key_whose_first_request_is_still_running_is_409_idempotency_key_in_use(
    acquirer: CardClient, endpoint: WebhookEndpoint, loop_thread: LoopThread
) -> None:
    acquirer.webhooks_to(endpoint.new_url(hold_s=1.0))
    form = b"amount=100&currency=usd&payment_method=pm_card_visa&confirm=true&description=sim%3Aout_of_order"
    headers = {
        "Authorization": f"Bearer {acquirer.secret_key}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Idempotency-Key": new_no("pay"),
    }
    url = acquirer.base_url + "/card/v1/payment_intents"

    async def twice() -> list[Answer]:
        # Out of order: the first answer waits until its webhook is acknowledged (held 1 s).
        first = asyncio.ensure_future(acquirer.send("POST", url, headers, form, 10.0))
        await asyncio.sleep(0.3)
        second = await acquirer.send("POST", url, headers, form, 10.0)
        return [await first, second]

    first, second = loop_thread.run(twice())
    assert first.status == 200 and first.body["status"] == "succeeded"
    assert (second.status, second.error["code"]) == (409, "idempotency_key_in_use")
    assert acquirer.post("/payment_intents", [], idempotency_key=headers["Idempotency-Key"]).status == 400
    replayed = acquirer.call(
        "POST", "/card/v1/payment_intents", _form(form), idempotency_key=headers["Idempotency-Key"]
    )
    assert replayed.raw == first.raw


def _form(encoded: bytes) -> list[tuple[str, str]]:
    return parse_qsl(encoded.decode())


# -- faults -------------------------------------------------------------------------------


def test_an_outage_is_503_api_error_and_keeps_nothing_under_the_key(
    acquirer: CardClient, card_sim: RunningSimulator
) -> None:
    sim = SimClient(card_sim.base_url)
    sim.configure({"unavailable": True}, ACCOUNT)
    payment_id = new_no("pay")
    down = acquirer.create_intent(payment_id)
    assert (down.status, down.error["type"]) == (503, "api_error")
    sim.configure({"unavailable": False}, ACCOUNT)
    assert acquirer.create_intent(payment_id).body["status"] == "succeeded"


def test_too_many_requests_in_flight_are_429_rate_limit(
    loop_thread: LoopThread, endpoint: WebhookEndpoint
) -> None:
    simulator = loop_thread.run(
        start_simulator((ACCOUNT,), KEY, seed=3, registry=_registry(max_requests_in_flight=1))
    )
    try:
        secret = SimClient(simulator.base_url).admin("/v1/admin/sandbox-credentials")[1]["card"]["merchants"]
        client = CardClient(loop_thread, simulator.base_url, secret[ACCOUNT]["secret_key"])
        client.webhooks_to(endpoint.new_url(hold_s=1.0))

        async def two_at_once() -> list[Answer]:
            # Out of order: the first answer waits until its webhook is acknowledged (held 1 s).
            first = client.send(
                "POST",
                simulator.base_url + "/card/v1/payment_intents",
                {
                    "Authorization": f"Bearer {client.secret_key}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                b"amount=100&currency=usd&payment_method=pm_card_visa&confirm=true&description=sim%3Aout_of_order",
                10.0,
            )
            task = asyncio.ensure_future(first)
            await asyncio.sleep(0.3)
            second = await client.send(
                "GET",
                simulator.base_url + "/card/v1/refunds",
                {"Authorization": f"Bearer {client.secret_key}"},
                None,
                10.0,
            )
            return [await task, second]

        first, second = loop_thread.run(two_at_once())
        assert first.status == 200 and first.body["status"] == "succeeded"
        assert (second.status, second.error["code"]) == (429, "rate_limit")
    finally:
        loop_thread.run(simulator.stop())


# -- refunds ------------------------------------------------------------------------------


def test_a_refund_is_pending_then_succeeds_and_is_listed_per_intent(acquirer: CardClient) -> None:
    payment_id = new_no("pay")
    intent = acquirer.create_intent(payment_id, 1000).body
    form = [
        ("payment_intent", intent["id"]),
        ("amount", "400"),
        ("metadata[refund_id]", "rfd_1"),
        ("metadata[payment_id]", payment_id),
        ("metadata[reason]", "customer asked"),
    ]
    refund = acquirer.post("/refunds", form, idempotency_key=new_no("rfd")).body
    assert (refund["object"], refund["status"], refund["amount"], refund["currency"]) == (
        "refund",
        "pending",
        400,
        "usd",
    )
    assert refund["id"].startswith("re_") and refund["metadata"]["refund_id"] == "rfd_1"
    eventually(lambda: acquirer.get(f"/refunds/{refund['id']}").body["status"] == "succeeded", "the refund")
    listed = acquirer.get("/refunds", [("payment_intent", intent["id"]), ("limit", "100")]).body
    assert listed["object"] == "list" and [r["id"] for r in listed["data"]] == [refund["id"]]

    too_much = acquirer.post("/refunds", [("payment_intent", intent["id"]), ("amount", "601")])
    assert (too_much.status, too_much.error["code"]) == (400, "amount_too_large")
    rest = acquirer.post("/refunds", [("payment_intent", intent["id"])]).body
    assert rest["amount"] == 600
    nothing_left = acquirer.post("/refunds", [("payment_intent", intent["id"])])
    assert (nothing_left.status, nothing_left.error["code"]) == (400, "charge_already_refunded")
    unknown = acquirer.post("/refunds", [("payment_intent", "pi_nope"), ("amount", "1")])
    assert (unknown.status, unknown.error["code"]) == (400, "resource_missing")
    assert acquirer.get("/refunds/re_nope").status == 404


def test_a_refund_of_an_intent_not_captured_is_refused(acquirer: CardClient) -> None:
    authorised = acquirer.create_intent(new_no("pay"), capture_method="manual").body
    refused = acquirer.post("/refunds", [("payment_intent", authorised["id"]), ("amount", "1")])
    assert (refused.status, refused.error["code"]) == (400, "payment_intent_unexpected_state")


# -- webhooks -----------------------------------------------------------------------------


def test_webhooks_are_stripe_signed_events_for_payments_declines_and_refunds(
    acquirer: CardClient, endpoint: WebhookEndpoint, credentials: dict[str, Any]
) -> None:
    url = endpoint.new_url()
    registered = acquirer.webhooks_to(url).body
    assert registered["secret"] == credentials[ACCOUNT]["webhook_secret"]
    payment_id = new_no("pay")
    intent = acquirer.create_intent(payment_id, 1234).body
    declined = acquirer.create_intent(new_no("pay"), payment_method="pm_card_chargeDeclined").error
    refund = acquirer.post("/refunds", [("payment_intent", intent["id"]), ("amount", "234")]).body
    ours = {intent["id"], declined["payment_intent"]["id"], refund["id"]}

    def mine() -> list[Delivery]:
        # Another test's late event may reach this endpoint too: only ours are counted.
        return [d for d in endpoint.deliveries(url) if d.event["data"]["object"]["id"] in ours]

    eventually(lambda: len(mine()) == 3, "three events")
    secret = credentials[ACCOUNT]["webhook_secret"]
    events = {}
    for delivery in mine():
        assert _verified(secret, delivery.body, delivery.headers["Stripe-Signature"])
        assert not _verified("whsec_other", delivery.body, delivery.headers["Stripe-Signature"])
        event = stripe.Webhook.construct_event(
            delivery.body.decode(), delivery.headers["Stripe-Signature"], secret
        )
        assert event["object"] == "event" and event["id"].startswith("evt_")
        events[event["type"]] = delivery.event["data"]["object"]
    assert set(events) == {"payment_intent.succeeded", "payment_intent.payment_failed", "refund.updated"}
    succeeded = events["payment_intent.succeeded"]
    assert (succeeded["id"], succeeded["amount_received"]) == (intent["id"], 1234)
    assert succeeded["metadata"]["payment_id"] == payment_id
    assert events["payment_intent.payment_failed"]["id"] == declined["payment_intent"]["id"]
    assert (events["refund.updated"]["status"], events["refund.updated"]["amount"]) == ("succeeded", 234)


def test_an_event_not_acknowledged_is_sent_again_with_the_same_body_signed_anew(
    acquirer: CardClient, endpoint: WebhookEndpoint, credentials: dict[str, Any]
) -> None:
    url = endpoint.new_url(refuse_first=1)
    acquirer.webhooks_to(url, ["payment_intent.succeeded"])
    paid = acquirer.create_intent(new_no("pay"), description="sim:delay_notify=50").body
    # Not subscribed: no event for the decline.
    declined = acquirer.create_intent(new_no("pay"), payment_method="pm_card_chargeDeclined").error

    def about(intent_id: str) -> list[Delivery]:
        return [d for d in endpoint.deliveries(url) if d.event["data"]["object"]["id"] == intent_id]

    eventually(lambda: len(about(paid["id"])) == 2, "the event and its retry")
    time.sleep(0.3)
    first, second = about(paid["id"])
    assert first.body == second.body and first.event["type"] == "payment_intent.succeeded"
    assert (
        first.headers["Stripe-Signature"] != second.headers["Stripe-Signature"] or first.body == second.body
    )
    secret = credentials[ACCOUNT]["webhook_secret"]
    assert _verified(secret, second.body, second.headers["Stripe-Signature"])
    assert len(about(paid["id"])) == 2 and about(declined["payment_intent"]["id"]) == []


# -- settlement statement -----------------------------------------------------------------


def test_the_settlement_statement_has_the_days_batches_and_parses_with_the_right_totals(
    card_sim: RunningSimulator, loop_thread: LoopThread, credentials: dict[str, Any]
) -> None:
    client = CardClient(loop_thread, card_sim.base_url, credentials[STATEMENT_ACCOUNT]["secret_key"])
    today = datetime.now(UTC).date()
    assert client.get(f"/settlement_statements/{today}").status == 404
    amounts = [1000, 2000, 3000, 4000, 5000]
    intents = [client.create_intent(new_no("pay"), a, "eur").body for a in amounts]
    refund = client.post("/refunds", [("payment_intent", intents[0]["id"]), ("amount", "300")]).body
    eventually(lambda: client.get(f"/refunds/{refund['id']}").body["status"] == "succeeded", "the refund")
    SimClient(card_sim.base_url).admin(
        f"/v1/admin/statement-extras?merchant={STATEMENT_ACCOUNT}",
        {"protocol": "card", "day": today.isoformat(), "kind": "PAYMENT", "out_trade_no": "pi_invented",
         "amount": "7.00", "currency": "EUR"},
    )  # fmt: skip

    answer = client.get(f"/settlement_statements/{today}")
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/csv")
    parsed = card_statement.parse(answer.raw, "card.csv", "card", today)
    columns = parsed.columns
    assert parsed.account == credentials[STATEMENT_ACCOUNT]["account_id"]
    # Five captures in batches of two (the second batch in two SALE lines), the refund, the planted line.
    sales = [m for m, k in zip(columns["amount_minor"], columns["kind"], strict=True) if k == "PAYMENT"]
    assert sum(sales) == sum(amounts) + 700
    fees = sum(sale_fee(Money(a, "EUR")).minor for a in [*amounts, 700])
    assert sum(columns["fee_minor"]) == fees
    assert [m for m, k in zip(columns["amount_minor"], columns["kind"], strict=True) if k == "REFUND"] == [
        300
    ]
    batches = columns["batch_id"]
    assert len(set(batches)) == 4 and batches.count(batches[2]) == 2, answer.raw.decode()
    assert any("-P01" in b for b in batches)
    gross, net = Money(sum(amounts) + 700 + 300, "EUR"), Money(sum(amounts) + 700 - 300 - fees, "EUR")
    assert answer.raw.decode().splitlines()[-1] == (
        f"TRAILER,,,,7,{gross.format()},{Money(fees, 'EUR').format()},{net.format()},EUR,"
    )

    admin = f"/v1/admin/statement?merchant={STATEMENT_ACCOUNT}&protocol=card&day={today}"
    assert _admin_bytes(card_sim.base_url + admin) == (200, answer.raw)

    client.create_intent(new_no("pay"), 100, "gbp")
    status, _ = _admin_bytes(card_sim.base_url + admin)
    assert status == 400
    ambiguous = client.get(f"/settlement_statements/{today}")
    assert (ambiguous.status, ambiguous.error["param"]) == (400, "currency")
    in_gbp = client.get(f"/settlement_statements/{today}", [("currency", "gbp")])
    assert card_statement.parse(in_gbp.raw, "card.csv", "card", today).columns["amount_minor"] == [100]
    assert client.get("/settlement_statements/2026-13-01").status == 400
