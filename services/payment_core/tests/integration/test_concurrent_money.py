"""Decisions about money under real concurrency, against real PostgreSQL: two successes
of one order racing, a success racing the order's close, twenty refunds racing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from paykit.errors import FailedPrecondition
from paykit.ids import IdKind, new_id
from paykit.money import Money
from payment_core.domain import payment as model
from payment_core.domain.payment import ChannelResult, Payment, PaymentStatus
from payment_core.service_layer import payments, refunds
from payment_core.service_layer.context import PaymentCore, UowFactory
from payment_core.service_layer.payments import CLOSED, CLOSING
from sqlalchemy import Engine, text

AMOUNT = Money(10_000, "CNY")


def store_processing(uow_factory: UowFactory, order_id: str, key: str) -> Payment:
    now = datetime.now(UTC)
    payment = Payment(
        payment_id=new_id(IdKind.PAYMENT),
        idempotency_key=key,
        order_id=order_id,
        merchant_id="m-1",
        amount=AMOUNT,
        method="qr",
        channel="simulator",
        subject="tea",
        status=PaymentStatus.INIT,
        created_at=now,
        expires_at=now + timedelta(minutes=30),
    )
    processing, change = model.start_processing(payment, now)
    with uow_factory() as uow:
        assert uow.payments.add_if_absent(processing)
        uow.payments.record_change(change)
        uow.commit()
    return processing


def succeed(uow_factory: UowFactory, payment: Payment) -> None:
    result = ChannelResult(True, payment.amount, f"T-{payment.payment_id}", datetime.now(UTC))
    with uow_factory() as uow:
        payments.apply_notification(uow, payment.payment_id, result, notification_id="")
        uow.commit()


def race(*calls: Callable[[], object]) -> list[object]:
    """Start the calls at the same instant on their own threads."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> object:
        barrier.wait()
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_two_successes_of_one_order_racing_keep_one_and_refund_the_other(
    uow_factory: UowFactory, pay_engine: Engine
) -> None:
    orders = [new_id(IdKind.ORDER) for _ in range(25)]
    for order_id in orders:
        first = store_processing(uow_factory, order_id, f"{order_id}/1")
        second = store_processing(uow_factory, order_id, f"{order_id}/2")
        race(lambda p=first: succeed(uow_factory, p), lambda p=second: succeed(uow_factory, p))
    with pay_engine.connect() as conn:
        rows = conn.execute(
            text(
                "select order_id, count(*) filter (where duplicate_reason is null) as kept, "
                "count(*) filter (where duplicate_reason like 'ORDER_ALREADY_PAID by pay_%') as dup, "
                "sum(refund_reserved_minor) as reserved "
                "from payments where order_id = any(:o) group by order_id"
            ),
            {"o": orders},
        ).all()
        auto_refunds = conn.execute(
            text("select count(*) from refunds where order_id = any(:o) and automatic"), {"o": orders}
        ).scalar_one()
    assert len(rows) == 25
    assert all((r.kept, r.dup, r.reserved) == (1, 1, AMOUNT.minor) for r in rows), rows
    assert auto_refunds == 25


def test_a_success_racing_the_orders_close_is_either_the_payment_or_refunded(
    uow_factory: UowFactory, pay_engine: Engine
) -> None:
    outcomes = []
    for i in range(25):
        order_id = new_id(IdKind.ORDER)
        payment = store_processing(uow_factory, order_id, f"{order_id}/1")

        def close(order_id: str = order_id) -> str | None:
            # What closing.close_order writes once every payment looked closed.
            with uow_factory() as uow:
                uow.payments.set_closure(order_id, CLOSING, "expired")
                uow.commit()
            with uow_factory() as uow:
                paid_by, _ = uow.payments.lock_order_and_read_paid_by(order_id, payment_id="")
                if paid_by is None:
                    uow.payments.set_closure(order_id, CLOSED, "expired")
                else:
                    uow.payments.clear_closure(order_id)
                uow.commit()
            return paid_by

        paid_by, _ = race(close, lambda p=payment: succeed(uow_factory, p))
        with uow_factory() as uow:
            stored = uow.payments.get(payment.payment_id)
            closure = uow.payments.lock_order_and_read_closure(order_id)
        assert stored is not None and stored.status is PaymentStatus.SUCCEEDED
        if paid_by == payment.payment_id:
            # The close saw the success: the order is paid, not closed, no refund.
            assert closure is None and stored.duplicate_reason is None
            outcomes.append("paid")
        else:
            # The close won: the success after it is a duplicate, refunded in full.
            assert closure == CLOSED and stored.duplicate_reason == "ORDER_CLOSED", (i, stored, closure)
            assert stored.refund_reserved_minor == AMOUNT.minor
            outcomes.append("refunded")
    assert len(outcomes) == 25


class NoChannel:
    """Refund submits are not part of this test: the channel never answers."""

    async def refund(self, *_: object) -> None:
        return None


def test_twenty_concurrent_refunds_of_ten_against_one_hundred_accept_exactly_ten(
    uow_factory: UowFactory, pay_engine: Engine
) -> None:
    order_id = new_id(IdKind.ORDER)
    payment = store_processing(uow_factory, order_id, f"{order_id}/1")
    succeed(uow_factory, payment)
    core = PaymentCore(uow_factory, NoChannel(), (), None)  # type: ignore[arg-type]
    commands = [
        refunds.RequestRefund(f"r-{i}", payment.payment_id, Money(1_000, "CNY"), "asked") for i in range(20)
    ]
    results = race(*(lambda c=c: refunds._accept(core, c) for c in commands))
    accepted = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, FailedPrecondition)]
    assert (len(accepted), len(refused)) == (10, 10), results
    with uow_factory() as uow:
        stored = uow.payments.get(payment.payment_id)
    assert stored is not None and stored.refund_reserved_minor == AMOUNT.minor
    # And the database refuses a reservation above the capture even if code did not.
    with pytest.raises(Exception, match="payments_refunds_within_amount"), uow_factory() as uow:
        uow.payments.save(replace(stored, refund_reserved_minor=AMOUNT.minor + 1))
        uow.commit()
