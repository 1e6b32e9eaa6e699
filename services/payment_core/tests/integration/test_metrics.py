"""payment-core's metrics against real PostgreSQL: outcomes counted only once committed,
and the stuck-payments gauge from the periodic count."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from paykit.ids import IdKind, new_id
from paykit.money import Money
from payment_core.domain import payment as model
from payment_core.domain.payment import ChannelResult, Payment, PaymentStatus
from payment_core.service_layer import payments
from payment_core.service_layer.closing import fail_closed
from payment_core.service_layer.context import UowFactory
from payment_core.service_layer.monitoring import measure_stuck_payments
from prometheus_client import REGISTRY

AMOUNT = Money(2_500, "CNY")
STUCK_AFTER = timedelta(seconds=300)


def outcomes(channel: str, outcome: str) -> float:
    labels = {"channel": channel, "outcome": outcome}
    return REGISTRY.get_sample_value("paykit_payment_outcomes_total", labels) or 0.0


def stuck(channel: str, state: str) -> float | None:
    return REGISTRY.get_sample_value("paykit_payments_stuck", {"channel": channel, "state": state})


def store_processing(uow_factory: UowFactory, channel: str, age: timedelta = timedelta(0)) -> Payment:
    created = datetime.now(UTC) - age
    payment = Payment(
        payment_id=new_id(IdKind.PAYMENT),
        idempotency_key=secrets.token_hex(8),
        order_id=new_id(IdKind.ORDER),
        merchant_id="m-metrics",
        amount=AMOUNT,
        method="qr",
        channel=channel,
        subject="tea",
        status=PaymentStatus.INIT,
        created_at=created,
        expires_at=created + timedelta(minutes=30),
        next_query_at=created + timedelta(seconds=5),
    )
    processing, change = model.start_processing(payment, created)
    with uow_factory() as uow:
        assert uow.payments.add_if_absent(processing)
        uow.payments.record_change(change)
        uow.commit()
    return processing


def success(payment: Payment) -> ChannelResult:
    return ChannelResult(True, payment.amount, f"T-{payment.payment_id}", datetime.now(UTC))


def test_a_success_is_counted_once_its_transaction_commits_and_never_when_it_rolls_back(
    uow_factory: UowFactory,
) -> None:
    channel = f"chan-{secrets.token_hex(4)}"
    payment = store_processing(uow_factory, channel)

    with uow_factory() as uow:  # applied, then rolled back: nothing happened
        payments.apply_notification(uow, payment.payment_id, success(payment), notification_id="")
        assert outcomes(channel, "succeeded") == 0
    assert outcomes(channel, "succeeded") == 0

    with uow_factory() as uow:
        payments.apply_notification(uow, payment.payment_id, success(payment), notification_id="")
        assert outcomes(channel, "succeeded") == 0, "not before the commit"
        uow.commit()
    assert outcomes(channel, "succeeded") == 1

    # The same notification again changes nothing and counts nothing.
    with uow_factory() as uow:
        payments.apply_notification(uow, payment.payment_id, success(payment), notification_id="")
        uow.commit()
    assert outcomes(channel, "succeeded") == 1
    print(f"\npayment metrics: {channel} succeeded counted 1 (rolled back 0, replay 0)")


def test_failed_and_unknown_are_counted_by_channel(uow_factory: UowFactory) -> None:
    channel = f"chan-{secrets.token_hex(4)}"
    closed = store_processing(uow_factory, channel)
    fail_closed(uow_factory, closed.payment_id, "CLOSED", "closed at the channel")

    silent = store_processing(uow_factory, channel)
    with uow_factory() as uow:
        current = uow.payments.get(silent.payment_id, for_update=True)
        assert current is not None
        unknown, change = model.mark_unknown(current, "no answer", datetime.now(UTC))
        uow.payments.save(unknown, change)
        uow.commit()
    # A query then finds it paid: counted as succeeded too.
    payments.apply_channel_result(uow_factory, silent.payment_id, success(silent))

    assert (outcomes(channel, "failed"), outcomes(channel, "succeeded")) == (1, 1)


def test_stuck_gauge_counts_open_payments_older_than_the_threshold_per_channel_and_state(
    uow_factory: UowFactory,
) -> None:
    channel, quiet = f"chan-{secrets.token_hex(4)}", f"chan-{secrets.token_hex(4)}"
    old = store_processing(uow_factory, channel, age=timedelta(minutes=10))
    store_processing(uow_factory, channel)  # fresh: not stuck
    old_unknown = store_processing(uow_factory, channel, age=timedelta(minutes=7))
    with uow_factory() as uow:
        unknown, change = model.mark_unknown(old_unknown, "no answer", datetime.now(UTC))
        uow.payments.save(replace(unknown, next_query_at=None), change)
        uow.commit()

    measure_stuck_payments(uow_factory, STUCK_AFTER, [channel, quiet])

    assert stuck(channel, "processing") == 1
    assert stuck(channel, "unknown") == 1, "stuck even with no query scheduled"
    assert stuck(quiet, "processing") == 0 and stuck(quiet, "unknown") == 0, "known channels read 0"

    payments.apply_channel_result(uow_factory, old.payment_id, success(old))
    measure_stuck_payments(uow_factory, STUCK_AFTER, [channel, quiet])
    assert stuck(channel, "processing") == 0, "a settled payment leaves the gauge"
    print(f"\npayment metrics: stuck gauge {channel}: processing 1 -> 0 once settled, unknown 1")
