"""The gateway's own WeChat Pay connector against the sandbox on loopback, configured the way the
local suite configures it (the seeder's pick of the published credentials, wechatpay.sandbox
account_config): a charge is paid and its callback verified and decrypted by the connector,
queried SUCCEEDED, refunded and the refund called back and queried; an unpaid one is closed;
a lost answer, an outage and a wrong key are what the connector expects; and the day's bill
downloads, matches its signed hash and parses in reconciliation with the right totals."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from channel_gateway.adapters.connectors.wechatpay import build
from channel_gateway.adapters.connectors.wechatpay.connector import WechatPayConnector
from channel_gateway.adapters.connectors.wechatpay.sandbox import account_config
from channel_gateway.domain.channel import (
    ChannelErrorKind,
    ChannelRefused,
    ChannelUnavailable,
    ChargeCommand,
    ChargeState,
    CloseResult,
    NotificationRejected,
    PaymentNotification,
    RefundCommand,
    RefundNotification,
    RefundState,
)
from channel_gateway.entrypoints.sandbox_accounts import one_account
from channel_simulator.harness import LoopThread, RunningSimulator, start_simulator
from channel_simulator.protocols.wechatpay.keys import private_pem
from cryptography.hazmat.primitives.asymmetric import rsa
from paykit.money import Money
from reconciliation.statements.wechatpay import parse

from services.channel_simulator.tests.integration.support import SimClient, eventually
from services.channel_simulator.tests.integration.wechatpay_support import (
    new_number,
    published_credentials,
)

# The seeder configures the first account in sorted order: WX-A.
ACCOUNTS = ("WX-B", "WX-A")
KEY = b"wechatpay-gateway-test"
CHINA = timezone(timedelta(hours=8))


@dataclass
class Webhook:
    """The gateway's webhook in miniature: the connector verifies every callback and answers."""

    connector: WechatPayConnector | None = None
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    taken: list[Any] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        if self.connector is None:
            raise RuntimeError("no connector yet")
        body = await request.read()
        try:
            found = self.connector.verify_notification(request.path, dict(request.headers), body)
        except NotificationRejected as exc:
            with self.lock:
                self.rejected.append(exc.reason)
            status, text = self.connector.acknowledgement(False)
            return web.Response(status=status, text=text)
        with self.lock:
            self.taken.append(found)
        status, text = self.connector.acknowledgement(True)
        return web.Response(status=status, text=text)

    def found(self, kind: type[Any], number: str) -> list[Any]:
        """The verified callbacks of `kind` about payment or refund `number`."""

        def about(note: Any) -> bool:
            return number in (getattr(note, "payment_id", ""), getattr(note, "refund_id", ""))

        with self.lock:
            return [note for note in self.taken if isinstance(note, kind) and about(note)]


@dataclass
class World:
    loop: LoopThread
    simulator: RunningSimulator
    connector: WechatPayConnector
    webhook: Webhook
    config: dict[str, Any]

    def run(self, work: Any) -> Any:
        return self.loop.run(work)

    @property
    def notify_url(self) -> str:
        return self.webhook.base_url + "/webhooks/wechatpay"

    def charge_command(self, minor: int, subject: str = "") -> ChargeCommand:
        return ChargeCommand(
            payment_id=new_number(),
            order_id=f"ord_{uuid.uuid4().hex[:12]}",
            amount=Money(minor, "CNY"),
            method="wechat_native",
            subject=f"一杯茶 {subject}".strip(),
            notify_url=self.notify_url,
        )


@pytest.fixture(scope="module")
def world(loop_thread: LoopThread) -> Iterator[World]:
    webhook = Webhook()

    async def start() -> tuple[RunningSimulator, web.AppRunner]:
        simulator = await start_simulator(ACCOUNTS, KEY, protocols=["simpay", "wechatpay"])
        app = web.Application()
        app.router.add_post("/webhooks/{channel}", webhook.receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return simulator, runner

    simulator, runner = loop_thread.run(start())
    webhook.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    config = account_config(simulator.base_url, one_account(published_credentials(simulator.base_url)))
    connector = build("wechatpay", config)
    webhook.connector = connector
    try:
        yield World(loop_thread, simulator, connector, webhook, config)
    finally:
        loop_thread.run(connector.aclose())
        loop_thread.run(runner.cleanup())
        loop_thread.run(simulator.stop())


@pytest.fixture
def admin(world: World) -> Iterator[SimClient]:
    client = SimClient(world.simulator.base_url, KEY)
    yield client
    client.configure({"unavailable": False, "hang_s": 30.0})


def test_the_seeder_configures_the_first_account_with_its_mchid(world: World) -> None:
    published = published_credentials(world.simulator.base_url)["merchants"]
    assert world.config["mchid"] == published["WX-A"]["mchid"]
    assert world.config["api_base_url"] == world.simulator.base_url + "/wechatpay"


def test_charge_pay_callback_query_refund_and_the_day_s_bill_through_the_connector(world: World) -> None:
    command = world.charge_command(1999, "sim:pay_delay=0")
    reply, raw = world.run(world.connector.charge(command))
    assert reply.state is ChargeState.PENDING and reply.pay_url.startswith("weixin://"), raw

    eventually(lambda: world.webhook.found(PaymentNotification, command.payment_id), "the payment callback")
    [paid] = world.webhook.found(PaymentNotification, command.payment_id)
    assert paid.succeeded and paid.amount == Money(1999, "CNY") and paid.channel_trade_no

    query, _ = world.run(world.connector.query(command.payment_id))
    assert query.state is ChargeState.SUCCEEDED and query.amount == Money(1999, "CNY")
    assert query.channel_trade_no == paid.channel_trade_no
    assert query.paid_at == paid.occurred_at

    refund = RefundCommand(
        refund_id=new_number("rfd"),
        payment_id=command.payment_id,
        order_id=command.order_id,
        amount=Money(500, "CNY"),
        payment_amount=command.amount,
        reason="退货",
        notify_url=world.notify_url,
    )
    refunded, raw = world.run(world.connector.refund(refund))
    assert refunded.state is RefundState.PROCESSING and refunded.channel_refund_no, raw
    eventually(lambda: world.webhook.found(RefundNotification, refund.refund_id), "the refund callback")
    [called_back] = world.webhook.found(RefundNotification, refund.refund_id)
    assert called_back.succeeded and called_back.channel_refund_no == refunded.channel_refund_no
    settled, _ = world.run(world.connector.query_refund(refund.refund_id, command.payment_id))
    assert (settled.state, settled.amount) == (RefundState.SUCCEEDED, Money(500, "CNY"))
    assert world.webhook.rejected == []

    day = paid.occurred_at.astimezone(CHINA).date()
    statement, raw = world.run(world.connector.download_statement(day))
    assert statement.format == "wechatpay-trade-bill", raw
    parsed = parse(statement.content, statement.filename, "wechatpay", day)
    c = parsed.columns
    assert parsed.account == world.config["mchid"]
    ours = {our_id: i for i, our_id in enumerate(c["our_id"])}
    pay_line, refund_line = ours[command.payment_id], ours[refund.refund_id]
    assert (c["kind"][pay_line], c["channel_txn_id"][pay_line]) == ("PAYMENT", paid.channel_trade_no)
    assert (c["amount_minor"][pay_line], c["fee_minor"][pay_line]) == (1999, 12)
    assert (c["kind"][refund_line], c["channel_txn_id"][refund_line]) == (
        "REFUND",
        refunded.channel_refund_no,
    )
    assert (c["amount_minor"][refund_line], c["fee_minor"][refund_line]) == (500, 3)
    # The parser checked the summary against the lines; here, the lines against the sandbox's records.
    paid_total, refunded_total = day_totals(SimClient(world.simulator.base_url, KEY).trades("WX-A"), day)
    kinds = list(zip(c["kind"], c["amount_minor"], strict=True))
    assert sum(minor for kind, minor in kinds if kind == "PAYMENT") == paid_total
    assert sum(minor for kind, minor in kinds if kind == "REFUND") == refunded_total


def day_totals(trades: list[dict[str, Any]], day: date) -> tuple[int, int]:
    """What the sandbox holds as paid and refunded through wechatpay on `day` (China time), in fen."""

    def on_day(moment: str | None) -> bool:
        return moment is not None and datetime.fromisoformat(moment).astimezone(CHINA).date() == day

    def fen(amount: str) -> int:
        return Money.parse(amount, "CNY").minor

    mine = [t for t in trades if t["protocol"] == "wechatpay"]
    paid = sum(fen(t["amount"]) for t in mine if t["status"] == "SUCCESS" and on_day(t["paid_at"]))
    refunded = sum(
        fen(r["amount"])
        for t in mine
        for r in t["refunds"]
        if r["status"] == "SUCCESS" and on_day(r["refunded_at"])
    )
    return paid, refunded


def test_an_unpaid_charge_closes_and_a_paid_one_answers_already_paid(world: World) -> None:
    unpaid = world.charge_command(300, "sim:no_pay")
    assert world.run(world.connector.charge(unpaid))[0].state is ChargeState.PENDING
    closed, raw = world.run(world.connector.close(unpaid.payment_id))
    assert closed.result is CloseResult.CLOSED, raw
    assert world.run(world.connector.query(unpaid.payment_id))[0].state is ChargeState.CLOSED
    never, _ = world.run(world.connector.close(new_number()))
    assert never.result is CloseResult.CLOSED and "ORDER_NOT_EXIST" in never.message

    paid = world.charge_command(300, "sim:pay_delay=0")
    world.run(world.connector.charge(paid))
    eventually(
        lambda: world.run(world.connector.query(paid.payment_id))[0].state is ChargeState.SUCCEEDED, "payment"
    )
    assert world.run(world.connector.close(paid.payment_id))[0].result is CloseResult.ALREADY_PAID


def test_a_lost_answer_is_unavailable_and_the_retried_charge_finds_the_paid_trade(
    world: World, admin: SimClient
) -> None:
    admin.configure({"hang_s": 0.2}, "WX-A")
    command = world.charge_command(700, "sim:success_after_timeout")
    with pytest.raises(ChannelUnavailable):
        world.run(world.connector.charge(command))
    eventually(
        lambda: world.run(world.connector.query(command.payment_id))[0].state is ChargeState.SUCCEEDED,
        "the trade whose answer was lost to be paid",
    )
    # The gateway charges again with the same payment id: ORDERPAID, read as PENDING (a query tells).
    again, _ = world.run(world.connector.charge(command))
    assert again.state is ChargeState.PENDING and again.decline_code == "ORDERPAID"


def test_an_outage_is_unavailable_and_a_foreign_key_is_an_authentication_refusal(
    world: World, admin: SimClient
) -> None:
    admin.configure({"unavailable": True}, "WX-A")
    with pytest.raises(ChannelUnavailable):
        world.run(world.connector.query(new_number()))
    admin.configure({"unavailable": False}, "WX-A")

    stranger_key = private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    stranger = build("wechatpay", {**world.config, "merchant_private_key_pem": stranger_key})
    try:
        with pytest.raises(ChannelRefused) as refused:
            world.run(stranger.query(new_number()))
        assert (refused.value.kind, refused.value.channel_code) == (
            ChannelErrorKind.AUTHENTICATION,
            "SIGN_ERROR",
        )
    finally:
        world.run(stranger.aclose())


def test_a_declined_charge_is_declined_with_the_channel_s_code(world: World) -> None:
    reply, _ = world.run(world.connector.charge(world.charge_command(100, "sim:decline")))
    assert (reply.state, reply.decline_code) == (ChargeState.DECLINED, "RULE_LIMIT")
