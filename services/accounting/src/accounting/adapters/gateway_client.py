"""channel-gateway's Payout, as accounting sees it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc
from paykit.channel.v1 import channel_pb2, channel_pb2_grpc
from paykit.contracts.convert import money_to_proto
from paykit.grpckit import open_channel

from accounting.domain.settlement import Settlement

PAYOUT_DEADLINE_S = 10.0


class PayoutOutcome(enum.Enum):
    PAID = "PAID"
    FAILED = "FAILED"
    # No answer: the payout may or may not have happened; ask again (idempotent on the settlement id).
    NO_ANSWER = "NO_ANSWER"


@dataclass(frozen=True)
class PayoutAnswer:
    outcome: PayoutOutcome
    reference: str = ""
    detail: str = ""


_REFUSED_BEFORE_SENDING = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS}


class GatewayPayouts:
    def __init__(self, target: str) -> None:
        self._channel = open_channel(target)
        self._stub = channel_pb2_grpc.ChannelGatewayStub(self._channel)  # type: ignore[no-untyped-call]

    async def payout(self, settlement: Settlement) -> PayoutAnswer:
        request = channel_pb2.PayoutRequest(
            settlement_id=settlement.settlement_id,
            merchant_id=settlement.merchant_id,
            channel=settlement.channel,
            amount=money_to_proto(settlement.amount),
        )
        try:
            reply = await self._stub.Payout(request, timeout=PAYOUT_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _REFUSED_BEFORE_SENDING:
                return PayoutAnswer(PayoutOutcome.FAILED, detail=f"{exc.code().name}: {exc.details()}")
            return PayoutAnswer(PayoutOutcome.NO_ANSWER, detail=f"{exc.code().name}: {exc.details()}")
        if reply.status == channel_pb2.PAYOUT_STATE_PAID:
            return PayoutAnswer(PayoutOutcome.PAID, reference=reply.payout_reference)
        if reply.status == channel_pb2.PAYOUT_STATE_FAILED:
            return PayoutAnswer(PayoutOutcome.FAILED, detail=f"{reply.failure_code}: {reply.failure_message}")
        return PayoutAnswer(PayoutOutcome.NO_ANSWER, detail=f"unexpected payout status {reply.status}")

    async def close(self) -> None:
        await self._channel.close()
