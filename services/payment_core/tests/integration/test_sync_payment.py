"""SyncPayment's service layer (order_loss.sync_payment) against real PostgreSQL: the
scheduler's query-and-apply for one payment, on demand. Reconciliation calls it for a
statement line whose payment we never saw succeed (a lost notification)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from paykit.errors import NotFound
from paykit.ids import IdKind, new_id
from payment_core.adapters.gateway_client import QueryAnswer, QueryOutcome
from payment_core.domain.payment import ChannelResult, Payment, PaymentStatus
from payment_core.domain.refund import RefundStatus
from payment_core.service_layer import order_loss
from payment_core.service_layer.context import PaymentCore, UowFactory
from payment_core.service_layer.payments import CLOSED

from services.payment_core.tests.integration.test_concurrent_money import store_processing


class PaidChannel:
    """The channel says every payment asked about was paid (its notification was lost)."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    async def query(self, payment: Payment) -> QueryAnswer:
        self.queries.append(payment.payment_id)
        result = ChannelResult(True, payment.amount, f"T-{payment.payment_id}", datetime.now(UTC))
        return QueryAnswer(QueryOutcome.SUCCEEDED, result)


def _core(uow_factory: UowFactory, channel: PaidChannel) -> PaymentCore:
    return PaymentCore(uow_factory, channel, (), None)  # type: ignore[arg-type]


def test_sync_applies_the_channels_success_to_a_processing_payment(uow_factory: UowFactory) -> None:
    order_id = new_id(IdKind.ORDER)
    payment = store_processing(uow_factory, order_id, f"{order_id}/1")
    channel = PaidChannel()
    view = asyncio.run(order_loss.sync_payment(_core(uow_factory, channel), payment.payment_id))
    assert view.payment.status is PaymentStatus.SUCCEEDED
    assert view.payment.duplicate_reason is None and view.payment.auto_refund_id is None
    assert channel.queries == [payment.payment_id]
    # Settled now: asked again, the channel is not queried again and nothing changes.
    again = asyncio.run(order_loss.sync_payment(_core(uow_factory, channel), payment.payment_id))
    assert again.payment.status is PaymentStatus.SUCCEEDED and channel.queries == [payment.payment_id]


def test_sync_of_a_payment_on_a_closed_order_succeeds_and_refunds_it(uow_factory: UowFactory) -> None:
    order_id = new_id(IdKind.ORDER)
    payment = store_processing(uow_factory, order_id, f"{order_id}/1")
    with uow_factory() as uow:  # the order was closed (forced) while the payment stayed open
        uow.payments.set_closure(order_id, CLOSED, "expired")
        uow.commit()
    view = asyncio.run(order_loss.sync_payment(_core(uow_factory, PaidChannel()), payment.payment_id))
    assert view.payment.status is PaymentStatus.SUCCEEDED
    assert view.payment.duplicate_reason == "ORDER_CLOSED" and view.payment.auto_refund_id
    with uow_factory() as uow:
        refund = uow.refunds.get(view.payment.auto_refund_id)
    assert refund is not None and refund.automatic and refund.amount == payment.amount
    assert refund.status is RefundStatus.PENDING  # the refund worker submits it


def test_sync_of_an_unknown_payment_is_not_found(uow_factory: UowFactory) -> None:
    with pytest.raises(NotFound):
        asyncio.run(order_loss.sync_payment(_core(uow_factory, PaidChannel()), "pay_never_made"))
