"""channel-gateway as seen from payment-core."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc
from paykit.channel.v1 import channel_pb2, channel_pb2_grpc
from paykit.contracts.convert import money_to_proto
from paykit.grpckit import open_channel

from payment_core.domain.payment import Payment

CHARGE_DEADLINE_S = 10.0


class ChargeOutcome(enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    # No answer (timeout, gateway down): the channel may or may not have the charge.
    NO_ANSWER = "NO_ANSWER"
    # Refused before anything was sent to the channel: no money can have moved.
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class ChargeAnswer:
    outcome: ChargeOutcome
    channel_trade_no: str = ""
    pay_url: str = ""
    code: str = ""
    message: str = ""


_STATUS = {
    channel_pb2.CHARGE_STATUS_PENDING: ChargeOutcome.PENDING,
    channel_pb2.CHARGE_STATUS_SUCCEEDED: ChargeOutcome.SUCCEEDED,
    channel_pb2.CHARGE_STATUS_DECLINED: ChargeOutcome.DECLINED,
}
# Codes that prove the gateway refused the request before talking to the channel.
_REJECTED_BEFORE_SENDING = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}


class ChannelGatewayClient:
    def __init__(self, target: str) -> None:
        self._channel = open_channel(target)
        self._stub = channel_pb2_grpc.ChannelGatewayStub(self._channel)  # type: ignore[no-untyped-call]

    async def charge(self, payment: Payment) -> ChargeAnswer:
        request = channel_pb2.ChargeRequest(
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            channel=payment.channel,
            amount=money_to_proto(payment.amount),
            method=payment.method,
            subject=payment.subject,
        )
        try:
            reply = await self._stub.Charge(request, timeout=CHARGE_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _REJECTED_BEFORE_SENDING:
                return ChargeAnswer(ChargeOutcome.REJECTED, code=exc.code().name, message=exc.details() or "")
            return ChargeAnswer(ChargeOutcome.NO_ANSWER, code=exc.code().name, message=exc.details() or "")
        outcome = _STATUS.get(reply.status, ChargeOutcome.NO_ANSWER)
        return ChargeAnswer(
            outcome,
            channel_trade_no=reply.channel_trade_no,
            pay_url=reply.pay_url,
            code=reply.decline_code,
            message=reply.decline_message,
        )

    async def close(self) -> None:
        await self._channel.close()
