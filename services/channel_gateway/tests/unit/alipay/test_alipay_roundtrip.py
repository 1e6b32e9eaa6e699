"""Real HTTP round trips against a fake Alipay gateway on loopback that checks our signatures
with alipay-sdk-python and signs its answers with it: every operation, every error class, and
every untrustworthy answer (kept raw, never a state)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import pytest
from channel_gateway.adapters.connectors.alipay.connector import AlipayConnector
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

from services.channel_gateway.tests.unit.alipay.support import (
    FakeAlipay,
    Script,
    answer_with,
    connector_for,
    failed,
    fake_alipay,
    ok,
    signed_answer,
    stranger_keys,
)

T = TypeVar("T")
PRECREATE = "alipay.trade.precreate"
QUERY = "alipay.trade.query"
REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"
CLOSE = "alipay.trade.close"
BILL = "alipay.data.dataservice.bill.downloadurl.query"
CHARGE = ChargeCommand(
    "pay_1", "ord_1", Money(1999, "CNY"), "alipay_qr", "coffee", "https://gw/webhooks/alipay"
)
REFUND_CMD = RefundCommand("rfd_1", "pay_1", "ord_1", Money(500, "CNY"), Money(1999, "CNY"), "broken", "")


def run(scripts: dict[str, Script], exchange: Callable[[AlipayConnector, FakeAlipay], Awaitable[T]]) -> T:
    """Start the fake gateway with `scripts`, run `exchange` with a connector to it, stop both."""

    async def main() -> T:
        async with fake_alipay() as fake:
            fake.scripts.update(scripts)
            connector = connector_for(fake.url)
            try:
                return await exchange(connector, fake)
            finally:
                await connector.aclose()

    return asyncio.run(main())


def test_charge_returns_the_qr_code_of_a_precreated_trade() -> None:
    script = answer_with(PRECREATE, ok(out_trade_no="pay_1", qr_code="https://qr.alipay.com/bax01"))

    async def exchange(connector: AlipayConnector, fake: FakeAlipay) -> None:
        reply, raw = await connector.charge(CHARGE)
        assert (reply.state, reply.pay_url) == (ChargeState.PENDING, "https://qr.alipay.com/bax01")
        assert fake.biz["total_amount"] == "19.99" and fake.biz["out_trade_no"] == "pay_1"
        asked = fake.requests[-1]
        assert (asked["method"], asked["notify_url"], asked["app_id"]) == (
            PRECREATE, "https://gw/webhooks/alipay", "2021000000000001",
        )  # fmt: skip
        assert raw.response_status == 200 and "qr_code" in raw.response_body and "sign=" in raw.request_body

    run({PRECREATE: script}, exchange)


def test_query_refund_query_close_and_statement_round_trip() -> None:
    scripts = {
        QUERY: answer_with(QUERY, ok(out_trade_no="pay_1", trade_no="2026T1", trade_status="TRADE_SUCCESS",
                                     total_amount="19.99", send_pay_date="2026-03-01 11:00:00")),
        REFUND: answer_with(REFUND, ok(out_trade_no="pay_1", trade_no="2026T1", fund_change="Y",
                                       refund_fee="5.00")),
        REFUND_QUERY: answer_with(REFUND_QUERY, ok(out_trade_no="pay_1", out_request_no="rfd_1",
                                                   refund_amount="5.00", refund_status="REFUND_SUCCESS")),
        CLOSE: answer_with(CLOSE, ok(out_trade_no="pay_1", trade_no="2026T1")),
    }  # fmt: skip

    async def exchange(connector: AlipayConnector, fake: FakeAlipay) -> None:
        queried, _ = await connector.query("pay_1")
        assert (queried.state, queried.amount, queried.channel_trade_no) == (
            ChargeState.SUCCEEDED, Money(1999, "CNY"), "2026T1",
        )  # fmt: skip
        refunded, _ = await connector.refund(REFUND_CMD)
        assert refunded.state is RefundState.SUCCEEDED
        assert fake.biz == {"out_trade_no": "pay_1", "refund_amount": "5.00", "out_request_no": "rfd_1",
                            "refund_reason": "broken", "query_options": ["gmt_refund_pay"]}  # fmt: skip
        confirmed, _ = await connector.query_refund("rfd_1", "pay_1")
        assert (confirmed.state, confirmed.amount) == (RefundState.SUCCEEDED, Money(500, "CNY"))
        closed, _ = await connector.close("pay_1")
        assert closed.result is CloseResult.CLOSED
        fake.bill = b"PK\x03\x04 zipped GBK csv \xd6\xd0"
        fake.scripts[BILL] = answer_with(BILL, ok(bill_download_url=f"{fake.url}/bill/download?fileId=1"))
        statement, raw = await connector.download_statement(date(2026, 1, 1))
        assert (statement.content, statement.format, statement.day) == (
            fake.bill, "alipay-trade-bill", date(2026, 1, 1),
        )  # fmt: skip
        assert statement.filename == "20881_20260101.csv.zip" and raw.operation == "download_statement"
        assert fake.biz == {"bill_type": "trade", "bill_date": "2026-01-01"}

    run(scripts, exchange)


def test_answers_about_missing_trades_are_states_not_errors() -> None:
    scripts = {
        QUERY: answer_with(QUERY, failed("40004", "ACQ.TRADE_NOT_EXIST")),
        REFUND_QUERY: answer_with(REFUND_QUERY, ok(out_trade_no="pay_1", out_request_no="rfd_1")),
        CLOSE: answer_with(CLOSE, failed("40004", "ACQ.TRADE_NOT_EXIST")),
    }

    async def exchange(connector: AlipayConnector, _: FakeAlipay) -> None:
        assert (await connector.query("pay_1"))[0].state is ChargeState.NOT_FOUND
        assert (await connector.query_refund("rfd_1", "pay_1"))[0].state is RefundState.NOT_FOUND
        assert (await connector.close("pay_1"))[0].result is CloseResult.CLOSED

    run(scripts, exchange)


def test_closing_a_trade_no_longer_awaiting_payment_says_already_paid() -> None:
    script = answer_with(CLOSE, failed("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法"))

    async def exchange(connector: AlipayConnector, _: FakeAlipay) -> None:
        reply, raw = await connector.close("pay_1")
        assert reply.result is CloseResult.ALREADY_PAID and "ACQ.TRADE_STATUS_ERROR" in raw.response_body

    run({CLOSE: script}, exchange)


def test_business_refusals_are_reply_states() -> None:
    scripts = {
        PRECREATE: answer_with(PRECREATE, failed("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH")),
        REFUND: answer_with(REFUND, failed("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")),
    }

    async def exchange(connector: AlipayConnector, _: FakeAlipay) -> None:
        charged, _ = await connector.charge(CHARGE)
        assert (charged.state, charged.decline_code) == (ChargeState.DECLINED, "ACQ.BUYER_BALANCE_NOT_ENOUGH")
        refunded, _ = await connector.refund(REFUND_CMD)
        assert (refunded.state, refunded.failure_code) == (
            RefundState.FAILED,
            "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
        )

    run(scripts, exchange)


@pytest.mark.parametrize(
    ("node", "kind", "code"),
    [
        (failed("40002", "isv.invalid-app-id"), ChannelErrorKind.AUTHENTICATION, "isv.invalid-app-id"),
        (failed("40006", "isv.insufficient-isv-permissions"), ChannelErrorKind.AUTHENTICATION,
         "isv.insufficient-isv-permissions"),
        (failed("40002", "isv.invalid-timestamp"), ChannelErrorKind.INVALID_REQUEST, "isv.invalid-timestamp"),
        (failed("40004", "ACQ.INVALID_PARAMETER"), ChannelErrorKind.INVALID_REQUEST, "ACQ.INVALID_PARAMETER"),
        (failed("40004", "ACQ.ACCESS_FORBIDDEN"), ChannelErrorKind.AUTHENTICATION, "ACQ.ACCESS_FORBIDDEN"),
        (failed("40004", "aop.ACQ.SYSTEM_BUSY"), ChannelErrorKind.RATE_LIMITED, "aop.ACQ.SYSTEM_BUSY"),
        (failed("40001"), ChannelErrorKind.INVALID_REQUEST, "40001"),
    ],
)  # fmt: skip
def test_refusals_map_to_channel_error_kinds_keeping_the_raw_code(
    node: dict[str, Any], kind: ChannelErrorKind, code: str
) -> None:
    async def exchange(connector: AlipayConnector, _: FakeAlipay) -> None:
        with pytest.raises(ChannelRefused) as refused:
            await connector.query("pay_1")
        assert (refused.value.kind, refused.value.channel_code) == (kind, code)
        assert refused.value.raw is not None and code in refused.value.raw.response_body

    run({QUERY: answer_with(QUERY, node)}, exchange)


@pytest.mark.parametrize(
    "node",
    [
        failed("40004", "ACQ.SYSTEM_ERROR"),
        failed("20000", "isp.unknow-error"),
        failed("40004", "ACQ.TRADE_HAS_SUCCESS"),  # paid already: the query says for how much
        failed("40004", "ACQ.NEVER_HEARD_OF_IT"),
        failed("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH"),  # a charge's code answering a query: unread
    ],
)
def test_unknown_outcomes_are_channel_unavailable(node: dict[str, Any]) -> None:
    async def exchange(connector: AlipayConnector, _: FakeAlipay) -> None:
        with pytest.raises(ChannelUnavailable, match="outcome unknown") as unknown:
            await connector.query("pay_1")
        assert unknown.value.raw is not None and node["sub_code"] in unknown.value.raw.response_body

    run({QUERY: answer_with(QUERY, node)}, exchange)


def test_a_reused_number_is_a_conflict() -> None:
    async def exchange(connector: AlipayConnector, _: FakeAlipay) -> None:
        with pytest.raises(ChannelConflict, match=r"ACQ\.CONTEXT_INCONSISTENT"):
            await connector.charge(CHARGE)

    run({PRECREATE: answer_with(PRECREATE, failed("40004", "ACQ.CONTEXT_INCONSISTENT"))}, exchange)


def test_a_bill_not_yet_made_is_refused_as_unavailable() -> None:
    async def exchange(connector: AlipayConnector, _: FakeAlipay) -> None:
        with pytest.raises(ChannelRefused) as refused:
            await connector.download_statement(date(2026, 1, 1))
        assert (refused.value.kind, refused.value.channel_code) == (
            ChannelErrorKind.CHANNEL_UNAVAILABLE, "isp.bill_not_exist",
        )  # fmt: skip

    run({BILL: answer_with(BILL, failed("40004", "isp.bill_not_exist"))}, exchange)


def test_a_request_signed_with_the_wrong_app_key_is_an_authentication_refusal() -> None:
    async def main() -> None:
        async with fake_alipay() as fake:
            connector = connector_for(fake.url, app=stranger_keys())
            try:
                with pytest.raises(ChannelRefused) as refused:
                    await connector.query("pay_1")
            finally:
                await connector.aclose()
        assert (refused.value.kind, refused.value.channel_code) == (
            ChannelErrorKind.AUTHENTICATION, "isv.invalid-signature",
        )  # fmt: skip

    asyncio.run(main())


# -- answers that are not Alipay's word -----------------------------------------------------

PAID = ok(out_trade_no="pay_1", trade_no="T", trade_status="TRADE_SUCCESS", total_amount="19.99")


def _tampered(_biz: dict[str, Any]) -> tuple[int, str]:
    return 200, signed_answer(QUERY, PAID).replace('"19.99"', '"1999.00"')


def _unsigned_refusal(_biz: dict[str, Any]) -> tuple[int, str]:
    return (
        200,
        '{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}',
    )


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (answer_with(QUERY, PAID, keys=stranger_keys()), "untrusted answer"),
        (_tampered, "untrusted answer"),
        (_unsigned_refusal, "untrusted answer"),
        (lambda _b: (200, signed_answer(QUERY, PAID).replace('"sign":"', '"sign":"A')), "untrusted answer"),
        (lambda _b: (200, "<html>busy</html>"), "untrusted answer"),
        (lambda _b: (502, "bad gateway"), "HTTP 502"),
        (answer_with(QUERY, {**PAID, "total_amount": "12.345"}), "unreadable answer"),
        (answer_with(QUERY, {**PAID, "total_amount": "1e3"}), "unreadable answer"),
        (answer_with(QUERY, {**PAID, "total_amount": ""}), "unreadable answer"),
        (answer_with(QUERY, {**PAID, "out_trade_no": "pay_2"}), "unreadable answer"),
    ],
)
def test_untrustworthy_answers_change_nothing_and_keep_the_raw_exchange(script: Script, reason: str) -> None:
    async def exchange(connector: AlipayConnector, _: FakeAlipay) -> None:
        with pytest.raises(ChannelUnavailable, match=reason) as unknown:
            await connector.query("pay_1")
        raw = unknown.value.raw
        assert raw is not None and raw.operation == "query" and raw.response_body

    run({QUERY: script}, exchange)


def test_a_gateway_that_does_not_answer_is_channel_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    async def main() -> None:
        connector = connector_for(f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(ChannelUnavailable) as unknown:
                await connector.refund(REFUND_CMD)
        finally:
            await connector.aclose()
        assert unknown.value.raw is not None and unknown.value.raw.response_status == 0

    asyncio.run(main())


def test_what_alipay_cannot_take_is_refused_before_sending() -> None:
    async def exchange(connector: AlipayConnector, fake: FakeAlipay) -> None:
        usd = ChargeCommand("pay_2", "ord_2", Money(100, "USD"), "alipay_qr", "x", "")
        with pytest.raises(ChannelRefused) as refused:
            await connector.charge(usd)
        assert (refused.value.kind, refused.value.channel_code) == (
            ChannelErrorKind.INVALID_REQUEST, "UNSUPPORTED_CURRENCY",
        )  # fmt: skip
        with pytest.raises(ChannelRefused, match="UNSUPPORTED"):
            await connector.payout(PayoutCommand("stl_1", "mch_1", Money(100, "CNY")))
        assert fake.requests == []

    run({}, exchange)
