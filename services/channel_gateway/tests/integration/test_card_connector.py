"""The card connector's behaviour against a small Stripe-like acquirer on loopback: what it sends
(keys, idempotency, form), and how each kind of answer becomes a reply or an exception.

stripe-mock (test_card_stripe_mock.py) proves the requests are Stripe's; it is stateless and
cannot decline, lag or fail, so these behaviours are played here by a scripted fake."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from channel_gateway.adapters.connectors import card
from channel_gateway.adapters.connectors.card.connector import SEARCH_LAG_MAX_S, CardConnector
from channel_gateway.domain.channel import (
    ChannelConflict,
    ChannelErrorKind,
    ChannelRefused,
    ChannelUnavailable,
    ChargeCommand,
    ChargeState,
    CloseResult,
    PayoutCommand,
    RefundCommand,
    RefundState,
)
from paykit.ids import IdGenerator, IdKind, new_id
from paykit.money import Money

SECRET_KEY = "sk_test_fake_acquirer"
DECLINING_CARD = "pm_card_visa_chargeDeclinedInsufficientFunds"
THREE_DS_CARD = "pm_card_threeDSecure2Required"
USD_19_99, USD_5 = Money(1999, "USD"), Money(500, "USD")
T = TypeVar("T")


@dataclass
class FakeAcquirer:
    """Just enough of Stripe's PaymentIntents and Refunds to exercise the connector."""

    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    # Answers to give instead of the real one, first in first out: (status, JSON body).
    scripted: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    # Whether search sees the intents yet (Stripe's search lags behind writes).
    searchable: bool = True
    # Intents whose cancel finds them already paid (the payer paid during the close).
    paid_while_closing: set[str] = field(default_factory=set)
    statements: dict[str, bytes] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v1/payment_intents", self._create)
        app.router.add_get("/v1/payment_intents/search", self._search)
        app.router.add_get("/v1/payment_intents/{id}", self._retrieve)
        app.router.add_post("/v1/payment_intents/{id}/capture", self._capture)
        app.router.add_post("/v1/payment_intents/{id}/cancel", self._cancel)
        app.router.add_post("/v1/refunds", self._refund)
        app.router.add_get("/v1/refunds", self._list_refunds)
        app.router.add_get("/v1/settlement_statements/{day}", self._statement)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        form = dict(parse_qsl((await request.read()).decode()))
        self.requests.append((request.method, request.path, dict(request.headers), form))
        if request.method == "POST" and request.query_string:
            return _error(
                400, type="invalid_request_error", message="a POST takes its parameters in the body"
            )
        if request.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
            return _error(401, type="invalid_request_error", message="Invalid API Key provided")
        if self.scripted:
            status, body = self.scripted.pop(0)
            return web.json_response(body, status=status)
        return await handler(request)

    def _next(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    async def _create(self, request: web.Request) -> web.Response:
        form = dict(parse_qsl((await request.read()).decode()))
        key = request.headers["Idempotency-Key"]
        if key in self.intents:
            return web.json_response(self.intents[key])
        intent: dict[str, Any] = {
            "id": self._next("pi"),
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "amount_received": 0,
            "currency": form["currency"],
            "capture_method": form["capture_method"],
            "metadata": {"payment_id": form["metadata[payment_id]"], "order_id": form["metadata[order_id]"]},
            "last_payment_error": None,
            "next_action": None,
            "latest_charge": None,
            "status": "requires_payment_method",
        }
        self.intents[key] = intent
        card_ = form["payment_method"]
        if card_ == DECLINING_CARD:
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
            }
            return _error(
                402,
                **intent["last_payment_error"],
                message="Your card has insufficient funds.",
                payment_intent=intent,
            )
        if card_ == THREE_DS_CARD:
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": "https://acs.example/3ds"},
            }
        elif form["capture_method"] == "manual":
            intent["status"] = "requires_capture"
        else:
            _pay(intent)
        return web.json_response(intent)

    def _by_id(self, intent_id: str) -> dict[str, Any] | None:
        return next((i for i in self.intents.values() if i["id"] == intent_id), None)

    async def _retrieve(self, request: web.Request) -> web.Response:
        intent = self._by_id(request.match_info["id"])
        if intent is None:
            return _error(404, type="invalid_request_error", code="resource_missing")
        return web.json_response(intent)

    async def _search(self, request: web.Request) -> web.Response:
        wanted = request.query["query"].split(":", 1)[1].strip("'")
        found = (
            [i for i in self.intents.values() if i["metadata"]["payment_id"] == wanted]
            if self.searchable
            else []
        )
        return web.json_response({"object": "search_result", "data": found, "has_more": False})

    async def _capture(self, request: web.Request) -> web.Response:
        intent = self._by_id(request.match_info["id"])
        if intent is None or intent["status"] != "requires_capture":
            return _error(400, type="invalid_request_error", code="payment_intent_unexpected_state")
        _pay(intent)
        return web.json_response(intent)

    async def _cancel(self, request: web.Request) -> web.Response:
        intent = self._by_id(request.match_info["id"])
        if intent is None:
            return _error(404, type="invalid_request_error", code="resource_missing")
        if intent["id"] in self.paid_while_closing:
            _pay(intent)
        if intent["status"] in ("succeeded", "canceled", "processing"):
            return _error(
                400,
                type="invalid_request_error",
                code="payment_intent_unexpected_state",
                payment_intent=intent,
            )
        intent["status"] = "canceled"
        return web.json_response(intent)

    async def _refund(self, request: web.Request) -> web.Response:
        form = dict(parse_qsl((await request.read()).decode()))
        key = request.headers["Idempotency-Key"]
        if key not in self.refunds:
            intent = self._by_id(form["payment_intent"])
            if intent is None or intent["status"] != "succeeded":
                return _error(400, type="invalid_request_error", code="charge_not_refundable")
            self.refunds[key] = {
                "id": self._next("re"),
                "object": "refund",
                "amount": int(form["amount"]),
                "currency": intent["currency"],
                "status": "pending",
                "payment_intent": intent["id"],
                "metadata": {
                    "refund_id": form["metadata[refund_id]"],
                    "payment_id": form["metadata[payment_id]"],
                },
                "failure_reason": None,
                "created": 1_790_000_000,
            }
        return web.json_response(self.refunds[key])

    async def _list_refunds(self, request: web.Request) -> web.Response:
        listed = [r for r in self.refunds.values() if r["payment_intent"] == request.query["payment_intent"]]
        return web.json_response({"object": "list", "data": listed, "has_more": False})

    async def _statement(self, request: web.Request) -> web.Response:
        content = self.statements.get(request.match_info["day"])
        if content is None:
            return _error(404, type="invalid_request_error", code="resource_missing")
        return web.Response(body=content, content_type="text/csv", charset="utf-8")


def _pay(intent: dict[str, Any]) -> None:
    intent["status"] = "succeeded"
    intent["amount_received"] = intent["amount"]
    intent["latest_charge"] = {"id": "ch_" + intent["id"][3:], "object": "charge", "created": 1_790_000_000}


def _error(status: int, **error: Any) -> web.Response:
    return web.json_response({"error": error}, status=status)


@asynccontextmanager
async def _running(fake: FakeAcquirer, **config: Any) -> AsyncIterator[CardConnector]:
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    connector = card.build(
        "card",
        {
            "api_base_url": f"http://127.0.0.1:{port}",
            "secret_key": SECRET_KEY,
            "webhook_secret": "whsec_fake",
            "default_payment_method": "pm_card_visa",
            **config,
        },
    )
    try:
        yield connector
    finally:
        await connector.aclose()
        await runner.cleanup()


def _run(fake: FakeAcquirer, scenario: Callable[[CardConnector], Awaitable[T]], **config: Any) -> T:
    async def main() -> T:
        async with _running(fake, **config) as connector:
            return await scenario(connector)

    return asyncio.run(main())


def _charge(payment_id: str | None = None, amount: Money = USD_19_99, method: str = "qr") -> ChargeCommand:
    return ChargeCommand(
        payment_id or new_id(IdKind.PAYMENT), "ord_1", amount, method, "tea", "http://gw/webhooks/card"
    )


def _refund(payment_id: str, amount: Money = USD_5) -> RefundCommand:
    return RefundCommand(
        new_id(IdKind.REFUND), payment_id, "ord_1", amount, Money(1999, "USD"), "customer asked", ""
    )


# -- charge ---------------------------------------------------------------------------


def test_charge_sends_a_keyed_confirmed_intent_and_reports_success() -> None:
    fake, command = FakeAcquirer(), _charge(amount=Money(500, "JPY"))
    reply, raw = _run(fake, lambda c: c.charge(command))
    assert reply.state is ChargeState.SUCCEEDED and reply.channel_trade_no.startswith("pi_")
    method, path, headers, form = fake.requests[0]
    assert (method, path) == ("POST", "/v1/payment_intents")
    assert headers["Idempotency-Key"] == command.payment_id
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert (form["amount"], form["currency"], form["confirm"]) == ("500", "jpy", "true")
    assert (form["payment_method"], form["metadata[payment_id]"]) == ("pm_card_visa", command.payment_id)
    assert raw.response_status == 200 and raw.request_body.startswith("POST /v1/payment_intents\n")
    assert SECRET_KEY not in raw.request_body + raw.response_body


def test_a_retried_charge_is_the_same_intent_never_a_second_charge() -> None:
    fake, command = FakeAcquirer(), _charge()

    async def twice(connector: CardConnector) -> tuple[str, str]:
        first, _ = await connector.charge(command)
        again, _ = await connector.charge(command)
        return first.channel_trade_no, again.channel_trade_no

    first, again = _run(fake, twice)
    assert first == again and len(fake.intents) == 1


def test_the_commands_own_card_is_charged_when_it_carries_one() -> None:
    fake = FakeAcquirer()
    reply, _ = _run(fake, lambda c: c.charge(_charge(method=THREE_DS_CARD)))
    assert (reply.state, reply.pay_url) == (ChargeState.PENDING, "https://acs.example/3ds")
    assert fake.requests[0][3]["payment_method"] == THREE_DS_CARD


def test_a_declined_card_is_a_declined_charge_with_the_issuers_code() -> None:
    fake = FakeAcquirer()
    reply, raw = _run(fake, lambda c: c.charge(_charge(method=DECLINING_CARD)))
    assert (reply.state, reply.decline_code) == (ChargeState.DECLINED, "insufficient_funds")
    assert reply.channel_trade_no.startswith("pi_") and "insufficient funds" in reply.decline_message
    assert raw.response_status == 402


def test_manual_capture_authorises_then_captures_in_one_charge() -> None:
    fake = FakeAcquirer()
    reply, raw = _run(fake, lambda c: c.charge(_charge()), capture_method="manual")
    assert reply.state is ChargeState.SUCCEEDED
    assert [(m, p.rsplit("/", 1)[-1]) for m, p, _, _ in fake.requests] == [
        ("POST", "payment_intents"),
        ("POST", "capture"),
    ]
    assert fake.requests[1][2]["Idempotency-Key"] == f"{fake.requests[0][2]['Idempotency-Key']}:capture"
    assert raw.request_body.count("POST /v1/payment_intents") == 2


def test_without_a_card_or_a_default_the_charge_is_refused_unsent() -> None:
    fake = FakeAcquirer()
    with pytest.raises(ChannelRefused) as refused:
        _run(fake, lambda c: c.charge(_charge()), default_payment_method="")
    assert (refused.value.kind, refused.value.channel_code) == (
        ChannelErrorKind.INVALID_REQUEST,
        "NO_PAYMENT_METHOD",
    )
    assert fake.requests == []


def test_an_amount_the_acquirer_cannot_express_is_refused_unsent() -> None:
    fake = FakeAcquirer()
    with pytest.raises(ChannelRefused, match="AMOUNT_NOT_REPRESENTABLE"):
        _run(fake, lambda c: c.charge(_charge(amount=Money(5124, "KWD"))))
    assert fake.requests == []


@pytest.mark.parametrize(
    ("status", "error", "raised", "kind"),
    [
        (
            400,
            {"type": "invalid_request_error", "code": "amount_too_small"},
            ChannelRefused,
            ChannelErrorKind.INVALID_REQUEST,
        ),
        (
            429,
            {"type": "invalid_request_error", "code": "rate_limit"},
            ChannelRefused,
            ChannelErrorKind.RATE_LIMITED,
        ),
        (403, {"type": "invalid_request_error"}, ChannelRefused, ChannelErrorKind.AUTHENTICATION),
        (409, {"type": "idempotency_error"}, ChannelConflict, None),
        (409, {"type": "invalid_request_error", "code": "idempotency_key_in_use"}, ChannelUnavailable, None),
        (500, {"type": "api_error"}, ChannelUnavailable, None),
        (200, {"not": "an intent"}, ChannelUnavailable, None),
    ],
)
def test_error_answers_to_a_charge_become_the_interface_exceptions(
    status: int, error: dict[str, Any], raised: type[Exception], kind: ChannelErrorKind | None
) -> None:
    fake = FakeAcquirer(scripted=[(status, error if status == 200 else {"error": error})])
    with pytest.raises(raised) as caught:
        _run(fake, lambda c: c.charge(_charge()))
    if kind is not None:
        assert isinstance(caught.value, ChannelRefused) and caught.value.kind is kind
    raw = getattr(caught.value, "raw", None)
    assert raw is not None and raw.response_status == status


def test_a_wrong_key_is_an_authentication_refusal() -> None:
    fake = FakeAcquirer()
    with pytest.raises(ChannelRefused) as refused:
        _run(fake, lambda c: c.charge(_charge()), secret_key="sk_test_wrong")
    assert refused.value.kind is ChannelErrorKind.AUTHENTICATION


def test_no_answer_at_all_is_an_unknown_outcome() -> None:
    connector = card.build(
        "card", {"api_base_url": "http://127.0.0.1:9", "secret_key": SECRET_KEY, "webhook_secret": "whsec_x"}
    )

    async def scenario() -> None:
        try:
            await connector.query(new_id(IdKind.PAYMENT))
        finally:
            await connector.aclose()

    with pytest.raises(ChannelUnavailable) as caught:
        asyncio.run(scenario())
    assert caught.value.raw is not None and caught.value.raw.response_status == 0


# -- query and close ------------------------------------------------------------------


def test_query_retrieves_a_known_intent_by_id_and_searches_an_unknown_one() -> None:
    fake, command = FakeAcquirer(), _charge()

    async def scenario(connector: CardConnector) -> tuple[ChargeState, ChargeState]:
        await connector.charge(command)
        known, _ = await connector.query(command.payment_id)
        # A replica that did not make the charge: by search.
        fresh = CardConnector(connector._base_url, SECRET_KEY, "whsec_x")
        try:
            found, _ = await fresh.query(command.payment_id)
        finally:
            await fresh.aclose()
        assert found.amount == command.amount and found.paid_at is not None
        return known.state, found.state

    assert _run(fake, scenario) == (ChargeState.SUCCEEDED, ChargeState.SUCCEEDED)
    paths = [p for _, p, _, _ in fake.requests]
    assert paths[1].startswith("/v1/payment_intents/pi_") and paths[2] == "/v1/payment_intents/search"


def test_query_of_a_payment_the_acquirer_never_saw_is_not_found() -> None:
    reply, _ = _run(FakeAcquirer(), lambda c: c.query(new_id(IdKind.PAYMENT)))
    assert reply.state is ChargeState.NOT_FOUND


def test_close_cancels_an_unpaid_intent() -> None:
    fake, command = FakeAcquirer(), _charge(method=THREE_DS_CARD)

    async def scenario(connector: CardConnector) -> CloseResult:
        await connector.charge(command)
        reply, _ = await connector.close(command.payment_id)
        return reply.result

    assert _run(fake, scenario) is CloseResult.CLOSED
    assert fake.requests[-1][1].endswith("/cancel")
    assert "Idempotency-Key" not in fake.requests[-1][2]


def test_close_of_a_paid_intent_is_already_paid_also_when_paid_during_the_close() -> None:
    fake = FakeAcquirer()
    paid, racing = _charge(), _charge(method=THREE_DS_CARD)

    async def scenario(connector: CardConnector) -> tuple[CloseResult, CloseResult]:
        await connector.charge(paid)
        reply_paid, _ = await connector.close(paid.payment_id)
        charged, _ = await connector.charge(racing)
        fake.paid_while_closing.add(charged.channel_trade_no)
        reply_racing, _ = await connector.close(racing.payment_id)
        return reply_paid.result, reply_racing.result

    assert _run(fake, scenario) == (CloseResult.ALREADY_PAID, CloseResult.ALREADY_PAID)


def test_close_without_an_intent_is_closed_only_once_search_must_have_caught_up() -> None:
    fake = FakeAcquirer(searchable=False)
    long_ago_ms = int((time.time() - SEARCH_LAG_MAX_S - 60) * 1000)
    old_id = IdGenerator(clock_ms=lambda: long_ago_ms).new_id(IdKind.PAYMENT)
    reply, _ = _run(fake, lambda c: c.close(old_id))
    assert reply.result is CloseResult.CLOSED
    with pytest.raises(ChannelUnavailable, match="search may lag"):
        _run(fake, lambda c: c.close(new_id(IdKind.PAYMENT)))
    with pytest.raises(ChannelUnavailable, match="unknown age"):
        _run(fake, lambda c: c.close("pay_not_one_of_ours"))


# -- refunds, statements, payouts ------------------------------------------------------


def test_refund_is_keyed_by_our_refund_id_and_queried_from_the_intents_refunds() -> None:
    fake, command = FakeAcquirer(), _charge()

    async def scenario(connector: CardConnector) -> tuple[RefundState, RefundState, RefundState, str]:
        await connector.charge(command)
        refund = _refund(command.payment_id)
        sent, _ = await connector.refund(refund)
        again, _ = await connector.refund(refund)
        assert again.channel_refund_no == sent.channel_refund_no and sent.amount == refund.amount
        fake.refunds[refund.refund_id]["status"] = "succeeded"
        queried, _ = await connector.query_refund(refund.refund_id, command.payment_id)
        unknown, _ = await connector.query_refund(new_id(IdKind.REFUND), command.payment_id)
        return (
            sent.state,
            queried.state,
            unknown.state,
            next(h for _, p, h, _ in fake.requests if p == "/v1/refunds")["Idempotency-Key"],
        )

    sent, queried, unknown, key = _run(fake, scenario)
    assert (sent, queried, unknown) == (RefundState.PROCESSING, RefundState.SUCCEEDED, RefundState.NOT_FOUND)
    assert key.startswith("rfd_") and len(fake.refunds) == 1


def test_a_refund_whose_intent_search_cannot_see_yet_is_an_unknown_outcome_unsent() -> None:
    fake = FakeAcquirer(searchable=False)
    with pytest.raises(ChannelUnavailable, match="no payment intent found"):
        _run(fake, lambda c: c.refund(_refund(new_id(IdKind.PAYMENT))))
    assert all(p != "/v1/refunds" for _, p, _, _ in fake.requests)


def test_a_refused_refund_is_a_refusal() -> None:
    fake, command = FakeAcquirer(), _charge(method=THREE_DS_CARD)

    async def scenario(connector: CardConnector) -> None:
        await connector.charge(command)
        await connector.refund(_refund(command.payment_id))

    with pytest.raises(ChannelRefused) as refused:
        _run(fake, scenario)
    assert refused.value.channel_code == "charge_not_refundable"


def test_the_settlement_statement_is_downloaded_as_the_acquirers_csv() -> None:
    day = date(2026, 11, 24)
    content = b"settlement_date,type,payment_intent\n2026-11-24,charge,pi_1\n"
    fake = FakeAcquirer(statements={day.isoformat(): content})
    statement, raw = _run(fake, lambda c: c.download_statement(day))
    assert (statement.day, statement.format, statement.content) == (day, "card-settlement-csv", content)
    assert raw.response_status == 200
    with pytest.raises(ChannelRefused) as refused:
        _run(fake, lambda c: c.download_statement(day + timedelta(days=1)))
    assert refused.value.channel_code == "resource_missing"


def test_payouts_are_not_offered() -> None:
    fake = FakeAcquirer()
    with pytest.raises(ChannelRefused) as refused:
        _run(fake, lambda c: c.payout(PayoutCommand("stl_1", "mch_1", Money(100, "USD"))))
    assert (refused.value.kind, refused.value.channel_code) == (
        ChannelErrorKind.INVALID_REQUEST,
        "UNSUPPORTED",
    )
