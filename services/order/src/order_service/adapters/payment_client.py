"""payment-core as seen from the order service."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from paykit.contracts.convert import money_to_proto, timestamp
from paykit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from paykit.grpckit import open_channel
from paykit.grpckit.errors import STATUS_DETAILS_KEY
from paykit.money import Money
from paykit.payment.v1 import payment_pb2, payment_pb2_grpc

from order_service.domain.order import Order

log = logging.getLogger(__name__)

# The channel call inside CreatePayment may be slow; give it all of the deadline.
CREATE_PAYMENT_DEADLINE_S = 15.0
# ClosePayment queries and then closes every open payment of the order at its channel.
CLOSE_PAYMENT_DEADLINE_S = 15.0
# RefundPayment may ask the channel synchronously before it answers.
REFUND_PAYMENT_DEADLINE_S = 15.0
LIST_PAYMENTS_DEADLINE_S = 5.0
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
# payment-core's RefundRequest fields that are the RefundOrder caller's own input.
_REFUND_FIELDS = {"amount": "amount", "reason": "reason", "idempotency_key": "idempotency_key"}


@dataclass(frozen=True)
class PaymentView:
    payment_id: str
    status: str
    pay_url: str


class ClosureOutcome(enum.Enum):
    # Nothing can be paid any more: every payment of the order is closed or failed.
    CLOSED = "CLOSED"
    # A payment was found succeeded: the order must not close; payment.succeeded marks it paid.
    PAID = "PAID"
    # A channel did not confirm the close: ask again later.
    PENDING = "PENDING"


@dataclass(frozen=True)
class ClosureResult:
    outcome: ClosureOutcome
    message: str


@dataclass(frozen=True)
class RefundView:
    refund_id: str
    # PENDING, PROCESSING, SUCCEEDED or FAILED; the final word comes as refund events.
    status: str


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
            # payment-core closes the payment at the channel once the order expires.
            expires_at=timestamp(order.expires_at),
        )
        try:
            payment = await self._stub.CreatePayment(request, timeout=CREATE_PAYMENT_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "CreatePayment") from exc
        return _payment_view(payment)

    async def list_payments(self, order_id: str) -> list[PaymentView]:
        request = payment_pb2.ListPaymentsRequest(order_id=order_id)
        try:
            response = await self._stub.ListPayments(request, timeout=LIST_PAYMENTS_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "ListPayments") from exc
        return [_payment_view(payment) for payment in response.payments]

    async def close_payment(self, order_id: str, reason: str, *, force: bool = False) -> ClosureResult:
        """Close every open payment of the order at its channel; payment-core then refuses new ones.

        `force` closes the order at payment-core even though a channel could
        not confirm; a payment that still lands is refunded automatically there.
        """
        request = payment_pb2.ClosePaymentRequest(order_id=order_id, reason=reason, force=force)
        try:
            response = await self._stub.ClosePayment(request, timeout=CLOSE_PAYMENT_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "ClosePayment") from exc
        return ClosureResult(outcome=_closure_outcome(order_id, response), message=response.message)

    async def refund_payment(
        self, idempotency_key: str, payment_id: str, amount: Money, reason: str
    ) -> RefundView:
        request = payment_pb2.RefundRequest(
            idempotency_key=idempotency_key,
            payment_id=payment_id,
            amount=money_to_proto(amount),
            reason=reason,
        )
        try:
            refund = await self._stub.RefundPayment(request, timeout=REFUND_PAYMENT_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "RefundPayment", caller_fields=_REFUND_FIELDS) from exc
        return RefundView(
            refund_id=refund.refund_id,
            status=payment_pb2.RefundStatus.Name(refund.status).removeprefix("REFUND_STATUS_"),
        )

    async def close(self) -> None:
        await self._channel.close()


def _payment_view(payment: payment_pb2.Payment) -> PaymentView:
    return PaymentView(
        payment_id=payment.payment_id,
        status=payment_pb2.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_"),
        pay_url=payment.pay_url,
    )


def _closure_outcome(order_id: str, response: payment_pb2.ClosePaymentResponse) -> ClosureOutcome:
    match response.outcome:
        case payment_pb2.CLOSURE_OUTCOME_CLOSED:
            return ClosureOutcome.CLOSED
        case payment_pb2.CLOSURE_OUTCOME_PAID:
            return ClosureOutcome.PAID
        case payment_pb2.CLOSURE_OUTCOME_PENDING:
            return ClosureOutcome.PENDING
        case _:
            # Unset or newer than this contract: not a confirmed close, so ask again later.
            log.warning(
                "unknown closure outcome; treated as pending",
                extra={"order_id": order_id, "outcome": int(response.outcome)},
            )
            return ClosureOutcome.PENDING


def _domain_error(
    exc: grpc.aio.AioRpcError, call: str, caller_fields: Mapping[str, str] | None = None
) -> DomainError:
    """payment-core's status as the order service's error.

    With `caller_fields` the request carried the caller's own input, so
    INVALID_ARGUMENT / NOT_FOUND / ALREADY_EXISTS keep their codes (an invalid
    field is renamed to the caller's). Without it, everything but an outage is
    a refusal of what the order asked (FAILED_PRECONDITION).
    """
    code = exc.code()
    details = exc.details() or code.name
    if code in _RETRYABLE:
        # A retry is safe: each call here is idempotent (a key, a close, or a query).
        return Unavailable(f"payment service did not answer {call} ({code.name}: {details}); retry")
    if caller_fields is not None:
        match code:
            case grpc.StatusCode.INVALID_ARGUMENT:
                return _invalid_argument(exc, details, caller_fields)
            case grpc.StatusCode.NOT_FOUND:
                return NotFound(f"payment service: {details}")
            case grpc.StatusCode.ALREADY_EXISTS:
                return AlreadyExists(f"payment service: {details}")
    return FailedPrecondition(f"payment refused: {details}")


def _invalid_argument(
    exc: grpc.aio.AioRpcError, details: str, caller_fields: Mapping[str, str]
) -> DomainError:
    path = _violated_field(exc)
    if path is None:
        # No field named: the amount is what payment-core judges on a refund.
        return InvalidArgument("amount", details)
    top, dot, rest = path.partition(".")
    if top not in caller_fields:
        # A field the order service filled in (e.g. payment_id): not the caller's mistake.
        return FailedPrecondition(f"payment refused: {details}")
    return InvalidArgument(caller_fields[top] + dot + rest, details.removeprefix(f"{path}: "))


def _violated_field(exc: grpc.aio.AioRpcError) -> str | None:
    """The field path named by a google.rpc.BadRequest in the status details, if any."""
    for key, value in exc.trailing_metadata() or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return None
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request) and bad_request.field_violations:
                field: str = bad_request.field_violations[0].field
                return field
    return None
