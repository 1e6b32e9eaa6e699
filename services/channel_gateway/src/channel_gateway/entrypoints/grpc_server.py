"""ChannelGateway over gRPC: protobuf stops here; requests are checked field by field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any, assert_never

import grpc
from paykit.channel.v1 import channel_pb2, channel_pb2_grpc
from paykit.contracts.convert import money_from_proto, money_to_proto, timestamp
from paykit.db import run_blocking
from paykit.errors import InvalidArgument, NotFound
from paykit.money import Money

from channel_gateway.adapters.statements import CHUNK_BYTES, StoredStatement
from channel_gateway.domain.channel import (
    ChargeCommand,
    ChargeState,
    CloseResult,
    PayoutCommand,
    PayoutReply,
    PayoutState,
    RefundCommand,
    RefundReply,
    RefundState,
)
from channel_gateway.service_layer.services import Gateway

SERVICE_NAME = channel_pb2.DESCRIPTOR.services_by_name["ChannelGateway"].full_name


def _charge_status(state: ChargeState) -> channel_pb2.ChargeStatus.ValueType:
    match state:
        case ChargeState.PENDING:
            return channel_pb2.CHARGE_STATUS_PENDING
        case ChargeState.SUCCEEDED:
            return channel_pb2.CHARGE_STATUS_SUCCEEDED
        case ChargeState.DECLINED:
            return channel_pb2.CHARGE_STATUS_DECLINED
        case ChargeState.NOT_FOUND:
            return channel_pb2.CHARGE_STATUS_NOT_FOUND
        case ChargeState.CLOSED:
            return channel_pb2.CHARGE_STATUS_CLOSED
        case _:
            assert_never(state)


def _refund_status(state: RefundState) -> channel_pb2.RefundState.ValueType:
    match state:
        case RefundState.PROCESSING:
            return channel_pb2.REFUND_STATE_PROCESSING
        case RefundState.SUCCEEDED:
            return channel_pb2.REFUND_STATE_SUCCEEDED
        case RefundState.FAILED:
            return channel_pb2.REFUND_STATE_FAILED
        case RefundState.NOT_FOUND:
            return channel_pb2.REFUND_STATE_NOT_FOUND
        case _:
            assert_never(state)


def _close_result(result: CloseResult) -> channel_pb2.CloseResult.ValueType:
    match result:
        case CloseResult.CLOSED:
            return channel_pb2.CLOSE_RESULT_CLOSED
        case CloseResult.ALREADY_PAID:
            return channel_pb2.CLOSE_RESULT_ALREADY_PAID
        case _:
            assert_never(result)


def _payout_status(state: PayoutState) -> channel_pb2.PayoutState.ValueType:
    match state:
        case PayoutState.PAID:
            return channel_pb2.PAYOUT_STATE_PAID
        case PayoutState.FAILED:
            return channel_pb2.PAYOUT_STATE_FAILED
        case _:
            assert_never(state)


def _require(request: Any, *names: str) -> None:
    for name in names:
        if not getattr(request, name):
            raise InvalidArgument(name, "is required")


def _refund_amounts(request: channel_pb2.RefundRequest) -> tuple[Money, Money]:
    """(amount, payment_amount): both positive, one currency, the refund no larger than the payment."""
    amount = money_from_proto(request.amount, "amount")
    payment_amount = money_from_proto(request.payment_amount, "payment_amount")
    if not amount.is_positive:
        raise InvalidArgument("amount.minor", "must be positive")
    if not payment_amount.is_positive:
        raise InvalidArgument("payment_amount.minor", "must be positive")
    if amount.currency != payment_amount.currency:
        raise InvalidArgument(
            "amount.currency",
            f"{amount.currency} differs from payment_amount.currency {payment_amount.currency}",
        )
    if amount > payment_amount:
        raise InvalidArgument("amount.minor", f"{amount} exceeds the payment amount {payment_amount}")
    return amount, payment_amount


def _refund_response(reply: RefundReply) -> channel_pb2.RefundResponse:
    response = channel_pb2.RefundResponse(
        status=_refund_status(reply.state),
        channel_refund_no=reply.channel_refund_no,
        failure_code=reply.failure_code,
        failure_message=reply.failure_message,
        refunded_at=timestamp(reply.refunded_at),
    )
    if reply.amount is not None:
        response.amount.CopyFrom(money_to_proto(reply.amount))
    return response


def _payout_response(reply: PayoutReply) -> channel_pb2.PayoutResponse:
    return channel_pb2.PayoutResponse(
        status=_payout_status(reply.state),
        payout_reference=reply.payout_reference,
        failure_code=reply.failure_code,
        failure_message=reply.failure_message,
    )


class ChannelGatewayServicer(channel_pb2_grpc.ChannelGatewayServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def Charge(
        self, request: channel_pb2.ChargeRequest, context: grpc.aio.ServicerContext
    ) -> channel_pb2.ChargeResponse:
        _require(request, "payment_id", "order_id", "channel")
        amount = money_from_proto(request.amount, "amount")
        if not amount.is_positive:
            raise InvalidArgument("amount.minor", "must be positive")
        command = ChargeCommand(
            payment_id=request.payment_id,
            order_id=request.order_id,
            amount=amount,
            method=request.method,
            subject=request.subject,
            notify_url=self._gateway.notify_url_for(request.channel),
        )
        reply = await self._gateway.charge(command, request.channel)
        return channel_pb2.ChargeResponse(
            status=_charge_status(reply.state),
            channel_trade_no=reply.channel_trade_no,
            pay_url=reply.pay_url,
            decline_code=reply.decline_code,
            decline_message=reply.decline_message,
        )

    async def Query(
        self, request: channel_pb2.QueryRequest, context: grpc.aio.ServicerContext
    ) -> channel_pb2.QueryResponse:
        _require(request, "payment_id", "channel")
        reply = await self._gateway.query(request.payment_id, request.channel)
        response = channel_pb2.QueryResponse(
            status=_charge_status(reply.state),
            channel_trade_no=reply.channel_trade_no,
            paid_at=timestamp(reply.paid_at),
        )
        if reply.amount is not None:
            response.amount.CopyFrom(money_to_proto(reply.amount))
        return response

    async def Refund(
        self, request: channel_pb2.RefundRequest, context: grpc.aio.ServicerContext
    ) -> channel_pb2.RefundResponse:
        _require(request, "refund_id", "payment_id", "order_id", "channel")
        self._gateway.connector(request.channel)  # an unknown channel is the caller's error, said first
        amount, payment_amount = _refund_amounts(request)
        command = RefundCommand(
            refund_id=request.refund_id,
            payment_id=request.payment_id,
            order_id=request.order_id,
            amount=amount,
            payment_amount=payment_amount,
            reason=request.reason,
            notify_url=self._gateway.notify_url_for(request.channel),
        )
        return _refund_response(await self._gateway.refund(command, request.channel))

    async def QueryRefund(
        self, request: channel_pb2.QueryRefundRequest, context: grpc.aio.ServicerContext
    ) -> channel_pb2.RefundResponse:
        _require(request, "refund_id", "payment_id", "channel")
        reply = await self._gateway.query_refund(request.refund_id, request.payment_id, request.channel)
        return _refund_response(reply)

    async def Close(
        self, request: channel_pb2.CloseRequest, context: grpc.aio.ServicerContext
    ) -> channel_pb2.CloseResponse:
        _require(request, "payment_id", "channel")
        reply = await self._gateway.close(request.payment_id, request.channel)
        return channel_pb2.CloseResponse(result=_close_result(reply.result), message=reply.message)

    async def Payout(
        self, request: channel_pb2.PayoutRequest, context: grpc.aio.ServicerContext
    ) -> channel_pb2.PayoutResponse:
        _require(request, "settlement_id", "merchant_id", "channel")
        self._gateway.connector(request.channel)  # an unknown channel is the caller's error, said first
        amount = money_from_proto(request.amount, "amount")
        if not amount.is_positive:
            raise InvalidArgument("amount.minor", "must be positive")
        command = PayoutCommand(request.settlement_id, request.merchant_id, amount)
        return _payout_response(await self._gateway.payout(command, request.channel))

    async def DownloadStatement(
        self, request: channel_pb2.DownloadStatementRequest, context: grpc.aio.ServicerContext
    ) -> channel_pb2.StatementFile:
        _require(request, "channel", "day")
        self._gateway.connector(request.channel)
        try:
            day = date.fromisoformat(request.day)
        except ValueError:
            raise InvalidArgument("day", f"{request.day!r} is not a date (YYYY-MM-DD)") from None
        return _statement_file(await self._gateway.download_statement(request.channel, day))

    async def FetchStatement(
        self, request: channel_pb2.FetchStatementRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[channel_pb2.StatementChunk]:
        # A streaming call: the error-mapping interceptor covers unary calls only, so this
        # one says its own statuses.
        if not request.statement_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "statement_id: is required")
        try:
            stored = await run_blocking(self._gateway.statement, request.statement_id)
        except NotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, exc.message)
            return
        for start in range(0, stored.size_bytes, CHUNK_BYTES):
            data = await run_blocking(self._gateway.statement_chunk, stored.statement_id, start)
            yield channel_pb2.StatementChunk(data=data)


def _statement_file(stored: StoredStatement) -> channel_pb2.StatementFile:
    return channel_pb2.StatementFile(
        statement_id=stored.statement_id,
        channel=stored.channel,
        day=stored.day.isoformat(),
        format=stored.format,
        filename=stored.filename,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        downloaded_at=timestamp(stored.downloaded_at),
    )
