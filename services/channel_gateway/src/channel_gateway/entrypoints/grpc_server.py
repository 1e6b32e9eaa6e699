"""ChannelGateway over gRPC."""

from __future__ import annotations

import grpc
from paykit.channel.v1 import channel_pb2, channel_pb2_grpc
from paykit.contracts.convert import money_from_proto, money_to_proto, timestamp
from paykit.errors import InvalidArgument

from channel_gateway.domain.channel import ChargeCommand, ChargeState
from channel_gateway.service_layer.services import Gateway

SERVICE_NAME = channel_pb2.DESCRIPTOR.services_by_name["ChannelGateway"].full_name

_STATUS = {
    ChargeState.PENDING: channel_pb2.CHARGE_STATUS_PENDING,
    ChargeState.SUCCEEDED: channel_pb2.CHARGE_STATUS_SUCCEEDED,
    ChargeState.DECLINED: channel_pb2.CHARGE_STATUS_DECLINED,
    ChargeState.NOT_FOUND: channel_pb2.CHARGE_STATUS_NOT_FOUND,
}


class ChannelGatewayServicer(channel_pb2_grpc.ChannelGatewayServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def Charge(
        self, request: channel_pb2.ChargeRequest, context: grpc.aio.ServicerContext
    ) -> channel_pb2.ChargeResponse:
        for field in ("payment_id", "order_id", "channel"):
            if not getattr(request, field):
                raise InvalidArgument(field, "is required")
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
            status=_STATUS[reply.state],
            channel_trade_no=reply.channel_trade_no,
            pay_url=reply.pay_url,
            decline_code=reply.decline_code,
            decline_message=reply.decline_message,
        )

    async def Query(
        self, request: channel_pb2.QueryRequest, context: grpc.aio.ServicerContext
    ) -> channel_pb2.QueryResponse:
        if not request.payment_id:
            raise InvalidArgument("payment_id", "is required")
        reply = await self._gateway.query(request.payment_id, request.channel or "simulator")
        response = channel_pb2.QueryResponse(
            status=_STATUS[reply.state],
            channel_trade_no=reply.channel_trade_no,
            paid_at=timestamp(reply.paid_at),
        )
        if reply.amount is not None:
            response.amount.CopyFrom(money_to_proto(reply.amount))
        return response
