"""The gRPC edge: field-level INVALID_ARGUMENT, UNAVAILABLE for a channel outage, and the new RPCs
(refunds, close, payouts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from paykit.channel.v1 import channel_pb2, channel_pb2_grpc
from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.grpckit.errors import STATUS_DETAILS_KEY
from paykit.ids import IdKind, new_id

from services.channel_gateway.tests.integration.support import (
    CHANNEL_A,
    CHANNEL_B,
    MERCHANT_B,
    Stack,
    eventually,
)

CNY = "CNY"


def _call(stack: Stack, rpc: Callable[[channel_pb2_grpc.ChannelGatewayStub], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
            return await rpc(channel_pb2_grpc.ChannelGatewayStub(channel))

    return stack.loop.run(go())


def _violation(stack: Stack, rpc: Callable[[channel_pb2_grpc.ChannelGatewayStub], Awaitable[Any]]) -> str:
    """The field named by an INVALID_ARGUMENT answer."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _call(stack, rpc)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = dict(caught.value.trailing_metadata() or ())[STATUS_DETAILS_KEY]
    status = status_pb2.Status.FromString(details)
    bad_request = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad_request)
    return str(bad_request.field_violations[0].field)


def _refund_request(**changes: Any) -> channel_pb2.RefundRequest:
    fields: dict[str, Any] = {
        "refund_id": new_id(IdKind.REFUND),
        "payment_id": new_id(IdKind.PAYMENT),
        "order_id": new_id(IdKind.ORDER),
        "channel": CHANNEL_A,
        "amount": MoneyProto(minor=100, currency=CNY),
        "payment_amount": MoneyProto(minor=1_000, currency=CNY),
        "reason": "test",
    }
    fields.update(changes)
    return channel_pb2.RefundRequest(**fields)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"refund_id": ""}, "refund_id"),
        ({"payment_id": ""}, "payment_id"),
        ({"order_id": ""}, "order_id"),
        ({"channel": ""}, "channel"),
        ({"channel": "nowhere"}, "channel"),
        ({"amount": MoneyProto(minor=0, currency=CNY)}, "amount.minor"),
        ({"amount": MoneyProto(minor=-5, currency=CNY)}, "amount.minor"),
        ({"payment_amount": MoneyProto(minor=0, currency=CNY)}, "payment_amount.minor"),
        ({"amount": MoneyProto(minor=100, currency="USD")}, "amount.currency"),
        ({"amount": MoneyProto(minor=1_001, currency=CNY)}, "amount.minor"),
        ({"amount": MoneyProto(minor=100)}, "amount.currency"),
    ],
)
def test_refund_request_is_checked_field_by_field(stack: Stack, changes: dict[str, Any], field: str) -> None:
    assert _violation(stack, lambda stub: stub.Refund(_refund_request(**changes))) == field


def test_query_close_and_query_refund_require_their_ids_and_channel(stack: Stack) -> None:
    assert _violation(stack, lambda s: s.Query(channel_pb2.QueryRequest(payment_id="pay_1"))) == "channel"
    assert _violation(stack, lambda s: s.Close(channel_pb2.CloseRequest(channel=CHANNEL_A))) == "payment_id"
    assert _violation(stack, lambda s: s.Close(channel_pb2.CloseRequest(payment_id="pay_1"))) == "channel"
    no_refund = channel_pb2.QueryRefundRequest(payment_id="pay_1", channel=CHANNEL_A)
    assert _violation(stack, lambda s: s.QueryRefund(no_refund)) == "refund_id"


def test_charge_refund_query_refund_and_close_over_grpc(stack: Stack) -> None:
    payment_id, order_id = new_id(IdKind.PAYMENT), new_id(IdKind.ORDER)
    amount = MoneyProto(minor=2_000, currency=CNY)
    charged = _call(
        stack,
        lambda s: s.Charge(
            channel_pb2.ChargeRequest(
                payment_id=payment_id,
                order_id=order_id,
                channel=CHANNEL_A,
                amount=amount,
                subject="sim:out_of_order",
            )
        ),
    )
    assert charged.status == channel_pb2.CHARGE_STATUS_PENDING
    closed = _call(
        stack, lambda s: s.Close(channel_pb2.CloseRequest(payment_id=payment_id, channel=CHANNEL_A))
    )
    assert closed.result == channel_pb2.CLOSE_RESULT_ALREADY_PAID
    request = _refund_request(payment_id=payment_id, order_id=order_id, payment_amount=amount)
    refunded = _call(stack, lambda s: s.Refund(request))
    assert refunded.status == channel_pb2.REFUND_STATE_PROCESSING
    assert (refunded.amount.minor, refunded.amount.currency) == (100, CNY)
    query = channel_pb2.QueryRefundRequest(
        refund_id=request.refund_id, payment_id=payment_id, channel=CHANNEL_A
    )
    eventually(
        lambda: _call(stack, lambda s: s.QueryRefund(query)).status == channel_pb2.REFUND_STATE_SUCCEEDED,
        "the refund to succeed",
    )
    assert _call(stack, lambda s: s.QueryRefund(query)).refunded_at.seconds > 0


def test_channel_outage_is_unavailable(stack: Stack) -> None:
    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"unavailable": True})
    request = channel_pb2.CloseRequest(payment_id=new_id(IdKind.PAYMENT), channel=CHANNEL_B)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _call(stack, lambda s: s.Close(request))
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "HTTP 503" in (caught.value.details() or "")


def _payout_request(**changes: Any) -> channel_pb2.PayoutRequest:
    fields: dict[str, Any] = {
        "settlement_id": new_id(IdKind.SETTLEMENT),
        "merchant_id": "mch_grpc",
        "channel": CHANNEL_A,
        "amount": MoneyProto(minor=9_900, currency=CNY),
    }
    fields.update(changes)
    return channel_pb2.PayoutRequest(**fields)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"settlement_id": ""}, "settlement_id"),
        ({"merchant_id": ""}, "merchant_id"),
        ({"channel": ""}, "channel"),
        ({"channel": "nowhere"}, "channel"),
        ({"amount": MoneyProto(minor=0, currency=CNY)}, "amount.minor"),
        ({"amount": MoneyProto(minor=-100, currency=CNY)}, "amount.minor"),
        ({"amount": MoneyProto(minor=100)}, "amount.currency"),
        ({"amount": MoneyProto(minor=100, currency="XXY")}, "amount.currency"),
        ({"amount": None}, "amount.currency"),
    ],
)
def test_payout_request_is_checked_field_by_field_and_nothing_is_stored(
    stack: Stack, changes: dict[str, Any], field: str
) -> None:
    request = _payout_request(**changes)
    assert _violation(stack, lambda stub: stub.Payout(request)) == field
    if request.settlement_id:
        assert stack.rows("select 1 from payouts where settlement_id=:s", s=request.settlement_id) == []


def test_payout_over_grpc_is_paid_once_and_a_conflicting_repeat_is_already_exists(stack: Stack) -> None:
    request = _payout_request()
    paid = _call(stack, lambda s: s.Payout(request))
    assert paid.status == channel_pb2.PAYOUT_STATE_PAID and paid.payout_reference
    assert not paid.failure_code and not paid.failure_message
    assert _call(stack, lambda s: s.Payout(request)) == paid

    other = channel_pb2.PayoutRequest()
    other.CopyFrom(request)
    other.amount.minor += 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _call(stack, lambda s: s.Payout(other))
    assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert request.settlement_id in (caught.value.details() or "")


def test_declined_payout_over_grpc_is_failed_with_the_channel_code(stack: Stack) -> None:
    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"payout_decline_rate": 1.0})
    declined = _call(stack, lambda s: s.Payout(_payout_request(channel=CHANNEL_B)))
    assert declined.status == channel_pb2.PAYOUT_STATE_FAILED
    assert declined.failure_code == "PAYOUT_DECLINED" and declined.failure_message


def test_payout_during_an_outage_is_unavailable_over_grpc(stack: Stack) -> None:
    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"unavailable": True})
    request = _payout_request(channel=CHANNEL_B)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _call(stack, lambda s: s.Payout(request))
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"unavailable": False})
    assert _call(stack, lambda s: s.Payout(request)).status == channel_pb2.PAYOUT_STATE_PAID
