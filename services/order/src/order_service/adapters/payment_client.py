"""payment-core as seen from the order service."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from paykit.contracts.convert import money_to_proto
from paykit.errors import DomainError, FailedPrecondition, Unavailable
from paykit.grpckit import open_channel
from paykit.payment.v1 import payment_pb2, payment_pb2_grpc

from order_service.domain.order import Order

CREATE_PAYMENT_DEADLINE_S = 15.0
# The channel call inside CreatePayment may be slow; give it all of the deadline.
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass(frozen=True)
class PaymentView:
    payment_id: str
    status: str
    pay_url: str


class PaymentCoreClient:
    def __init__(self, target: str) -> None:
        self._channel = open_channel(target)
        self._stub = payment_pb2_grpc.PaymentServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def create_payment(self, order: Order, method: str) -> PaymentView:
        request = payment_pb2.CreatePaymentRequest(
            idempotency_key=order.payment_idempotency_key,
            order_id=order.order_id,
            merchant_id=order.merchant_id,
            amount=money_to_proto(order.amount),
            method=method,
            subject=order.subject,
        )
        try:
            payment = await self._stub.CreatePayment(request, timeout=CREATE_PAYMENT_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc) from exc
        return PaymentView(
            payment_id=payment.payment_id,
            status=payment_pb2.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_"),
            pay_url=payment.pay_url,
        )

    async def close(self) -> None:
        await self._channel.close()


def _domain_error(exc: grpc.aio.AioRpcError) -> DomainError:
    if exc.code() in _RETRYABLE:
        return Unavailable(f"payment service did not answer ({exc.code().name}); retry PayOrder")
    return FailedPrecondition(f"payment refused: {exc.details()}")
