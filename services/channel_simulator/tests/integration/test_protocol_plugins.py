"""A protocol plugin registered by a test: its own route creates a charge on the shared core, and
its own notification format is posted to a real receiver on loopback and acknowledged by its own
rule. Also: the credentials endpoint, protocols enabled by name, and prefixes each protocol owns."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from aiohttp import web
from channel_simulator import operations
from channel_simulator.accounts import MerchantAccount
from channel_simulator.app import PROTOCOLS, build_app
from channel_simulator.edge import JsonError, lose_answer, sandbox_of
from channel_simulator.harness import LoopThread, RunningSimulator, start_simulator
from channel_simulator.operations import ChargeRequest, Fate, Refused
from channel_simulator.protocols.base import Notice, PaymentNotice, Protocol, ProtocolRegistry
from channel_simulator.protocols.simpay import SimpayProtocol
from channel_simulator.sandbox import Sandbox
from paykit.money import Money

from services.channel_simulator.tests.integration.support import (
    HTTP_TIMEOUT_S,
    KEY,
    SimClient,
    eventually,
    new_no,
)

ACCOUNTS = ("ACC-1", "ACC-2")
TOY_ACK = b"TOY-OK"


class ToyProtocol(Protocol):
    """A made-up channel: bearer tokens, JSON orders in cents, form-encoded HMAC-signed callbacks,
    acknowledged by HTTP 202 and the body TOY-OK (simpay's "200 success" does not count)."""

    name = "toy"
    prefix = "/toy"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        # Generated at start-up, like a real protocol's sandbox keys.
        self.tokens = {account_id: secrets.token_hex(16) for account_id in sandbox.merchants}
        for account_id in sandbox.merchants:
            sandbox.register_merchant(self.name, f"toy-{account_id.lower()}", account_id)

    def _toy_id(self, account_id: str) -> str:
        found = self.sandbox.protocol_merchant_id(self.name, account_id)
        assert found is not None
        return found

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post("/toy/orders", self.create_order)]

    async def create_order(self, request: web.Request) -> web.Response:
        toy_id, _, token = request.headers.get("Authorization", "").removeprefix("Toy ").partition(":")
        merchant = sandbox_of(request).merchant_for(self.name, toy_id)
        if merchant is None or not hmac.compare_digest(token, self.tokens[merchant.merchant_id]):
            raise JsonError(401, {"problem": "who are you"})
        data = await request.json()
        try:
            ask = ChargeRequest.with_directives(
                data["order"], Money(data["cents"], data["currency"]), data["callback"], data.get("memo", "")
            )
            outcome = await operations.create_charge(sandbox_of(request), merchant, self.name, ask)
        except Refused as exc:
            raise JsonError(422, {"problem": exc.code}) from exc
        if outcome.fate in (Fate.LOST, Fate.ANSWER_LOST):
            return await lose_answer(request, merchant)
        if outcome.shown is None:
            return web.json_response({"state": "refused"}, status=402)
        return web.json_response({"state": outcome.shown.status.value.lower(), "ref": outcome.shown.trade_no})

    def credentials(self, merchants: Sequence[MerchantAccount]) -> dict[str, Any]:
        return {self._toy_id(m.merchant_id): self.tokens[m.merchant_id] for m in merchants}

    def format_notification(self, notice: Notice) -> bytes:
        assert isinstance(notice, PaymentNotice), "the toy channel only charges"
        trade = notice.trade
        assert trade.amount is not None
        fields = {
            "event": "paid",
            "order": trade.out_trade_no,
            "cents": trade.amount.minor,
            "ref": trade.trade_no,
        }
        return urlencode(fields).encode()

    def sign_notification(self, notice: Notice, url: str, body: bytes, now_s: float) -> dict[str, str]:
        token = self.tokens[notice.merchant.merchant_id]
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Toy-Merchant": self._toy_id(notice.merchant.merchant_id),
            "X-Toy-Signature": hmac.new(token.encode(), body, hashlib.sha256).hexdigest(),
        }

    def is_acknowledged(self, status: int, body: bytes) -> bool:
        return status == 202 and body == TOY_ACK


@dataclass(frozen=True)
class Callback:
    form: dict[str, list[str]]
    merchant: str
    signature: str
    body: bytes


class ToyMerchant:
    """The merchant's callback endpoint: answers simpay's ack first (which must not count), then the toy's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.callbacks: list[Callback] = []
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.receive)
        return app

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        callback = Callback(
            parse_qs(body.decode()),
            request.headers["X-Toy-Merchant"],
            request.headers["X-Toy-Signature"],
            body,
        )
        with self.lock:
            self.callbacks.append(callback)
            first = len(self.callbacks) == 1
        if first:
            return web.Response(text="success")
        return web.Response(status=202, body=TOY_ACK)

    def received(self) -> list[Callback]:
        with self.lock:
            return list(self.callbacks)


@pytest.fixture(scope="module")
def toy_simulator(loop_thread: LoopThread) -> Iterator[RunningSimulator]:
    registry = PROTOCOLS.copy()
    registry.register(ToyProtocol.name, ToyProtocol)
    simulator = loop_thread.run(start_simulator(ACCOUNTS, KEY, seed=5, registry=registry))
    try:
        yield simulator
    finally:
        loop_thread.run(simulator.stop())


@pytest.fixture
def toy_merchant(loop_thread: LoopThread) -> Iterator[ToyMerchant]:
    merchant = ToyMerchant()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(merchant.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop_thread.run(start())
    merchant.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield merchant
    finally:
        loop_thread.run(runner.cleanup())


def _http(url: str, payload: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_credentials_of_every_protocol_are_served_per_merchant(toy_simulator: RunningSimulator) -> None:
    status, everyone = _http(toy_simulator.base_url + "/v1/admin/sandbox-credentials")
    assert status == 200 and set(everyone) == {*PROTOCOLS.names(), "toy"}
    assert everyone["simpay"] == {"merchant_ids": list(ACCOUNTS), "secret": KEY.decode()}
    assert set(everyone["toy"]) == {"toy-acc-1", "toy-acc-2"}
    status, one = _http(toy_simulator.base_url + "/v1/admin/sandbox-credentials?merchant=ACC-2")
    assert status == 200 and one["simpay"]["merchant_ids"] == ["ACC-2"]
    assert one["toy"] == {"toy-acc-2": everyone["toy"]["toy-acc-2"]}
    status, unknown = _http(toy_simulator.base_url + "/v1/admin/sandbox-credentials?merchant=NOPE")
    assert (status, unknown["error"]) == (404, "UNKNOWN_MERCHANT")


def test_a_plugged_in_protocol_charges_through_its_route_and_is_notified_and_acked_its_own_way(
    toy_simulator: RunningSimulator, toy_merchant: ToyMerchant
) -> None:
    tokens = _http(toy_simulator.base_url + "/v1/admin/sandbox-credentials")[1]["toy"]
    order = new_no("ord")
    charge = {
        "order": order,
        "cents": 1999,
        "currency": "CNY",
        "callback": toy_merchant.base_url + "/hook",
        "memo": "sim:pay_delay=0",
    }
    status, answer = _http(
        toy_simulator.base_url + "/toy/orders",
        charge,
        {"Authorization": f"Toy toy-acc-1:{tokens['toy-acc-1']}"},
    )
    assert (status, answer["state"]) == (200, "pending")

    # The first callback is answered "200 success", which is simpay's ack, not the toy's: sent again.
    eventually(lambda: len(toy_merchant.received()) == 2, "the callback and its retry")
    for callback in toy_merchant.received():
        assert callback.form == {
            "event": ["paid"],
            "order": [order],
            "cents": ["1999"],
            "ref": [answer["ref"]],
        }
        assert callback.merchant == "toy-acc-1"
        expected = hmac.new(tokens["toy-acc-1"].encode(), callback.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(callback.signature, expected)

    sim = SimClient(toy_simulator.base_url)

    def trade() -> dict[str, Any]:
        return next(t for t in sim.trades("ACC-1") if t["out_trade_no"] == order)

    assert (trade()["protocol"], trade()["status"], trade()["amount"]) == ("toy", "SUCCESS", "19.99")
    eventually(lambda: trade()["notifications_acked"] == 1, "the toy ack to count")
    assert trade()["notifications_sent"] == 2
    # The toy's trade is not simpay's: simpay keeps its own numbers at the shared account.
    assert sim.query(order, "ACC-1").body == {"result": "NOT_FOUND"}


def test_a_plugged_in_protocol_refuses_a_stranger_and_answers_refusals_in_its_format(
    toy_simulator: RunningSimulator, toy_merchant: ToyMerchant
) -> None:
    charge = {
        "order": new_no("ord"),
        "cents": 100,
        "currency": "CNY",
        "callback": toy_merchant.base_url + "/hook",
    }
    status, answer = _http(
        toy_simulator.base_url + "/toy/orders", charge, {"Authorization": "Toy toy-acc-1:wrong"}
    )
    assert (status, answer) == (401, {"problem": "who are you"})
    tokens = _http(toy_simulator.base_url + "/v1/admin/sandbox-credentials")[1]["toy"]
    auth = {"Authorization": f"Toy toy-acc-2:{tokens['toy-acc-2']}"}
    status, answer = _http(toy_simulator.base_url + "/toy/orders", {**charge, "memo": "sim:nope"}, auth)
    assert (status, answer) == (422, {"problem": "INVALID_DIRECTIVE"})
    status, answer = _http(toy_simulator.base_url + "/toy/orders", {**charge, "memo": "sim:decline"}, auth)
    assert (status, answer) == (402, {"state": "refused"})


def test_only_the_protocols_named_are_enabled(loop_thread: LoopThread) -> None:
    registry = PROTOCOLS.copy()
    registry.register(ToyProtocol.name, ToyProtocol)
    simulator = loop_thread.run(start_simulator(ACCOUNTS, KEY, protocols=["toy"], registry=registry))
    try:
        assert set(_http(simulator.base_url + "/v1/admin/sandbox-credentials")[1]) == {"toy"}
        status, answer = _http(simulator.base_url + "/v1/charges/anything")
        assert (status, answer["error"]) == (404, "NOT_FOUND")
    finally:
        loop_thread.run(simulator.stop())


class Trespasser(ToyProtocol):
    name = "trespasser"
    prefix = "/trespasser"

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.get("/v1/admin/everything", self.create_order)]


class Squatter(ToyProtocol):
    name = "squatter"
    prefix = "/v1/charges"


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (["nope"], "unknown protocols ['nope']"),
        (["toy", "toy"], "each once"),
        (["trespasser"], "outside /trespasser"),
        (["simpay", "squatter"], "share the prefix"),
    ],
)
def test_unknown_protocols_and_routes_outside_their_prefix_are_refused_at_build(
    names: list[str], fragment: str
) -> None:
    registry = ProtocolRegistry()
    for protocol in (ToyProtocol, Trespasser, Squatter):
        registry.register(protocol.name, protocol)
    registry.register(SimpayProtocol.name, SimpayProtocol)
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        build_app(ACCOUNTS, KEY, protocols=names, registry=registry)
