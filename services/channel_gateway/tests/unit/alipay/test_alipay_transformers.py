"""Alipay's wire format read strictly: amounts convert exactly or are refused, each answer maps
to one state, each error code to one kind, and notifications say what they say or nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from channel_gateway.adapters.connectors.alipay import errors, transformers
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChannelErrorKind,
    ChargeCommand,
    ChargeState,
    CloseResult,
    NotificationRejected,
    RefundCommand,
    RefundNotification,
    RefundState,
)
from hypothesis import given
from hypothesis import strategies as st
from paykit.money import AmountError, CurrencyError, Money

CHARGE = ChargeCommand("pay_1", "ord_1", Money(1999, "CNY"), "alipay_qr", "", "https://gw/webhooks/alipay")
REFUND = RefundCommand("rfd_1", "pay_1", "ord_1", Money(500, "CNY"), Money(1999, "CNY"), "", "")
EXPECTED = transformers.Expected("2021000000000001", "", datetime(2026, 3, 1, 4, 0, tzinfo=UTC))


# -- money ----------------------------------------------------------------------------------


@given(st.integers(min_value=transformers.MIN_AMOUNT_MINOR, max_value=transformers.MAX_AMOUNT_MINOR))
def test_cny_amounts_round_trip_exactly_through_total_amount(minor: int) -> None:
    money = Money(minor, "CNY")
    text = transformers.amount_text(money)
    assert transformers.parse_amount(text, "total_amount") == money
    whole, _, fraction = text.partition(".")
    assert len(fraction) == 2 and int(whole + fraction) == minor


@pytest.mark.parametrize(
    "text",
    ["12.345", "1e3", "", "12.3", "12", "012.00", "+1.00", "-1.00", "1,000.00", " 1.00", "1.00 ", "0.00",
     "NaN", "Infinity", "\uff11.\uff10\uff10", "1.0e2", ".50", "5.", "100000000.01", 12.3, 1999, None],
)  # fmt: skip
def test_malformed_amounts_are_refused_never_rounded(text: Any) -> None:
    with pytest.raises(AmountError):
        transformers.parse_amount(text, "total_amount")


@given(st.text(max_size=24).filter(lambda s: not transformers._AMOUNT_SHAPE.fullmatch(s)))
def test_any_text_not_shaped_like_yuan_with_two_decimals_is_refused(text: str) -> None:
    with pytest.raises(AmountError):
        transformers.parse_amount(text, "total_amount")


@pytest.mark.parametrize(
    ("money", "error"),
    [
        (Money(100, "USD"), CurrencyError),
        (Money(0, "CNY"), AmountError),
        (Money(10**10 + 1, "CNY"), AmountError),
    ],
)
def test_amounts_alipay_cannot_take_are_never_sent(money: Money, error: type[Exception]) -> None:
    with pytest.raises(error):
        transformers.amount_text(money)


def test_timestamps_are_beijing_time() -> None:
    assert transformers.timestamp_text(datetime(2026, 12, 31, 16, 30, 5, tzinfo=UTC)) == "2027-01-01 00:30:05"
    assert transformers.parse_time("2015-04-28 15:45:57.320", "t") == datetime(
        2015, 4, 28, 7, 45, 57, 320_000, tzinfo=UTC
    )


# -- requests -------------------------------------------------------------------------------


def test_requests_carry_our_ids_as_alipay_keys() -> None:
    assert transformers.charge_call(CHARGE, "").biz["subject"] == "ord_1"  # subject is required
    refund = transformers.refund_call(REFUND)
    assert refund.method == "alipay.trade.refund"
    assert refund.biz == {
        "out_trade_no": "pay_1",
        "refund_amount": "5.00",
        "out_request_no": "rfd_1",
        "query_options": ["gmt_refund_pay"],
    }
    bill = transformers.bill_call(date(2026, 1, 2))
    assert bill.biz == {"bill_type": "trade", "bill_date": "2026-01-02"}


# -- answers --------------------------------------------------------------------------------


def _ok(**fields: Any) -> dict[str, Any]:
    return {"code": "10000", "msg": "Success", **fields}


def _failed(sub_code: str, code: str = "40004") -> dict[str, Any]:
    return {"code": code, "msg": "Business Failed", "sub_code": sub_code, "sub_msg": "no"}


PAID = _ok(
    out_trade_no="pay_1",
    trade_no="2026T1",
    trade_status="TRADE_SUCCESS",
    total_amount="19.99",
    send_pay_date="2026-03-01 11:00:00",
)


@pytest.mark.parametrize(
    ("node", "state"),
    [
        (PAID, ChargeState.SUCCEEDED),
        ({**PAID, "trade_status": "TRADE_FINISHED"}, ChargeState.SUCCEEDED),
        ({**PAID, "trade_status": "TRADE_CLOSED"}, ChargeState.SUCCEEDED),  # paid, then refunded in full
        ({**PAID, "trade_status": "TRADE_CLOSED", "send_pay_date": ""}, ChargeState.CLOSED),
        ({**PAID, "trade_status": "WAIT_BUYER_PAY", "send_pay_date": ""}, ChargeState.PENDING),
        (_failed("ACQ.TRADE_NOT_EXIST"), ChargeState.NOT_FOUND),
    ],
)
def test_query_answers_map_to_charge_states(node: dict[str, Any], state: ChargeState) -> None:
    assert transformers.query_reply(node, "pay_1").state is state


def test_a_paid_query_answer_carries_amount_and_time() -> None:
    reply = transformers.query_reply(PAID, "pay_1")
    assert (reply.channel_trade_no, reply.amount) == ("2026T1", Money(1999, "CNY"))
    assert reply.paid_at == datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "node",
    [
        {**PAID, "out_trade_no": "pay_2"},
        {**PAID, "out_trade_no": ""},
        {**PAID, "total_amount": "19.990"},
        {**PAID, "total_amount": 19.99},
        {key: value for key, value in PAID.items() if key != "total_amount"},
        {**PAID, "trade_status": "TRADE_PENDING"},
        {**PAID, "send_pay_date": "2026/03/01 11:00:00"},
        {"msg": "Success"},
    ],
)
def test_query_answers_we_cannot_trust_are_unreadable(node: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError, KeyError)):
        transformers.query_reply(node, "pay_1")


def test_charge_answers_map_to_states_or_refusals() -> None:
    pending = transformers.charge_reply(
        _ok(out_trade_no="pay_1", qr_code="https://qr.alipay.com/bax1"), CHARGE
    )
    assert (pending.state, pending.pay_url) == (ChargeState.PENDING, "https://qr.alipay.com/bax1")
    closed = transformers.charge_reply(_failed("ACQ.TRADE_HAS_CLOSE"), CHARGE)
    assert (closed.state, closed.decline_code) == (ChargeState.CLOSED, "ACQ.TRADE_HAS_CLOSE")
    declined = transformers.charge_reply(_failed("ACQ.TOTAL_FEE_EXCEED"), CHARGE)
    assert (declined.state, declined.decline_code) == (ChargeState.DECLINED, "ACQ.TOTAL_FEE_EXCEED")
    with pytest.raises(transformers.Refusal):
        transformers.charge_reply(_failed("ACQ.CONTEXT_INCONSISTENT"), CHARGE)
    with pytest.raises(ValueError, match="qr_code"):
        transformers.charge_reply(_ok(out_trade_no="pay_1"), CHARGE)


def test_refund_answers_map_to_refund_states() -> None:
    done = transformers.refund_reply(
        _ok(out_trade_no="pay_1", trade_no="2026T1", fund_change="Y", refund_fee="8.00",
            gmt_refund_pay="2026-03-01 12:00:01"),
        REFUND,
    )  # fmt: skip
    assert (done.state, done.amount) == (RefundState.SUCCEEDED, None)  # refund_fee is the trade's total
    assert done.refunded_at == datetime(2026, 3, 1, 4, 0, 1, tzinfo=UTC)
    again = transformers.refund_reply(_ok(out_trade_no="pay_1", fund_change="N", refund_fee="8.00"), REFUND)
    assert again.state is RefundState.PROCESSING
    refused = transformers.refund_reply(_failed("ACQ.SELLER_BALANCE_NOT_ENOUGH"), REFUND)
    assert (refused.state, refused.failure_code) == (RefundState.FAILED, "ACQ.SELLER_BALANCE_NOT_ENOUGH")
    with pytest.raises(ValueError, match="below this refund"):
        transformers.refund_reply(_ok(out_trade_no="pay_1", fund_change="Y", refund_fee="4.99"), REFUND)
    with pytest.raises(transformers.Refusal):
        transformers.refund_reply(_failed("ACQ.DISCORDANT_REPEAT_REQUEST"), REFUND)


def test_refund_query_answers_map_to_refund_states() -> None:
    found = transformers.refund_query_reply(
        _ok(out_trade_no="pay_1", out_request_no="rfd_1", trade_no="T", refund_amount="5.00",
            total_amount="19.99", refund_status="REFUND_SUCCESS"),
        "rfd_1", "pay_1",
    )  # fmt: skip
    assert (found.state, found.amount) == (RefundState.SUCCEEDED, Money(500, "CNY"))
    absent = transformers.refund_query_reply(
        _ok(out_trade_no="pay_1", out_request_no="rfd_1"), "rfd_1", "pay_1"
    )
    assert absent.state is RefundState.NOT_FOUND
    assert transformers.refund_query_reply(_failed("ACQ.TRADE_NOT_EXIST"), "rfd_1", "pay_1").state is (
        RefundState.NOT_FOUND
    )
    with pytest.raises(ValueError, match="rfd_2"):
        transformers.refund_query_reply(
            _ok(out_request_no="rfd_2", refund_status="REFUND_SUCCESS"), "rfd_1", "p"
        )


def test_close_answers_map_to_close_results() -> None:
    assert transformers.close_reply(_ok(out_trade_no="pay_1"), "pay_1").result is CloseResult.CLOSED
    assert transformers.close_reply(_failed("ACQ.TRADE_NOT_EXIST"), "pay_1").result is CloseResult.CLOSED
    paid = transformers.close_reply(_failed("ACQ.TRADE_STATUS_ERROR"), "pay_1")
    assert paid.result is CloseResult.ALREADY_PAID
    with pytest.raises(transformers.Refusal):
        transformers.close_reply(_failed("ACQ.SYSTEM_ERROR"), "pay_1")


# -- the error table ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "sub_code", "kind"),
    [
        ("20000", "isp.unknow-error", ChannelErrorKind.UNKNOWN_OUTCOME),
        ("40004", "ACQ.SYSTEM_ERROR", ChannelErrorKind.UNKNOWN_OUTCOME),
        ("40004", "ACQ.TRADE_HAS_SUCCESS", ChannelErrorKind.UNKNOWN_OUTCOME),
        ("40004", "ACQ.SOMETHING_NEW", ChannelErrorKind.UNKNOWN_OUTCOME),
        ("40002", "isv.invalid-signature", ChannelErrorKind.AUTHENTICATION),
        ("40002", "isv.invalid-app-id", ChannelErrorKind.AUTHENTICATION),
        ("40006", "isv.insufficient-isv-permissions", ChannelErrorKind.AUTHENTICATION),
        ("40006", "", ChannelErrorKind.AUTHENTICATION),
        ("40002", "isv.invalid-timestamp", ChannelErrorKind.INVALID_REQUEST),
        ("40001", "isv.missing-method", ChannelErrorKind.INVALID_REQUEST),
        ("40004", "ACQ.INVALID_PARAMETER", ChannelErrorKind.INVALID_REQUEST),
        ("40004", "aop.ACQ.SYSTEM_BUSY", ChannelErrorKind.RATE_LIMITED),
        ("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH", ChannelErrorKind.DECLINED),
        ("40004", "isp.bill_not_exist", ChannelErrorKind.CHANNEL_UNAVAILABLE),
        ("99999", "", ChannelErrorKind.UNKNOWN_OUTCOME),
    ],
)
def test_error_codes_map_to_kinds(code: str, sub_code: str, kind: ChannelErrorKind) -> None:
    error = errors.AlipayError(code, "msg", sub_code, "sub_msg")
    assert error.kind is kind
    assert error.channel_code == (sub_code or code)


# -- notifications --------------------------------------------------------------------------


def _notified(**changes: str) -> dict[str, str]:
    params = {
        "notify_id": "N1",
        "notify_time": "2026-03-01 12:00:00",
        "notify_type": "trade_status_sync",
        "app_id": "2021000000000001",
        "out_trade_no": "pay_1",
        "trade_no": "2026T1",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "19.99",
        "gmt_payment": "2026-03-01 11:59:00",
    }
    params.update(changes)
    return params


def test_a_refund_notification_names_our_refund() -> None:
    note = transformers.notification(
        _notified(out_biz_no="rfd_1", refund_fee="5.00", gmt_refund="2026-03-01 11:59:30.120"), EXPECTED
    )
    assert isinstance(note, RefundNotification) and note.succeeded
    assert (note.refund_id, note.payment_id, note.amount) == ("rfd_1", "pay_1", Money(500, "CNY"))
    assert note.occurred_at == datetime(2026, 3, 1, 3, 59, 30, 120_000, tzinfo=UTC)


def test_a_closed_trade_notification_is_acknowledged_without_an_outcome() -> None:
    # Closed unpaid: the close's own answer (or the query schedule) settles the payment.
    note = transformers.notification(
        _notified(trade_status="TRADE_CLOSED", gmt_payment="", gmt_close="2026-03-01 11:58:00"), EXPECTED
    )
    assert isinstance(note, AcknowledgedOnly) and note.channel_notify_id == "N1"


def test_a_refund_that_closes_the_trade_is_still_a_refund() -> None:
    # Refunded in full: Alipay says TRADE_CLOSED with the refund fields.
    refund = {"out_biz_no": "rfd_1", "refund_fee": "19.99", "gmt_refund": "2026-03-01 11:59:30"}
    note = transformers.notification(_notified(trade_status="TRADE_CLOSED", **refund), EXPECTED)
    assert isinstance(note, RefundNotification) and note.amount == Money(1999, "CNY")


def test_notify_time_is_fresh_for_25_hours_of_alipay_retries() -> None:
    transformers.notification(_notified(notify_time="2026-02-28 11:00:01"), EXPECTED)
    with pytest.raises(NotificationRejected, match="stale"):
        transformers.notification(_notified(notify_time="2026-02-28 10:59:59"), EXPECTED)
