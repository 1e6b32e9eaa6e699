"""The gateway's own AlipayConnector, configured by alipay/sandbox.account_config from the
simulator's credentials endpoint, against the sandbox Alipay on loopback: every operation, the
notifications it verifies and acknowledges, and the trade bill reconciliation parses."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pytest
from aiohttp import web
from channel_gateway.adapters.connectors import alipay
from channel_gateway.adapters.connectors.alipay import sandbox
from channel_gateway.adapters.connectors.alipay.connector import AlipayConnector
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
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
    VerifiedNotification,
)
from channel_simulator.harness import LoopThread, RunningSimulator, start_simulator
from paykit.money import Money
from reconciliation.statements import alipay as alipay_bill

from services.channel_simulator.tests.integration.alipay_support import BEIJING, stranger_key
from services.channel_simulator.tests.integration.support import KEY, SimClient, eventually, new_no

ACCOUNT = "ALIPAY-MERCHANT-1"
STATEMENT_ACCOUNT = "ALIPAY-MERCHANT-2"
FEE_BPS = 60  # the sandbox bill's service fee (protocols/alipay/statement.py)
# The bill's summary line, in its own full-width punctuation (reconciliation/statements/alipay.py).
SUMMARY = "#交易合计：{}笔，退款合计：{}笔，订单金额（元）：{}，商家实收（元）：{}，服务费（元）：{}"  # noqa: RUF001


@dataclass
class Webhook:
    """The gateway's /webhooks/alipay in miniature: verify with the connector, answer its ack."""

    connector: AlipayConnector | None = None
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    verified: list[VerifiedNotification | AcknowledgedOnly] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        assert self.connector is not None
        body = await request.read()
        try:
            note = self.connector.verify_notification(request.path, dict(request.headers), body)
        except NotificationRejected as exc:
            with self.lock:
                self.rejected.append(exc.reason)
            status, text = self.connector.acknowledgement(False)
        else:
            with self.lock:
                self.verified.append(note)
            status, text = self.connector.acknowledgement(True)
        return web.Response(status=status, text=text)

    def about(self, payment_id: str) -> list[VerifiedNotification | AcknowledgedOnly]:
        with self.lock:
            return [n for n in self.verified if getattr(n, "payment_id", "") == payment_id]


@dataclass
class World:
    loop: LoopThread
    simulator: RunningSimulator
    sim: SimClient
    # Per account id, as GET /v1/admin/sandbox-credentials publishes them under "alipay".
    credentials: dict[str, dict[str, str]]
    connector: AlipayConnector
    webhook: Webhook

    def run(self, work: Any) -> Any:
        return self.loop.run(work)

    def charge(self, amount: str, subject: str = "sim:pay_delay=0") -> ChargeCommand:
        payment_id = new_no("pay")
        command = ChargeCommand(
            payment_id=payment_id,
            order_id="ord_" + payment_id,
            amount=Money.parse(amount, "CNY"),
            method="alipay_qr",
            subject=subject,
            notify_url=self.webhook.base_url + "/webhooks/alipay",
        )
        return command

    def refund(self, charge: ChargeCommand, amount: str) -> RefundCommand:
        return RefundCommand(
            refund_id=new_no("rfd"),
            payment_id=charge.payment_id,
            order_id=charge.order_id,
            amount=Money.parse(amount, "CNY"),
            payment_amount=charge.amount,
            reason="customer returned the goods",
            notify_url="",
        )

    def query_with(self, payment_id: str, **changes: str) -> Any:
        """A query by a connector whose config differs from the account's by `changes`."""
        config = sandbox.account_config(self.simulator.base_url, {**self.credentials[ACCOUNT], **changes})
        connector = alipay.build("alipay-sandbox", config)

        async def query() -> Any:
            try:
                return await connector.query(payment_id)
            finally:
                await connector.aclose()

        return self.run(query())

    def connector_for(self, account: str) -> AlipayConnector:
        config = sandbox.account_config(self.simulator.base_url, self.credentials[account])
        return alipay.build("alipay-sandbox", config)


@pytest.fixture(scope="module")
def world(loop_thread: LoopThread) -> Iterator[World]:
    simulator = loop_thread.run(start_simulator([ACCOUNT, STATEMENT_ACCOUNT], KEY, seed=3))
    sim = SimClient(simulator.base_url)
    status, everyone = sim.admin("/v1/admin/sandbox-credentials")
    assert status == 200
    credentials = everyone["alipay"]
    connector = alipay.build(
        "alipay-sandbox", sandbox.account_config(simulator.base_url, credentials[ACCOUNT])
    )
    webhook = Webhook(connector)

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/webhooks/alipay", webhook.receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop_thread.run(start())
    webhook.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield World(loop_thread, simulator, sim, credentials, connector, webhook)
    finally:
        loop_thread.run(connector.aclose())
        loop_thread.run(runner.cleanup())
        loop_thread.run(simulator.stop())


@pytest.fixture
def w(world: World) -> Iterator[World]:
    world.sim.configure({"hang_s": 30.0, "unavailable": False, "refund_decline_rate": 0.0})
    yield world
    world.sim.configure({"hang_s": 30.0, "unavailable": False, "refund_decline_rate": 0.0})


def beijing_day(moment: datetime) -> date:
    return moment.astimezone(BEIJING).date()


def test_a_charge_is_paid_notified_verified_acknowledged_and_queried(w: World) -> None:
    charge = w.charge("19.99", "咖啡 & cake sim:pay_delay=0")
    reply, raw = w.run(w.connector.charge(charge))
    assert reply.state is ChargeState.PENDING and reply.pay_url.startswith("alipaysim://qr/")
    assert raw.response_status == 200

    eventually(lambda: len(w.webhook.about(charge.payment_id)) == 1, "the payment notification")
    note = w.webhook.about(charge.payment_id)[0]
    assert isinstance(note, PaymentNotification) and note.succeeded
    assert note.amount == Money(1999, "CNY") and note.channel_trade_no
    trade = w.sim.trade(charge.payment_id, ACCOUNT)
    assert trade is not None
    eventually(lambda: w.sim.trade(charge.payment_id, ACCOUNT)["notifications_acked"] == 1, "the ack")  # type: ignore[index]
    assert w.sim.trade(charge.payment_id, ACCOUNT)["notifications_sent"] == 1  # type: ignore[index]

    found, _ = w.run(w.connector.query(charge.payment_id))
    assert found.state is ChargeState.SUCCEEDED
    assert (found.channel_trade_no, found.amount) == (note.channel_trade_no, Money(1999, "CNY"))
    assert found.paid_at is not None and abs((found.paid_at - note.occurred_at).total_seconds()) < 1
    assert not w.webhook.rejected


def test_refunds_and_their_queries_and_notifications(w: World) -> None:
    charge = w.charge("100.00")
    w.run(w.connector.charge(charge))
    eventually(lambda: w.run(w.connector.query(charge.payment_id))[0].state is ChargeState.SUCCEEDED, "paid")
    first = w.refund(charge, "30.00")
    reply, _ = w.run(w.connector.refund(first))
    assert reply.state is RefundState.SUCCEEDED and reply.refunded_at is not None
    asked, _ = w.run(w.connector.query_refund(first.refund_id, charge.payment_id))
    assert (asked.state, asked.amount) == (RefundState.SUCCEEDED, Money(3000, "CNY"))
    # Asked again with the same refund id: no money moves, so PROCESSING until the query confirms.
    again, _ = w.run(w.connector.refund(first))
    assert again.state is RefundState.PROCESSING
    unknown, _ = w.run(w.connector.query_refund(new_no("rfd"), charge.payment_id))
    assert unknown.state is RefundState.NOT_FOUND
    too_much, _ = w.run(w.connector.refund(w.refund(charge, "70.01")))
    assert (too_much.state, too_much.failure_code) == (RefundState.FAILED, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")

    def refund_notes() -> list[RefundNotification]:
        return [n for n in w.webhook.about(charge.payment_id) if isinstance(n, RefundNotification)]

    eventually(lambda: len(refund_notes()) == 1, "the refund notification")
    assert (refund_notes()[0].refund_id, refund_notes()[0].amount) == (first.refund_id, Money(3000, "CNY"))
    # The rest, in full: Alipay's TRADE_CLOSED refund notification, still a refund.
    rest = w.refund(charge, "70.00")
    assert w.run(w.connector.refund(rest))[0].state is RefundState.SUCCEEDED
    eventually(lambda: len(refund_notes()) == 2, "the second refund notification")
    # refund_fee is the trade's refunded total (Alipay's rule): 100.00, not this refund's 70.00.
    assert refund_notes()[1].refund_id == rest.refund_id and refund_notes()[1].amount == Money(10000, "CNY")
    assert w.run(w.connector.query(charge.payment_id))[0].state is ChargeState.SUCCEEDED
    assert not w.webhook.rejected


def test_close_of_an_unpaid_trade_and_of_a_paid_one(w: World) -> None:
    unpaid = w.charge("5.00", "sim:no_pay")
    assert w.run(w.connector.charge(unpaid))[0].state is ChargeState.PENDING
    assert w.run(w.connector.query(unpaid.payment_id))[0].state is ChargeState.PENDING
    assert w.run(w.connector.close(unpaid.payment_id))[0].result is CloseResult.CLOSED
    assert w.run(w.connector.query(unpaid.payment_id))[0].state is ChargeState.CLOSED
    assert w.run(w.connector.close(unpaid.payment_id))[0].result is CloseResult.CLOSED
    never = new_no("pay")
    assert w.run(w.connector.close(never))[0].result is CloseResult.CLOSED
    late = dataclasses.replace(w.charge("5.00"), payment_id=never)
    assert w.run(w.connector.charge(late))[0].state is ChargeState.CLOSED, (
        "a charge after its close takes nothing"
    )
    paid = w.charge("6.00")
    w.run(w.connector.charge(paid))
    eventually(lambda: w.run(w.connector.query(paid.payment_id))[0].state is ChargeState.SUCCEEDED, "paid")
    assert w.run(w.connector.close(paid.payment_id))[0].result is CloseResult.ALREADY_PAID
    assert w.run(w.connector.query(new_no("pay")))[0].state is ChargeState.NOT_FOUND


def test_declines_refusals_outages_and_lost_answers_reach_the_connector_as_alipays(w: World) -> None:
    declined, _ = w.run(w.connector.charge(w.charge("1.00", "sim:decline")))
    assert (declined.state, declined.decline_code) == (ChargeState.DECLINED, "ACQ.BEYOND_PAY_RESTRICTION")
    with pytest.raises(ChannelRefused) as bad:
        w.run(w.connector.charge(w.charge("1.00", "sim:typo")))
    assert (bad.value.kind, bad.value.channel_code) == (
        ChannelErrorKind.INVALID_REQUEST,
        "ACQ.INVALID_PARAMETER",
    )
    with pytest.raises(ChannelRefused) as stranger:
        w.query_with("anything", app_private_key_pem=stranger_key())
    assert (stranger.value.kind, stranger.value.channel_code) == (
        ChannelErrorKind.AUTHENTICATION,
        "isv.invalid-signature",
    )
    with pytest.raises(ChannelRefused) as unknown:
        w.query_with("anything", app_id="9021999999999999")
    assert unknown.value.channel_code == "isv.invalid-app-id"
    w.sim.configure({"unavailable": True})
    with pytest.raises(ChannelUnavailable, match="HTTP 503"):
        w.run(w.connector.query("anything"))
    w.sim.configure({"unavailable": False, "hang_s": 0.3})
    lost = w.charge("2.00", "sim:success_after_timeout sim:pay_delay=0")
    with pytest.raises(ChannelUnavailable):
        w.run(w.connector.charge(lost))
    eventually(lambda: w.run(w.connector.query(lost.payment_id))[0].state is ChargeState.SUCCEEDED, "paid")


def _fee_minor(amount_minor: int) -> int:
    """The bill's service fee: FEE_BPS of the amount, to the fen, halves up."""
    return (amount_minor * FEE_BPS + 5_000) // 10_000


def test_the_statement_the_connector_downloads_is_the_bill_reconciliation_parses(w: World) -> None:
    # An account of its own, so its bill holds exactly this test's lines.
    connector = w.connector_for(STATEMENT_ACCOUNT)
    try:
        _check_statement(w, connector)
    finally:
        w.run(connector.aclose())


def _paid(w: World, connector: AlipayConnector, charge: ChargeCommand) -> datetime:
    w.run(connector.charge(charge))
    eventually(lambda: w.run(connector.query(charge.payment_id))[0].state is ChargeState.SUCCEEDED, "paid")
    paid_at: datetime = w.run(connector.query(charge.payment_id))[0].paid_at
    return paid_at


def _check_statement(w: World, connector: AlipayConnector) -> None:
    dropped = w.charge("250.00", "sim:pay_delay=0 sim:drop_notify")
    notified = w.charge("10.00")
    unpaid = w.charge("7.00", "sim:no_pay")
    dropped_at, notified_at = _paid(w, connector, dropped), _paid(w, connector, notified)
    w.run(connector.charge(unpaid))
    w.run(connector.close(unpaid.payment_id))
    refund = w.refund(dropped, "50.00")
    refunded_at = w.run(connector.refund(refund))[0].refunded_at
    # A payment the channel invents: on its statement, never charged by us.
    invented, day = new_no("pay"), beijing_day(dropped_at)
    status, planted = w.sim.admin(
        f"/v1/admin/statement-extras?merchant={STATEMENT_ACCOUNT}",
        {"protocol": "alipay", "day": day.isoformat(), "kind": "PAYMENT", "out_trade_no": invented,
         "amount": "12.34", "currency": "CNY"},
    )  # fmt: skip
    assert status == 201, planted
    # (Beijing day, kind, our id, amount, fee); a test run across Beijing midnight spans two bills.
    expected = [
        (day, "PAYMENT", dropped.payment_id, 25000),
        (beijing_day(notified_at), "PAYMENT", notified.payment_id, 1000),
        (beijing_day(refunded_at), "REFUND", refund.refund_id, 5000),
        (day, "PAYMENT", invented, 1234),
    ]
    for bill_day in sorted({line[0] for line in expected}):
        statement, _ = w.run(connector.download_statement(bill_day))
        assert statement.format == "alipay-trade-bill" and statement.filename.endswith(
            f"{bill_day:%Y%m%d}.csv"
        )
        parsed = alipay_bill.parse(statement.content, statement.filename, "alipay-sandbox", bill_day)
        c = parsed.columns
        assert parsed.account == w.credentials[STATEMENT_ACCOUNT]["seller_id"]
        wanted = [line[1:] for line in expected if line[0] == bill_day]
        assert sorted(zip(c["kind"], c["our_id"], c["amount_minor"], strict=True)) == sorted(wanted)
        assert c["fee_minor"] == [_fee_minor(amount) for amount in c["amount_minor"]]
        # The summary line, checked against the lines by the parser, says what we expect too.
        payments = [a for kind, _, a in wanted if kind == "PAYMENT"]
        refunds = [a for kind, _, a in wanted if kind == "REFUND"]
        net = Money(sum(payments) - sum(refunds), "CNY").format()
        fees = Money(
            sum(_fee_minor(a) for a in refunds) - sum(_fee_minor(a) for a in payments), "CNY"
        ).format()
        summary = SUMMARY.format(len(payments), len(refunds), net, net, fees)
        assert summary in statement.content.decode("gbk")
    assert not w.webhook.about(dropped.payment_id), (
        "sim:drop_notify: never notified, on the bill all the same"
    )
    assert (
        w.sim.admin(f"/v1/admin/statement-extras?merchant={STATEMENT_ACCOUNT}")[1][0]["out_trade_no"]
        == invented
    )


def test_a_bill_of_a_day_not_begun_is_not_there_yet(w: World) -> None:
    tomorrow = date.fromordinal(beijing_day(datetime.now(BEIJING)).toordinal() + 1)
    with pytest.raises(ChannelRefused) as caught:
        w.run(w.connector.download_statement(tomorrow))
    assert (caught.value.kind, caught.value.channel_code) == (
        ChannelErrorKind.CHANNEL_UNAVAILABLE,
        "isp.bill_not_exist",
    )
