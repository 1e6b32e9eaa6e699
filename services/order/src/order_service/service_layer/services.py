"""Order use cases. Each runs in one unit of work; PayOrder spans two around the payment call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from paykit.db import run_blocking
from paykit.errors import AlreadyExists, NotFound
from paykit.ids import IdKind, new_id
from paykit.money import Money

from order_service.adapters import events
from order_service.adapters.payment_client import PaymentView
from order_service.domain import order as model
from order_service.domain.order import Order, OrderStatus
from order_service.domain.validation import validate_create, validate_method
from order_service.service_layer.unit_of_work import OrderTx, OrderUnitOfWork

log = logging.getLogger(__name__)

UowFactory = Callable[[], OrderUnitOfWork]


class PaymentPort(Protocol):
    async def create_payment(self, order: Order, method: str) -> PaymentView: ...


@dataclass(frozen=True)
class CreateOrder:
    merchant_id: str
    merchant_order_no: str
    amount: Money
    subject: str
    expires_in_s: int


def now_utc() -> datetime:
    return datetime.now(UTC)


def create_order(uow_factory: UowFactory, command: CreateOrder) -> Order:
    expires_in_s = validate_create(
        command.merchant_id, command.merchant_order_no, command.subject, command.expires_in_s
    )
    created_at = now_utc()
    order = Order(
        order_id=new_id(IdKind.ORDER),
        merchant_id=command.merchant_id,
        merchant_order_no=command.merchant_order_no,
        amount=command.amount,
        subject=command.subject,
        status=OrderStatus.CREATED,
        created_at=created_at,
        expires_at=created_at + timedelta(seconds=expires_in_s),
    )
    with uow_factory() as uow:
        if uow.orders.add_if_absent(order):
            uow.publish(events.order_created(order))
            uow.commit()
            return order
        existing = uow.orders.get_by_merchant_order_no(command.merchant_id, command.merchant_order_no)
    if existing is None:  # deleted between the conflict and the read: cannot happen, orders are never deleted
        raise NotFound(f"order {command.merchant_order_no} vanished")
    if not existing.same_request(command.amount, command.subject):
        raise AlreadyExists(
            f"merchant_order_no {command.merchant_order_no!r} already used by order {existing.order_id} "
            f"with amount {existing.amount} and subject {existing.subject!r}"
        )
    return existing


def get_order(uow_factory: UowFactory, order_id: str) -> Order:
    with uow_factory() as uow:
        order = uow.orders.get(order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def _change_locked(uow_factory: UowFactory, order_id: str, change: Callable[[Order], Order]) -> Order:
    """Apply `change` to the order under its row lock; commit only if it changed anything."""
    with uow_factory() as uow:
        order = uow.orders.get(order_id, for_update=True)
        if order is None:
            raise NotFound(f"order {order_id} not found")
        changed = change(order)
        if changed != order:
            uow.orders.save(changed)
            uow.commit()
        return changed


async def pay_order(
    uow_factory: UowFactory, payments: PaymentPort, order_id: str, method: str
) -> tuple[Order, PaymentView]:
    """CREATED -> PAYING is committed before payment-core is called, so a crash
    in between leaves a PAYING order whose retry reuses the same idempotency key."""
    validate_method(method)
    paying = await run_blocking(
        _change_locked, uow_factory, order_id, lambda order: model.start_paying(order, now_utc())
    )
    payment = await payments.create_payment(paying, method)
    order = await run_blocking(
        _change_locked, uow_factory, order_id, lambda order: model.attach_payment(order, payment.payment_id)
    )
    return order, payment


# -- consumed events (run inside the consumer loop's transaction) ------------


def apply_payment_succeeded(uow: OrderTx, order_id: str, payment_id: str, succeeded_at: datetime) -> None:
    order = uow.orders.get(order_id, for_update=True)
    if order is None:
        raise NotFound(f"payment {payment_id} succeeded for unknown order {order_id}")
    paid, outcome = model.mark_paid(order, payment_id, succeeded_at)
    match outcome:
        case model.PaidOutcome.MARKED_PAID:
            uow.orders.save(paid)
            uow.publish(events.order_paid(paid))
        case model.PaidOutcome.ALREADY_PAID:
            pass
        case model.PaidOutcome.DUPLICATE_PAYMENT:
            log.warning("duplicate payment on order", extra={"order_id": order_id, "payment_id": payment_id})
            uow.orders.record_duplicate_payment(order_id, payment_id)


def apply_payment_failed(uow: OrderTx, order_id: str, payment_id: str) -> None:
    order = uow.orders.get(order_id, for_update=True)
    if order is None:
        raise NotFound(f"payment {payment_id} failed for unknown order {order_id}")
    reopened = model.payment_failed(order, payment_id)
    if reopened != order:
        uow.orders.save(reopened)
