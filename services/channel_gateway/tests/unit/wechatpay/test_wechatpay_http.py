"""Real HTTP round trips against a fake WeChat Pay API v3 on 127.0.0.1 that checks our
Authorization with the vendor SDK's rsa_verify and signs its answers with the SDK's rsa_sign."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
from channel_gateway.adapters.connectors.wechatpay import build
from channel_gateway.adapters.connectors.wechatpay import connector as wechat_connector
from channel_gateway.adapters.connectors.wechatpay.connector import WechatPayConnector
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
from paykit.money import Money

from services.channel_gateway.tests.unit.wechatpay.support import (
    API_PATH,
    MCHID,
    FakeWechatPay,
    Scripted,
    config,
    keys,
    private_pem,
    run,
)

PAYMENT = "pay_01JD5Q8W3K7M2N4P6R8T0V2X4Z"
REFUND = "rfd_01JD5QA0000000000000000000"
NOTIFY = "https://gateway.example/webhooks/wechatpay-test"


PRICE = Money(1999, "CNY")


def _charge(amount: Money = PRICE, payment_id: str = PAYMENT) -> ChargeCommand:
    return ChargeCommand(payment_id, "ord_1", amount, "wechat_native", "一杯咖啡 coffee", NOTIFY)


def _refund(amount: int = 500, refund_id: str = REFUND) -> RefundCommand:
    return RefundCommand(
        refund_id, PAYMENT, "ord_1", Money(amount, "CNY"), Money(1999, "CNY"), "退货", NOTIFY
    )


def test_charge_sends_fen_and_answers_the_qr_code_as_pending() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        reply, raw = await connector.charge(_charge())
        assert reply.state is ChargeState.PENDING
        assert reply.pay_url == f"weixin://wxpay/bizpayurl?pr={PAYMENT[-8:]}"
        seen = server.seen[-1]
        # The SDK's verification of our Authorization passed, over the prefixed URL.
        assert seen.authorised and seen.url == f"{API_PATH}/v3/pay/transactions/native"
        assert seen.headers["Accept"] == "application/json" and seen.headers["User-Agent"]
        assert json.loads(seen.body) == {
            "appid": "wxd678efh567hg6787",
            "mchid": MCHID,
            "description": "一杯咖啡 coffee",
            "out_trade_no": PAYMENT,
            "notify_url": NOTIFY,
            "amount": {"total": 1999, "currency": "CNY"},
        }
        assert (raw.operation, raw.response_status, raw.request_body) == ("charge", 200, seen.body)

    run(scenario)


def test_query_reads_unpaid_paid_and_unknown_trades() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        missing, _ = await connector.query(PAYMENT)
        assert missing.state is ChargeState.NOT_FOUND
        await connector.charge(_charge())
        unpaid, _ = await connector.query(PAYMENT)
        assert (unpaid.state, unpaid.amount, unpaid.paid_at) == (
            ChargeState.PENDING,
            Money(1999, "CNY"),
            None,
        )
        server.pay(PAYMENT)
        paid, raw = await connector.query(PAYMENT)
        assert paid.state is ChargeState.SUCCEEDED and paid.amount == Money(1999, "CNY")
        assert paid.channel_trade_no == server.trades[PAYMENT].transaction_id
        assert paid.paid_at == datetime.fromisoformat("2026-11-25T18:00:05+08:00")
        assert server.seen[-1].url == f"{API_PATH}/v3/pay/transactions/out-trade-no/{PAYMENT}?mchid={MCHID}"
        assert raw.request_body == f"GET {server.seen[-1].url}"

    run(scenario)


def test_close_answers_closed_already_paid_and_never_received() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        await connector.charge(_charge())
        closed, raw = await connector.close(PAYMENT)
        assert closed.result is CloseResult.CLOSED and raw.response_status == 204
        assert json.loads(server.seen[-1].body) == {"mchid": MCHID}
        assert server.trades[PAYMENT].state == "CLOSED"
        never, _ = await connector.close("pay_01JD5Q8W3K7M2N4P6R8T0V2X99")
        assert never.result is CloseResult.CLOSED and "ORDER_NOT_EXIST" in never.message
        other = "pay_01JD5Q8W3K7M2N4P6R8T0V2X55"
        await connector.charge(_charge(payment_id=other))
        server.pay(other)
        paid, _ = await connector.close(other)
        assert paid.result is CloseResult.ALREADY_PAID

    run(scenario)


def test_refund_and_its_query_round_trip() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        await connector.charge(_charge())
        server.pay(PAYMENT)
        missing, _ = await connector.query_refund(REFUND, PAYMENT)
        assert missing.state is RefundState.NOT_FOUND
        accepted, _ = await connector.refund(_refund())
        assert (accepted.state, accepted.amount) == (RefundState.PROCESSING, Money(500, "CNY"))
        assert json.loads(server.seen[-1].body) == {
            "out_trade_no": PAYMENT,
            "out_refund_no": REFUND,
            "notify_url": NOTIFY,
            "amount": {"refund": 500, "total": 1999, "currency": "CNY"},
            "reason": "退货",
        }
        again, _ = await connector.refund(_refund())  # idempotent on out_refund_no
        assert again.channel_refund_no == accepted.channel_refund_no
        server.refunds[REFUND].status = "SUCCESS"
        done, _ = await connector.query_refund(REFUND, PAYMENT)
        assert done.state is RefundState.SUCCEEDED and done.refunded_at is not None
        server.refunds[REFUND].status = "ABNORMAL"
        stuck, _ = await connector.query_refund(REFUND, PAYMENT)
        assert (stuck.state, stuck.failure_code) == (RefundState.PROCESSING, "ABNORMAL")
        server.refunds[REFUND].status = "CLOSED"
        closed, _ = await connector.query_refund(REFUND, PAYMENT)
        assert (closed.state, closed.failure_code) == (RefundState.FAILED, "CLOSED")
        with pytest.raises(ChannelUnavailable, match="out_trade_no"):
            await connector.query_refund(REFUND, "pay_01JD5Q8W3K7M2N4P6R8T0V2X00")

    run(scenario)


def test_a_refund_number_the_channel_holds_for_another_amount_is_a_conflict() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        await connector.charge(_charge())
        server.pay(PAYMENT)
        await connector.refund(_refund(500))
        with pytest.raises(ChannelConflict, match="holds refund"):
            await connector.refund(_refund(600))

    run(scenario)


def test_download_statement_fetches_the_bill_and_checks_its_hash() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        statement, raw = await connector.download_statement(date(2026, 11, 25))
        assert (statement.day, statement.format, statement.content) == (
            date(2026, 11, 25),
            "wechatpay-trade-bill",
            server.bill,
        )
        tradebill, download = server.seen[-2:]
        assert tradebill.url == f"{API_PATH}/v3/bill/tradebill?bill_date=2026-11-25&bill_type=ALL"
        # The download is a signed request too (checked by the SDK's rsa_verify).
        assert download.authorised and download.url.startswith(f"{API_PATH}/v3/billdownload/file?token=")
        assert f"<{len(server.bill)} bytes, sha1 " in raw.response_body

        server.bill_hash = "0" * 40
        with pytest.raises(ChannelUnavailable, match="is not hash_value"):
            await connector.download_statement(date(2026, 11, 25))
        server.bill_hash = None
        server.download_url = "http://127.0.0.2:1/v3/billdownload/file?token=x"
        with pytest.raises(ChannelUnavailable, match="download_url is not on"):
            await connector.download_statement(date(2026, 11, 25))

    run(scenario)


CHARGE = ("POST", "/v3/pay/transactions/native")


@pytest.mark.parametrize(
    ("scripted", "kind"),
    [
        (Scripted(400, "PARAM_ERROR"), ChannelErrorKind.INVALID_REQUEST),
        (Scripted(400, "INVALID_REQUEST"), ChannelErrorKind.INVALID_REQUEST),
        (Scripted(401, "SIGN_ERROR", signed=False), ChannelErrorKind.AUTHENTICATION),
        (Scripted(403, "NO_AUTH"), ChannelErrorKind.AUTHENTICATION),
        (Scripted(400, "APPID_MCHID_NOT_MATCH"), ChannelErrorKind.AUTHENTICATION),
        (Scripted(404, "MCH_NOT_EXISTS"), ChannelErrorKind.AUTHENTICATION),
        (Scripted(429, "FREQUENCY_LIMITED"), ChannelErrorKind.RATE_LIMITED),
        (Scripted(429, "RATELIMIT_EXCEED", signed=False), ChannelErrorKind.RATE_LIMITED),
    ],
)
def test_refusals_map_through_the_error_table_keeping_the_raw_code(
    scripted: Scripted, kind: ChannelErrorKind
) -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        server.scripted[CHARGE] = scripted
        with pytest.raises(ChannelRefused) as refused:
            await connector.charge(_charge())
        assert (refused.value.kind, refused.value.channel_code) == (kind, scripted.code)
        assert refused.value.raw is not None and refused.value.raw.response_status == scripted.status

    run(scenario)


@pytest.mark.parametrize(
    "scripted",
    [
        Scripted(500, "SYSTEM_ERROR"),
        Scripted(503, "BANK_ERROR"),
        Scripted(400, "SYSTEM_ERROR"),
        Scripted(403, "SOMETHING_NEW"),
        # A decline or a closed trade must be signed to be believed.
        Scripted(403, "NOTENOUGH", signed=False),
        Scripted(400, "ORDER_CLOSED", signed=False),
    ],
)
def test_answers_that_prove_nothing_are_unknown_outcomes(scripted: Scripted) -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        server.scripted[CHARGE] = scripted
        with pytest.raises(ChannelUnavailable):
            await connector.charge(_charge())

    run(scenario)


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("NOTENOUGH", ChargeState.DECLINED),
        ("RULE_LIMIT", ChargeState.DECLINED),
        ("ORDER_CLOSED", ChargeState.CLOSED),
        ("ORDERPAID", ChargeState.PENDING),
    ],
)
def test_signed_charge_refusals_about_the_trade_become_charge_states(code: str, state: ChargeState) -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        server.scripted[CHARGE] = Scripted(403, code, "说明")
        reply, _ = await connector.charge(_charge())
        assert (reply.state, reply.decline_code, reply.decline_message) == (state, code, "说明")

    run(scenario)


def test_the_same_trade_number_with_other_parameters_is_a_conflict() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        await connector.charge(_charge())
        with pytest.raises(ChannelConflict, match=r"OUT_TRADE_NO_USED|another trade"):
            await connector.charge(_charge(Money(2000, "CNY")))

    run(scenario)


def test_a_declined_refund_fails_it_and_other_refusals_refuse() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        server.scripted[("POST", "/v3/refund/domestic/refunds")] = Scripted(403, "NOT_ENOUGH", "余额不足")
        failed, _ = await connector.refund(_refund())
        assert (failed.state, failed.failure_code) == (RefundState.FAILED, "NOT_ENOUGH")
        no_trade, _ = await connector.refund(_refund())  # the fake holds no such trade
        assert (no_trade.state, no_trade.failure_code) == (RefundState.FAILED, "RESOURCE_NOT_EXISTS")
        server.scripted[("POST", "/v3/refund/domestic/refunds")] = Scripted(429, "FREQUENCY_LIMITED")
        with pytest.raises(ChannelRefused) as refused:
            await connector.refund(_refund())
        assert refused.value.kind is ChannelErrorKind.RATE_LIMITED

    run(scenario)


@pytest.mark.parametrize("mode", ["rogue_key", "wrong_serial", "stale", "unsigned"])
def test_answers_not_signed_by_our_platform_key_are_never_trusted(mode: str) -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        await connector.charge(_charge())
        server.pay(PAYMENT)
        server.answer_mode = mode
        # A paid trade, a closed one, a declined charge: none of it believed when so signed.
        with pytest.raises(ChannelUnavailable, match=r"untrusted answer|unsigned"):
            await connector.query(PAYMENT)
        with pytest.raises(ChannelUnavailable, match=r"untrusted answer|unsigned"):
            await connector.close(PAYMENT)
        server.scripted[CHARGE] = Scripted(403, "NOTENOUGH")
        with pytest.raises(ChannelUnavailable):
            await connector.charge(_charge(payment_id="pay_01JD5Q8W3K7M2N4P6R8T0V2X11"))

    run(scenario)


def test_a_request_wechat_pay_cannot_authenticate_is_refused_as_authentication() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        # Another merchant key than the one WeChat Pay holds for us: 401 SIGN_ERROR, unsigned.
        rogue_key = private_pem(keys().rogue)
        stranger = build(
            "wechatpay-test", config(server.base_url + API_PATH, merchant_private_key_pem=rogue_key)
        )
        try:
            with pytest.raises(ChannelRefused) as refused:
                await stranger.query(PAYMENT)
        finally:
            await stranger.aclose()
        assert (refused.value.kind, refused.value.channel_code) == (
            ChannelErrorKind.AUTHENTICATION,
            "SIGN_ERROR",
        )
        assert not server.seen[-1].authorised

    run(scenario)


def test_requests_wechat_pay_would_refuse_are_never_sent() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        for command in (_charge(Money(1999, "USD")), _charge(Money(0, "CNY")), _charge(payment_id="p1")):
            with pytest.raises(ChannelRefused) as refused:
                await connector.charge(command)
            assert refused.value.channel_code == wechat_connector.NOT_SENT
        over = RefundCommand(REFUND, PAYMENT, "ord_1", Money(2000, "CNY"), Money(1999, "CNY"), "", NOTIFY)
        with pytest.raises(ChannelRefused, match="exceeds"):
            await connector.refund(over)
        assert server.seen == []

    run(scenario)


def test_payout_is_unsupported() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        with pytest.raises(ChannelRefused) as refused:
            await connector.payout(PayoutCommand("stl_1", "mch_1", Money(100, "CNY")))
        assert (refused.value.kind, refused.value.channel_code) == (
            ChannelErrorKind.INVALID_REQUEST,
            "UNSUPPORTED",
        )
        assert server.seen == []

    run(scenario)


def test_no_answer_is_an_unknown_outcome() -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        await server.stop()
        with pytest.raises(ChannelUnavailable) as unavailable:
            await connector.charge(_charge())
        assert unavailable.value.raw is not None and unavailable.value.raw.response_status == 0

    run(scenario)


def test_garbage_answers_are_unknown_outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(server: FakeWechatPay, connector: WechatPayConnector) -> None:
        original = server._answer

        def garbage(status: int, data: dict[str, Any] | None = None, signed: bool = True) -> Any:
            return original(status, {"unexpected": True} if data is not None else None, signed)

        monkeypatch.setattr(server, "_answer", garbage)
        with pytest.raises(ChannelUnavailable, match="unreadable answer"):
            await connector.charge(_charge())
        with pytest.raises(ChannelUnavailable, match="unreadable"):
            await connector.query(PAYMENT)

    run(scenario)
