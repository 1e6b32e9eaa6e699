"""The whole suite on each real channel protocol, chosen by routing: Alipay (RSA2), WeChat Pay
API v3 and the card acquirer (PaymentIntents), each played by the simulator with its own keys.
An order paid, partly refunded, and found on the channel's downloaded statement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import grpc
import pytest
from paykit.channel.v1 import channel_pb2, channel_pb2_grpc
from paykit.devstack.suite import CHANNEL_METHODS, Suite
from reconciliation.statements import parse_statement

from tests.e2e.helpers import (
    eventually,
    get_order,
    get_payment,
    new_order,
    order_status,
    pay,
    refund_order,
    refund_status_name,
    refunds_of,
    status_name,
    wait_order_status,
)

WAIT_S = 60.0
CHINA = timezone(timedelta(hours=8))
# The business day of each channel's statement (Alipay and WeChat Pay bill in China time).
ZONES = {"alipay": CHINA, "wechatpay": CHINA, "card": UTC}
FORMATS = {"alipay": "alipay-trade-bill", "wechatpay": "wechatpay-trade-bill", "card": "card-settlement-csv"}


def gateway(suite: Suite) -> channel_pb2_grpc.ChannelGatewayStub:
    channel = grpc.insecure_channel(suite.grpc_target("channel_gateway"))
    return channel_pb2_grpc.ChannelGatewayStub(channel)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("channel", sorted(CHANNEL_METHODS))
def test_an_order_is_paid_refunded_and_on_the_statement_of_each_real_channel(
    suite: Suite, channel: str
) -> None:
    order = new_order(suite, minor=8_800, subject=f"e2e {channel}", merchant_id=f"m-e2e-{channel}")
    paid = pay(suite, order.order_id, method=CHANNEL_METHODS[channel])
    wait_order_status(suite, order.order_id, "PAID")
    payment = get_payment(suite, paid.payment_id)
    assert payment.channel == channel and status_name(payment) == "SUCCEEDED"
    assert payment.channel_trade_no  # the channel's own number, learned from its answer or notification

    refund_order(suite, order.order_id, 800, f"e2e-{channel}-r1")
    eventually(
        lambda: [refund_status_name(r) for r in refunds_of(suite, order.order_id)] == ["SUCCEEDED"],
        f"the {channel} refund to succeed",
        WAIT_S,
    )
    eventually(
        lambda: order_status(suite, order.order_id) == "PARTIALLY_REFUNDED", "partially refunded", WAIT_S
    )
    assert get_order(suite, order.order_id).refunded_amount.minor == 800

    day = datetime.now(ZONES[channel]).date()
    stub = gateway(suite)
    statement = stub.DownloadStatement(
        channel_pb2.DownloadStatementRequest(channel=channel, day=day.isoformat()), timeout=30
    )
    assert statement.format == FORMATS[channel] and statement.size_bytes > 0
    again = stub.DownloadStatement(
        channel_pb2.DownloadStatementRequest(channel=channel, day=day.isoformat()), timeout=30
    )
    content = b"".join(
        chunk.data for chunk in stub.FetchStatement(
            channel_pb2.FetchStatementRequest(statement_id=statement.statement_id), timeout=30
        )
    )  # fmt: skip
    assert len(content) == statement.size_bytes
    parsed = parse_statement(statement.format, content, statement.filename, channel, day)
    columns = parsed.columns
    if channel == "card":
        # The acquirer settles in batches: our payment is inside one of the day's SALE lines.
        assert "PAYMENT" in columns["kind"] and "REFUND" in columns["kind"]
        assert (
            sum(a for a, k in zip(columns["amount_minor"], columns["kind"], strict=True) if k == "PAYMENT")
            >= 8_800
        )
    else:
        lines = [i for i, our in enumerate(columns["our_id"]) if our == paid.payment_id]
        assert len(lines) == 1, f"{paid.payment_id} once on the {channel} statement"
        assert columns["amount_minor"][lines[0]] == 8_800
        assert columns["channel_txn_id"][lines[0]] == payment.channel_trade_no
        rows = zip(columns["amount_minor"], columns["kind"], columns["reference"], strict=True)
        assert 800 in [a for a, k, ref in rows if k == "REFUND" and ref == paid.payment_id]
    same = "same" if again.statement_id == statement.statement_id else "NEW"
    print(
        f"\n{channel}: paid {payment.channel_trade_no}, refunded 8.00 of 88.00; "
        f"statement {statement.filename} {statement.size_bytes} bytes, {parsed.line_count} lines "
        f"({statement.format}); downloaded twice: {same} statement id"
    )
    assert again.statement_id == statement.statement_id  # same bytes: the same statement


def test_download_statement_bad_input_gets_a_field_message(suite: Suite) -> None:
    stub = gateway(suite)
    invalid, refused = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION
    cases = [
        (("alipay", "2026-13-01"), invalid, "day"),
        (("nope", "2026-11-01"), invalid, "unknown channel"),
        (("simulator", "2026-11-01"), refused, "UNSUPPORTED"),  # simpay offers no statement
    ]
    for (channel, day), code, text in cases:
        with pytest.raises(grpc.RpcError) as caught:
            stub.DownloadStatement(channel_pb2.DownloadStatementRequest(channel=channel, day=day), timeout=30)
        assert caught.value.code() == code and text in (caught.value.details() or ""), caught.value.details()
    with pytest.raises(grpc.RpcError) as missing:
        list(stub.FetchStatement(channel_pb2.FetchStatementRequest(statement_id="stm_nothing"), timeout=10))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
