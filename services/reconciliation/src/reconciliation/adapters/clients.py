"""The services a run talks to, over gRPC: channel-gateway (the statement), payment-core (the
payment behind a statement line) and accounting (release, adjustments). Protobuf stops here."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import Final

import grpc
from paykit.accounting.v1 import accounting_pb2, accounting_pb2_grpc
from paykit.channel.v1 import channel_pb2, channel_pb2_grpc
from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.errors import FailedPrecondition, InvalidArgument, Unavailable
from paykit.grpckit import open_channel
from paykit.payment.v1 import payment_pb2, payment_pb2_grpc

DOWNLOAD_DEADLINE_S: Final = 60.0
FETCH_DEADLINE_S: Final = 120.0
CALL_DEADLINE_S: Final = 10.0
# A statement is one day of one channel account; beyond this something is wrong upstream.
MAX_STATEMENT_BYTES: Final = 2 * 1024**3
SYSTEM_ACTOR: Final = "reconciliation"


@dataclass(frozen=True)
class DownloadedStatement:
    statement_id: str
    format: str
    filename: str
    sha256: str
    content: bytes


class StatementGateway:
    """channel-gateway's DownloadStatement + FetchStatement."""

    def __init__(self, target: str) -> None:
        self._channel = open_channel(target)
        self._stub = channel_pb2_grpc.ChannelGatewayStub(self._channel)  # type: ignore[no-untyped-call]

    async def download(self, channel: str, day: date) -> DownloadedStatement:
        try:
            meta = await self._stub.DownloadStatement(
                channel_pb2.DownloadStatementRequest(channel=channel, day=day.isoformat()),
                timeout=DOWNLOAD_DEADLINE_S,
            )
            invariant_size(meta.size_bytes)
            chunks = []
            stream = self._stub.FetchStatement(
                channel_pb2.FetchStatementRequest(statement_id=meta.statement_id), timeout=FETCH_DEADLINE_S
            )
            async for chunk in stream:
                chunks.append(chunk.data)
        except grpc.aio.AioRpcError as exc:
            raise _gateway_error(exc, channel, day) from None
        content = b"".join(chunks)
        if len(content) != meta.size_bytes:
            raise Unavailable(
                f"statement {meta.statement_id}: fetched {len(content)} bytes, announced {meta.size_bytes}"
            )
        return DownloadedStatement(meta.statement_id, meta.format, meta.filename, meta.sha256, content)

    async def close(self) -> None:
        await self._channel.close()


def invariant_size(size_bytes: int) -> None:
    if not 0 <= size_bytes <= MAX_STATEMENT_BYTES:
        raise FailedPrecondition(f"statement of {size_bytes} bytes (at most {MAX_STATEMENT_BYTES})")


def _gateway_error(exc: grpc.aio.AioRpcError, channel: str, day: date) -> Exception:
    what = f"channel-gateway: {channel}'s statement of {day.isoformat()}: {exc.code().name} {exc.details()}"
    match exc.code():
        case grpc.StatusCode.INVALID_ARGUMENT:
            return InvalidArgument("channel", what)
        case grpc.StatusCode.FAILED_PRECONDITION | grpc.StatusCode.NOT_FOUND:
            return FailedPrecondition(what)
        case _:
            return Unavailable(what)


class SyncOutcome(enum.Enum):
    SUCCEEDED = "SUCCEEDED"  # the payment is (now) a success: money moved and is recorded
    NOT_FOUND = "NOT_FOUND"  # payment-core never made this payment
    STILL_OPEN = "STILL_OPEN"  # the channel's answer did not settle it (or no answer)
    NOT_PAID = "NOT_PAID"  # failed or closed on our side


@dataclass(frozen=True)
class SyncAnswer:
    outcome: SyncOutcome
    status: str = ""
    order_id: str = ""
    detail: str = ""


_MONEY_MOVED: Final = frozenset(
    {
        payment_pb2.PAYMENT_STATUS_SUCCEEDED,
        payment_pb2.PAYMENT_STATUS_PARTIALLY_REFUNDED,
        payment_pb2.PAYMENT_STATUS_REFUNDED,
    }
)
_OPEN: Final = frozenset({payment_pb2.PAYMENT_STATUS_PROCESSING, payment_pb2.PAYMENT_STATUS_UNKNOWN})


class PaymentCoreClient:
    def __init__(self, target: str) -> None:
        self._channel = open_channel(target)
        self._stub = payment_pb2_grpc.PaymentServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def sync_payment(self, payment_id: str) -> SyncAnswer:
        """Ask payment-core to check the payment with its channel now (SyncPayment)."""
        try:
            payment = await self._stub.SyncPayment(
                payment_pb2.SyncPaymentRequest(payment_id=payment_id), timeout=CALL_DEADLINE_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return SyncAnswer(SyncOutcome.NOT_FOUND, detail=exc.details() or "")
            return SyncAnswer(SyncOutcome.STILL_OPEN, detail=f"{exc.code().name}: {exc.details()}")
        status = payment_pb2.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_")
        if payment.status in _MONEY_MOVED:
            outcome = SyncOutcome.SUCCEEDED
        elif payment.status in _OPEN:
            outcome = SyncOutcome.STILL_OPEN
        else:
            outcome = SyncOutcome.NOT_PAID
        return SyncAnswer(outcome, status, payment.order_id, payment.duplicate_reason)

    async def close(self) -> None:
        await self._channel.close()


class ReleaseOutcome(enum.Enum):
    RELEASED = "RELEASED"
    NOTHING_PENDING = "NOTHING_PENDING"  # released before (by an earlier run, or T+N passed)
    NOT_IN_LEDGER = "NOT_IN_LEDGER"  # the capture is not posted yet: a later run releases it
    FAILED = "FAILED"


@dataclass(frozen=True)
class AdjustmentLine:
    account_id: str
    debit: bool
    amount_minor: int
    currency: str


class AccountingClient:
    def __init__(self, target: str) -> None:
        self._channel = open_channel(target)
        self._stub = accounting_pb2_grpc.AccountingServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def release_funds(self, payment_id: str) -> ReleaseOutcome:
        """Reconciled: the payment's pending funds become available (idempotent per payment)."""
        try:
            reply = await self._stub.ReleaseFunds(
                accounting_pb2.ReleaseFundsRequest(
                    idempotency_key=f"recon-release:{payment_id}", payment_id=payment_id
                ),
                timeout=CALL_DEADLINE_S,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return ReleaseOutcome.NOT_IN_LEDGER
            return ReleaseOutcome.FAILED
        return ReleaseOutcome.RELEASED if reply.HasField("entry") else ReleaseOutcome.NOTHING_PENDING

    async def post_adjustment(
        self, key: str, lines: list[AdjustmentLine], reason: str, reference: str
    ) -> str | None:
        """A balanced adjustment entry; its entry id, or None when accounting did not take it."""
        request = accounting_pb2.PostAdjustmentRequest(
            idempotency_key=key,
            lines=[
                accounting_pb2.JournalLine(
                    account_id=line.account_id,
                    side=accounting_pb2.SIDE_DEBIT if line.debit else accounting_pb2.SIDE_CREDIT,
                    amount=MoneyProto(minor=line.amount_minor, currency=line.currency),
                )
                for line in lines
            ],
            reason=reason,
            actor=SYSTEM_ACTOR,
            reference=reference,
        )
        try:
            entry = await self._stub.PostAdjustment(request, timeout=CALL_DEADLINE_S)
        except grpc.aio.AioRpcError:
            return None
        return str(entry.entry_id)

    async def close(self) -> None:
        await self._channel.close()
