"""OrderService over gRPC: protobuf in, domain calls, protobuf out."""

from __future__ import annotations

import grpc
from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.contracts.convert import money_from_proto, money_to_proto, timestamp
from paykit.db import run_blocking
from paykit.errors import InvalidArgument
from paykit.money import Money
from paykit.order.v1 import order_pb2, order_pb2_grpc

from order_service.domain.order import Order
from order_service.domain.validation import (
    DEFAULT_PAYMENT_METHODS,
    validate_idempotency_key,
    validate_order_amount,
    validate_order_id,
)
from order_service.service_layer import services
from order_service.service_layer.services import PaymentPort, UowFactory

SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name


def to_proto(order: Order) -> order_pb2.Order:
    return order_pb2.Order(
        order_id=order.order_id,
        merchant_id=order.merchant_id,
        merchant_order_no=order.merchant_order_no,
        amount=money_to_proto(order.amount),
        subject=order.subject,
        status=order_pb2.OrderStatus.Value(f"ORDER_STATUS_{order.status.value}"),
        payment_id=order.payment_id or "",
        created_at=timestamp(order.created_at),
        expires_at=timestamp(order.expires_at),
        paid_at=timestamp(order.paid_at),
        refunded_amount=money_to_proto(order.refunded),
        close_reason=order.close_reason or "",
        pay_method=order.pay_method or "",
        duplicate_payment_ids=list(order.duplicate_payment_ids),
        closed_at=timestamp(order.closed_at),
    )


def _amount(request: order_pb2.CreateOrderRequest | order_pb2.RefundOrderRequest) -> Money:
    """The request's amount: present, a known currency, positive and within the limit."""
    if not request.HasField("amount"):
        raise InvalidArgument("amount", "is required")
    proto: MoneyProto = request.amount
    return validate_order_amount("amount", money_from_proto(proto, "amount"))


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        uow_factory: UowFactory,
        payments: PaymentPort,
        payment_methods: frozenset[str] = DEFAULT_PAYMENT_METHODS,
    ) -> None:
        self._uow_factory = uow_factory
        self._payments = payments
        self._payment_methods = payment_methods

    async def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        command = services.CreateOrder(
            merchant_id=request.merchant_id,
            merchant_order_no=request.merchant_order_no,
            amount=_amount(request),
            subject=request.subject,
            expires_in_s=request.expires_in_s,
        )
        order = await run_blocking(services.create_order, self._uow_factory, command)
        return to_proto(order)

    async def GetOrder(
        self, request: order_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        order = await run_blocking(services.get_order, self._uow_factory, validate_order_id(request.order_id))
        return to_proto(order)

    async def PayOrder(
        self, request: order_pb2.PayOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.PayOrderResponse:
        order, payment = await services.pay_order(
            self._uow_factory,
            self._payments,
            validate_order_id(request.order_id),
            request.method or "qr",
            self._payment_methods,
        )
        return order_pb2.PayOrderResponse(
            order=to_proto(order),
            payment_id=payment.payment_id,
            payment_status=payment.status,
            pay_url=payment.pay_url,
        )

    async def CloseOrder(
        self, request: order_pb2.CloseOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        order = await services.close_order(
            self._uow_factory, self._payments, request.order_id, request.reason
        )
        return to_proto(order)

    async def RefundOrder(
        self, request: order_pb2.RefundOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.RefundOrderResponse:
        command = services.RefundOrder(
            idempotency_key=validate_idempotency_key(request.idempotency_key),
            order_id=validate_order_id(request.order_id),
            amount=_amount(request),
            reason=request.reason,
        )
        order, refund = await services.refund_order(self._uow_factory, self._payments, command)
        return order_pb2.RefundOrderResponse(
            order=to_proto(order), refund_id=refund.refund_id, refund_status=refund.status
        )
