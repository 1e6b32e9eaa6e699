"""PaymentService over gRPC: protobuf in, use cases, protobuf out."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from paykit.contracts.convert import from_timestamp, money_from_proto, money_to_proto, timestamp
from paykit.db import run_blocking
from paykit.errors import InvalidArgument
from paykit.payment.v1 import payment_pb2, payment_pb2_grpc

from payment_core.domain.health import ChannelHealth
from payment_core.domain.payment import StateChange
from payment_core.domain.refund import RefundChange
from payment_core.service_layer import closing, order_loss, payments, refunds
from payment_core.service_layer.closing import Closure, ClosureResult
from payment_core.service_layer.context import PaymentCore, now_utc
from payment_core.service_layer.health import HealthBook
from payment_core.service_layer.payments import PaymentView
from payment_core.service_layer.refunds import RefundView

SERVICE_NAME = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name
REASON_MAX_CHARS = 256

_CLOSURE = {
    Closure.CLOSED: payment_pb2.CLOSURE_OUTCOME_CLOSED,
    Closure.PAID: payment_pb2.CLOSURE_OUTCOME_PAID,
    Closure.PENDING: payment_pb2.CLOSURE_OUTCOME_PENDING,
}


def _history(changes: Sequence[StateChange | RefundChange]) -> list[payment_pb2.StateChange]:
    return [
        payment_pb2.StateChange(
            from_status=c.from_status.value, to_status=c.to_status.value, reason=c.reason, at=timestamp(c.at)
        )
        for c in changes
    ]


def payment_to_proto(view: PaymentView) -> payment_pb2.Payment:
    p = view.payment
    message = payment_pb2.Payment(
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
        refunded_amount=money_to_proto(p.refunded),
        history=_history(view.history),
        expires_at=timestamp(p.expires_at),
        duplicate_reason=p.duplicate_reason or "",
        auto_refund_id=p.auto_refund_id or "",
        next_query_at=timestamp(p.next_query_at),
        query_attempts=p.query_attempts,
    )
    return message


def refund_to_proto(view: RefundView) -> payment_pb2.Refund:
    r = view.refund
    return payment_pb2.Refund(
        refund_id=r.refund_id,
        payment_id=r.payment_id,
        order_id=r.order_id,
        merchant_id=r.merchant_id,
        amount=money_to_proto(r.amount),
        status=payment_pb2.RefundStatus.Value(f"REFUND_STATUS_{r.status.value}"),
        reason=r.reason,
        channel=r.channel,
        channel_refund_no=r.channel_refund_no or "",
        failure_code=r.failure_code or "",
        created_at=timestamp(r.created_at),
        succeeded_at=timestamp(r.succeeded_at),
        automatic=r.automatic,
        history=_history(view.history),
    )


def health_to_proto(h: ChannelHealth) -> payment_pb2.ChannelHealth:
    return payment_pb2.ChannelHealth(
        channel=h.channel,
        healthy=h.is_healthy(now_utc()),
        operator_disabled=h.operator_disabled,
        consecutive_errors=h.consecutive_errors,
        unhealthy_until=timestamp(h.unhealthy_until),
        reason=h.reason,
        actor=h.actor,
    )


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    return value


def _reason(value: str) -> str:
    if len(value) > REASON_MAX_CHARS:
        raise InvalidArgument("reason", f"at most {REASON_MAX_CHARS} characters")
    return value


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, core: PaymentCore, health: HealthBook) -> None:
        self._core = core
        self._health = health

    async def _view(self, payment_id: str) -> PaymentView:
        return await run_blocking(payments.get_payment, self._core.uow_factory, payment_id)

    async def CreatePayment(
        self, request: payment_pb2.CreatePaymentRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Payment:
        if not request.HasField("amount"):
            raise InvalidArgument("amount", "is required")
        command = payments.CreatePayment(
            idempotency_key=request.idempotency_key,
            order_id=request.order_id,
            merchant_id=request.merchant_id,
            amount=money_from_proto(request.amount, "amount"),
            method=request.method,
            subject=request.subject,
            expires_at=from_timestamp(request.expires_at) if request.HasField("expires_at") else None,
        )
        payment = await payments.create_payment(self._core, command)
        # The payment as stored; its history (one more query on the hot path) is GetPayment's.
        return payment_to_proto(PaymentView(payment, []))

    async def GetPayment(
        self, request: payment_pb2.GetPaymentRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Payment:
        return payment_to_proto(await self._view(_required(request.payment_id, "payment_id")))

    async def ListPayments(
        self, request: payment_pb2.ListPaymentsRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.ListPaymentsResponse:
        views = await run_blocking(
            payments.list_payments, self._core.uow_factory, _required(request.order_id, "order_id")
        )
        return payment_pb2.ListPaymentsResponse(payments=[payment_to_proto(v) for v in views])

    async def SyncPayment(
        self, request: payment_pb2.SyncPaymentRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Payment:
        view = await order_loss.sync_payment(self._core, _required(request.payment_id, "payment_id"))
        return payment_to_proto(view)

    async def ClosePayment(
        self, request: payment_pb2.ClosePaymentRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.ClosePaymentResponse:
        if bool(request.payment_id) == bool(request.order_id):
            raise InvalidArgument("payment_id", "give exactly one of payment_id and order_id")
        reason = _reason(request.reason) or "closed on request"
        if request.payment_id:
            if request.force:
                raise InvalidArgument("force", "applies to order_id only")
            result = await closing.close_payment(self._core, request.payment_id, reason)
        else:
            result = await closing.close_order(self._core, request.order_id, reason, request.force)
        return await self._closure(result)

    async def _closure(self, result: ClosureResult) -> payment_pb2.ClosePaymentResponse:
        views = [await self._view(p.payment_id) for p in result.payments]
        return payment_pb2.ClosePaymentResponse(
            outcome=_CLOSURE[result.outcome],
            payments=[payment_to_proto(v) for v in views],
            message=result.message,
        )

    async def RefundPayment(
        self, request: payment_pb2.RefundRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Refund:
        if not request.HasField("amount"):
            raise InvalidArgument("amount", "is required")
        command = refunds.RequestRefund(
            idempotency_key=request.idempotency_key,
            payment_id=request.payment_id,
            amount=money_from_proto(request.amount, "amount"),
            reason=request.reason,
        )
        refund = await refunds.request_refund(self._core, command)
        view = await run_blocking(refunds.get_refund, self._core.uow_factory, refund.refund_id)
        return refund_to_proto(view)

    async def GetRefund(
        self, request: payment_pb2.GetRefundRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Refund:
        view = await run_blocking(
            refunds.get_refund, self._core.uow_factory, _required(request.refund_id, "refund_id")
        )
        return refund_to_proto(view)

    async def ListRefunds(
        self, request: payment_pb2.ListRefundsRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.ListRefundsResponse:
        if bool(request.payment_id) == bool(request.order_id):
            raise InvalidArgument("payment_id", "give exactly one of payment_id and order_id")
        views = await run_blocking(
            lambda: refunds.list_refunds(
                self._core.uow_factory, payment_id=request.payment_id, order_id=request.order_id
            )
        )
        return payment_pb2.ListRefundsResponse(refunds=[refund_to_proto(v) for v in views])

    async def SetChannelHealth(
        self, request: payment_pb2.SetChannelHealthRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.ChannelHealth:
        health = await run_blocking(
            self._health.set_operator,
            request.channel,
            request.disabled,
            _reason(request.reason),
            request.actor,
        )
        return health_to_proto(health)

    async def ListChannelHealth(
        self, request: payment_pb2.ListChannelHealthRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.ListChannelHealthResponse:
        rows = await run_blocking(self._health.list)
        return payment_pb2.ListChannelHealthResponse(channels=[health_to_proto(h) for h in rows])
