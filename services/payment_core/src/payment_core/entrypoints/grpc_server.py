"""PaymentService over gRPC."""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from paykit.contracts.convert import money_from_proto, money_to_proto, timestamp
from paykit.db import run_blocking
from paykit.errors import InvalidArgument
from paykit.payment.v1 import payment_pb2, payment_pb2_grpc

from payment_core.domain.payment import Payment
from payment_core.service_layer import services
from payment_core.service_layer.services import GatewayPort, UowFactory

SERVICE_NAME = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name


def to_proto(p: Payment) -> payment_pb2.Payment:
    return payment_pb2.Payment(
        payment_id=p.payment_id,
        order_id=p.order_id,
        merchant_id=p.merchant_id,
        amount=money_to_proto(p.amount),
        method=p.method,
        channel=p.channel,
        status=payment_pb2.PaymentStatus.Value(f"PAYMENT_STATUS_{p.status.value}"),
        channel_trade_no=p.channel_trade_no or "",
        pay_url=p.pay_url or "",
        failure_code=p.failure_code or "",
        created_at=timestamp(p.created_at),
        succeeded_at=timestamp(p.succeeded_at),
    )


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, uow_factory: UowFactory, gateway: GatewayPort, routes: Mapping[str, str]) -> None:
        self._uow_factory = uow_factory
        self._gateway = gateway
        self._routes = routes

    async def CreatePayment(
        self, request: payment_pb2.CreatePaymentRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Payment:
        if not request.HasField("amount"):
            raise InvalidArgument("amount", "is required")
        command = services.CreatePayment(
            idempotency_key=request.idempotency_key,
            order_id=request.order_id,
            merchant_id=request.merchant_id,
            amount=money_from_proto(request.amount, "amount"),
            method=request.method,
            subject=request.subject,
        )
        payment = await services.create_payment(self._uow_factory, self._gateway, self._routes, command)
        return to_proto(payment)

    async def GetPayment(
        self, request: payment_pb2.GetPaymentRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Payment:
        if not request.payment_id:
            raise InvalidArgument("payment_id", "is required")
        payment = await run_blocking(services.get_payment, self._uow_factory, request.payment_id)
        return to_proto(payment)
