"""The gateway's card connector against the channel simulator's card protocol on loopback: the
account config built by card_sandbox.account_config from the simulator's published credentials,
then charges, declines, queries, refunds, closes, a webhook verified by the connector, and the
settlement statement read by the reconciliation parser.

Unlike test_card_connector.py's scripted fake, the simulator keeps state and plays the acquirer
through its real rules (operations.py), so this proves the two sides agree on the wire."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from channel_gateway.adapters.connectors import card
from channel_gateway.adapters.connectors.card import sandbox as card_sandbox
from channel_gateway.adapters.connectors.card.connector import CardConnector, Trail
from channel_gateway.adapters.connectors.card.transformers import Intent
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChargeCommand,
    ChargeState,
    CloseResult,
    NotificationRejected,
    PaymentNotification,
    RefundCommand,
    RefundNotification,
    RefundState,
    VerifiedNotification,
)
from channel_simulator.harness import LoopThread, RunningSimulator, start_simulator
from channel_simulator.protocols.base import ProtocolRegistry
from channel_simulator.protocols.card import CardProtocol
from paykit.ids import IdKind, new_id
from paykit.money import Money
from reconciliation.statements import card as card_statement

from services.channel_gateway.tests.integration.support import eventually

MERCHANT = "CARD-MERCHANT-1"
SANDBOX_KEY = b"card-simulator-test-key"
BATCH_MAX_CAPTURES = 2
DECLINING_CARD = "pm_card_visa_chargeDeclinedInsufficientFunds"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Received:
    """One webhook as the gateway's endpoint read it: the connector's verdict, or why it refused."""

    note: VerifiedNotification | AcknowledgedOnly | None
    refused: str | None


class GatewayWebhooks:
    """A small stand-in for the gateway's /webhooks/{channel}: verifies with the connector and
    answers with its acknowledgement."""

    def __init__(self, connector: CardConnector) -> None:
        self.connector = connector
        self.base_url = ""
        self._lock = threading.Lock()
        self._received: list[Received] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/{channel}", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            received = Received(self.connector.verify_notification(request.path, request.headers, body), None)
        except NotificationRejected as exc:
            received = Received(None, exc.reason)
        with self._lock:
            self._received.append(received)
        status, text = self.connector.acknowledgement(received.refused is None)
        return web.Response(status=status, text=text)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)


@dataclass
class Setup:
    loop: LoopThread
    simulator: RunningSimulator
    connector: CardConnector
    webhooks: GatewayWebhooks
    credentials: dict[str, Any]

    def run(self, work: Any) -> Any:
        return self.loop.run(work, TIMEOUT_S + 5)


def _http_json(url: str, *, form: dict[str, str] | None = None, key: str = "") -> Any:
    data = urlencode(form).encode() if form is not None else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    loop = LoopThread("card-simulator-test-loop")
    registry = ProtocolRegistry()
    registry.register(CardProtocol.name, CardProtocol.with_options(batch_max_captures=BATCH_MAX_CAPTURES))
    simulator = loop.run(start_simulator((MERCHANT,), SANDBOX_KEY, seed=21, registry=registry))
    published = _http_json(simulator.base_url + "/v1/admin/sandbox-credentials")["card"]["merchants"][
        MERCHANT
    ]
    connector = card.build("card", card_sandbox.account_config(simulator.base_url, published))
    webhooks = GatewayWebhooks(connector)

    async def start_webhooks() -> web.AppRunner:
        runner = web.AppRunner(webhooks.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop.run(start_webhooks())
    webhooks.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    # The acquirer sends webhooks to the endpoint registered with it, as at Stripe.
    _http_json(
        simulator.base_url + "/card/v1/webhook_endpoints",
        form={"url": webhooks.base_url + "/webhooks/card", "enabled_events[0]": "*"},
        key=published["secret_key"],
    )
    try:
        yield Setup(loop, simulator, connector, webhooks, published)
    finally:
        loop.run(connector.aclose())
        loop.run(runner.cleanup())
        loop.run(simulator.stop())
        loop.stop()


def _charge(amount: Money, method: str = "qr", payment_id: str | None = None) -> ChargeCommand:
    return ChargeCommand(
        payment_id or new_id(IdKind.PAYMENT), new_id(IdKind.ORDER), amount, method, "tea", "unused"
    )


def _refund(payment_id: str, amount: Money, paid: Money) -> RefundCommand:
    return RefundCommand(new_id(IdKind.REFUND), payment_id, "ord_1", amount, paid, "customer asked", "unused")


def test_the_account_config_from_the_simulators_credentials_builds_a_card_connector(setup: Setup) -> None:
    config = card_sandbox.account_config(setup.simulator.base_url, setup.credentials)
    assert config["api_base_url"] == setup.simulator.base_url + "/card"
    assert config["secret_key"].startswith("sk_test_") and config["webhook_secret"].startswith("whsec_")


def test_a_card_charge_succeeds_and_a_query_finds_it_paid(setup: Setup) -> None:
    command = _charge(Money(1999, "USD"))
    reply, raw = setup.run(setup.connector.charge(command))
    assert reply.state is ChargeState.SUCCEEDED and reply.channel_trade_no.startswith("pi_"), raw
    query, _ = setup.run(setup.connector.query(command.payment_id))
    assert (query.state, query.channel_trade_no, query.amount) == (
        ChargeState.SUCCEEDED,
        reply.channel_trade_no,
        Money(1999, "USD"),
    )
    assert query.paid_at is not None
    again, _ = setup.run(setup.connector.charge(command))
    assert (again.state, again.channel_trade_no) == (ChargeState.SUCCEEDED, reply.channel_trade_no)


def test_a_declined_card_is_declined_with_its_decline_code(setup: Setup) -> None:
    command = _charge(Money(500, "USD"), method=DECLINING_CARD)
    reply, _ = setup.run(setup.connector.charge(command))
    assert (reply.state, reply.decline_code) == (ChargeState.DECLINED, "insufficient_funds")
    query, _ = setup.run(setup.connector.query(command.payment_id))
    assert query.state is ChargeState.DECLINED


def test_a_refund_is_processing_then_succeeds_and_query_refund_says_so(setup: Setup) -> None:
    paid = Money(3000, "USD")
    command = _charge(paid)
    setup.run(setup.connector.charge(command))
    refund = _refund(command.payment_id, Money(1000, "USD"), paid)
    reply, _ = setup.run(setup.connector.refund(refund))
    assert reply.state is RefundState.PROCESSING and reply.channel_refund_no.startswith("re_")

    def settled() -> bool:
        found, _ = setup.run(setup.connector.query_refund(refund.refund_id, command.payment_id))
        return bool(found.state is RefundState.SUCCEEDED)

    eventually(settled, "the refund to succeed")
    found, _ = setup.run(setup.connector.query_refund(refund.refund_id, command.payment_id))
    assert (found.amount, found.channel_refund_no) == (Money(1000, "USD"), reply.channel_refund_no)
    unknown, _ = setup.run(setup.connector.query_refund(new_id(IdKind.REFUND), command.payment_id))
    assert unknown.state is RefundState.NOT_FOUND


def test_an_unconfirmed_intent_is_closed_and_a_paid_one_is_already_paid(setup: Setup) -> None:
    command = _charge(Money(700, "USD"))
    created = setup.run(setup.connector.create_intent(command, Trail("charge"), confirm=False))
    assert isinstance(created, Intent) and created.status == "requires_confirmation"
    closed, _ = setup.run(setup.connector.close(command.payment_id))
    assert closed.result is CloseResult.CLOSED
    query, _ = setup.run(setup.connector.query(command.payment_id))
    assert query.state is ChargeState.CLOSED

    paid = _charge(Money(800, "USD"))
    setup.run(setup.connector.charge(paid))
    refused, _ = setup.run(setup.connector.close(paid.payment_id))
    assert refused.result is CloseResult.ALREADY_PAID


def test_webhooks_reach_the_gateway_and_verify_with_the_connector(setup: Setup) -> None:
    paid = Money(4200, "USD")
    command = _charge(paid)
    setup.run(setup.connector.charge(command))
    refund = _refund(command.payment_id, Money(200, "USD"), paid)
    setup.run(setup.connector.refund(refund))

    def notes() -> list[VerifiedNotification | AcknowledgedOnly]:
        return [r.note for r in setup.webhooks.received() if r.note is not None]

    def payment() -> list[PaymentNotification]:
        return [
            n for n in notes() if isinstance(n, PaymentNotification) and n.payment_id == command.payment_id
        ]

    def refunded() -> list[RefundNotification]:
        return [n for n in notes() if isinstance(n, RefundNotification) and n.refund_id == refund.refund_id]

    eventually(lambda: bool(payment()) and bool(refunded()), "the payment and refund webhooks")
    assert payment()[0].succeeded and payment()[0].amount == paid
    assert refunded()[0].succeeded and refunded()[0].amount == Money(200, "USD")
    assert all(r.refused is None for r in setup.webhooks.received())


def test_the_downloaded_statement_parses_with_the_batch_totals_of_the_day(setup: Setup) -> None:
    # Every test's captures and refunds of the day are on it too: compare with the acquirer's own
    # records of that day, then check the batches hold exactly them.
    for amount in (1000, 2500, 1250, 999):
        setup.run(setup.connector.charge(_charge(Money(amount, "USD"))))
    trades = _http_json(setup.simulator.base_url + f"/v1/admin/trades?merchant={MERCHANT}")
    captured = [t for t in trades if t["status"] == "SUCCESS" and t["protocol"] == "card"]
    day = max(datetime.fromisoformat(t["paid_at"]) for t in captured).date()
    statement, _ = setup.run(setup.connector.download_statement(day))
    assert statement.format == card_statement.FORMAT and statement.filename.endswith(".csv")
    parsed = card_statement.parse(statement.content, statement.filename, "card", day)
    assert parsed.account == setup.credentials["account_id"]

    def on_day(record: dict[str, Any], moment: str) -> bool:
        return datetime.fromisoformat(record[moment]).date() == day

    sold = [t for t in captured if on_day(t, "paid_at")]
    refunds = [
        r for t in trades for r in t["refunds"] if r["status"] == "SUCCESS" and on_day(r, "refunded_at")
    ]
    columns = parsed.columns
    lines = list(zip(columns["kind"], columns["amount_minor"], columns["batch_id"], strict=True))
    assert sum(a for kind, a, _ in lines if kind == "PAYMENT") == sum(_minor(t) for t in sold)
    assert sum(a for kind, a, _ in lines if kind == "REFUND") == sum(_minor(r) for r in refunds)
    # Batches of at most BATCH_MAX_CAPTURES captures, and the second one in two SALE lines.
    batches = sorted({batch for _, _, batch in lines})
    assert len(batches) == -(-len(sold) // BATCH_MAX_CAPTURES)
    assert [batch for kind, _, batch in lines if kind == "PAYMENT"].count(batches[1]) == 2


def _minor(record: dict[str, Any]) -> int:
    return Money.parse(record["amount"], record["currency"]).minor
