"""channel-gateway as seen from payment-core."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from paykit.channel.v1 import channel_pb2, channel_pb2_grpc
from paykit.contracts.convert import from_timestamp, money_from_proto, money_to_proto
from paykit.grpckit import open_channel

from payment_core.domain.payment import ChannelResult, Payment
from payment_core.domain.refund import Refund, RefundAnswer, RefundResult

CHARGE_DEADLINE_S = 10.0
QUERY_DEADLINE_S = 10.0


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


class QueryOutcome(enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    # Declined or closed at the channel: it can no longer be paid.
    NOT_PAYABLE = "NOT_PAYABLE"
    NOT_FOUND = "NOT_FOUND"
    NO_ANSWER = "NO_ANSWER"


@dataclass(frozen=True)
class QueryAnswer:
    outcome: QueryOutcome
    result: ChannelResult | None = None
    detail: str = ""


class CloseOutcome(enum.Enum):
    CLOSED = "CLOSED"
    ALREADY_PAID = "ALREADY_PAID"
    NO_ANSWER = "NO_ANSWER"


class ChannelGatewayError(Exception):
    """The gateway could not be asked or did not answer; the channel's state is unknown."""


_CHARGE_STATUS = {
    channel_pb2.CHARGE_STATUS_PENDING: ChargeOutcome.PENDING,
    channel_pb2.CHARGE_STATUS_SUCCEEDED: ChargeOutcome.SUCCEEDED,
    channel_pb2.CHARGE_STATUS_DECLINED: ChargeOutcome.DECLINED,
    # The channel closed this trade before (our close after a lost request): it takes no money.
    channel_pb2.CHARGE_STATUS_CLOSED: ChargeOutcome.DECLINED,
}
_REFUND_STATE = {
    channel_pb2.REFUND_STATE_PROCESSING: RefundAnswer.PROCESSING,
    channel_pb2.REFUND_STATE_SUCCEEDED: RefundAnswer.SUCCEEDED,
    channel_pb2.REFUND_STATE_FAILED: RefundAnswer.FAILED,
    channel_pb2.REFUND_STATE_NOT_FOUND: RefundAnswer.NOT_FOUND,
}
# Codes that prove nothing was charged: the gateway refused the request before talking to
# the channel, or the channel refused it without acting (invalid, credentials, rate limit).
_REJECTED_BEFORE_SENDING = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


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
        outcome = _CHARGE_STATUS.get(reply.status, ChargeOutcome.NO_ANSWER)
        return ChargeAnswer(
            outcome,
            channel_trade_no=reply.channel_trade_no,
            pay_url=reply.pay_url,
            code=reply.decline_code,
            message=reply.decline_message,
        )

    async def query(self, payment: Payment) -> QueryAnswer:
        try:
            reply = await self._stub.Query(
                channel_pb2.QueryRequest(payment_id=payment.payment_id, channel=payment.channel),
                timeout=QUERY_DEADLINE_S,
            )
        except grpc.aio.AioRpcError as exc:
            return QueryAnswer(QueryOutcome.NO_ANSWER, detail=f"{exc.code().name}: {exc.details()}")
        match reply.status:
            case channel_pb2.CHARGE_STATUS_SUCCEEDED:
                if not reply.HasField("amount"):
                    return QueryAnswer(
                        QueryOutcome.NO_ANSWER, detail="channel reported success without amount"
                    )
                paid_at = from_timestamp(reply.paid_at) if reply.HasField("paid_at") else datetime.now(UTC)
                result = ChannelResult(
                    succeeded=True,
                    amount=money_from_proto(reply.amount, "amount"),
                    channel_trade_no=reply.channel_trade_no,
                    occurred_at=paid_at,
                    channel=payment.channel,
                )
                return QueryAnswer(QueryOutcome.SUCCEEDED, result)
            case channel_pb2.CHARGE_STATUS_PENDING:
                return QueryAnswer(QueryOutcome.PENDING)
            case channel_pb2.CHARGE_STATUS_DECLINED | channel_pb2.CHARGE_STATUS_CLOSED:
                return QueryAnswer(
                    QueryOutcome.NOT_PAYABLE, detail=channel_pb2.ChargeStatus.Name(reply.status)
                )
            case channel_pb2.CHARGE_STATUS_NOT_FOUND:
                return QueryAnswer(QueryOutcome.NOT_FOUND)
            case _:
                return QueryAnswer(QueryOutcome.NO_ANSWER, detail=f"unexpected status {reply.status}")

    async def close(self, payment: Payment) -> tuple[CloseOutcome, str]:
        try:
            reply = await self._stub.Close(
                channel_pb2.CloseRequest(payment_id=payment.payment_id, channel=payment.channel),
                timeout=QUERY_DEADLINE_S,
            )
        except grpc.aio.AioRpcError as exc:
            return CloseOutcome.NO_ANSWER, f"{exc.code().name}: {exc.details()}"
        if reply.result == channel_pb2.CLOSE_RESULT_CLOSED:
            return CloseOutcome.CLOSED, reply.message
        if reply.result == channel_pb2.CLOSE_RESULT_ALREADY_PAID:
            return CloseOutcome.ALREADY_PAID, reply.message
        return CloseOutcome.NO_ANSWER, f"unexpected close result {reply.result}"

    async def refund(self, refund: Refund, payment: Payment) -> RefundResult | None:
        """The channel's answer to a refund submit; None when it did not answer (submit again later)."""
        request = channel_pb2.RefundRequest(
            refund_id=refund.refund_id,
            payment_id=refund.payment_id,
            order_id=refund.order_id,
            channel=refund.channel,
            amount=money_to_proto(refund.amount),
            payment_amount=money_to_proto(payment.amount),
            reason=refund.reason,
        )
        try:
            reply = await self._stub.Refund(request, timeout=QUERY_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _REJECTED_BEFORE_SENDING:
                return RefundResult(
                    RefundAnswer.FAILED, failure_code=exc.code().name, failure_message=exc.details() or ""
                )
            return None
        return _refund_result(reply)

    async def query_refund(self, refund: Refund) -> RefundResult | None:
        try:
            reply = await self._stub.QueryRefund(
                channel_pb2.QueryRefundRequest(
                    refund_id=refund.refund_id, payment_id=refund.payment_id, channel=refund.channel
                ),
                timeout=QUERY_DEADLINE_S,
            )
        except grpc.aio.AioRpcError:
            return None
        return _refund_result(reply)

    async def close_channel(self) -> None:
        await self._channel.close()


def _refund_result(reply: channel_pb2.RefundResponse) -> RefundResult | None:
    answer = _REFUND_STATE.get(reply.status)
    if answer is None:
        return None
    return RefundResult(
        answer=answer,
        channel_refund_no=reply.channel_refund_no,
        amount=money_from_proto(reply.amount, "amount") if reply.HasField("amount") else None,
        occurred_at=from_timestamp(reply.refunded_at) if reply.HasField("refunded_at") else None,
        failure_code=reply.failure_code,
        failure_message=reply.failure_message,
    )
