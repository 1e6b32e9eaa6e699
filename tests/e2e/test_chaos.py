"""Chaos: 200 orders under load while payment-core and channel-gateway are each killed
with SIGKILL and restarted. Afterwards every order the channel says was paid is PAID (or
its duplicate payment refunded), none is paid twice, none is lost, and the money the
channel holds equals the money the suite recorded."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import grpc
from paykit.common.v1.money_pb2 import Money
from paykit.devstack.suite import Suite
from paykit.order.v1 import order_pb2, order_pb2_grpc

from tests.e2e.helpers import eventually, money_check, query, simulator_trades

ORDERS = 200
CONCURRENCY = 16
EXPIRES_IN_S = 30
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
PAY_ATTEMPTS = 40
SETTLE_S = 150.0


@dataclass
class Load:
    order_ids: list[str] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    gave_up: int = 0


def subject_for(i: int) -> str:
    """A mix of channel behaviours: most orders plain, some with lost or repeated notifications."""
    return ["chaos tea", "chaos tea", "chaos tea sim:drop_notify", "chaos tea sim:duplicate_notify=2"][i % 4]


async def _pay(stub: order_pb2_grpc.OrderServiceStub, order_id: str, method: str, load: Load) -> bool:
    for _ in range(PAY_ATTEMPTS):
        try:
            await stub.PayOrder(order_pb2.PayOrderRequest(order_id=order_id, method=method), timeout=20)
            return True
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in RETRYABLE:
                load.retries[f"PayOrder {exc.code().name}"] += 1
                return False
            load.retries[f"PayOrder {exc.code().name}"] += 1
            await asyncio.sleep(0.5)
    load.gave_up += 1
    return False


async def _one(stub: order_pb2_grpc.OrderServiceStub, i: int, tag: str, load: Load) -> None:
    order = await stub.CreateOrder(
        order_pb2.CreateOrderRequest(
            merchant_id="m-chaos",
            merchant_order_no=f"{tag}-{i}",
            amount=Money(minor=1000 + i, currency="CNY"),
            subject=subject_for(i),
            expires_in_s=EXPIRES_IN_S,
        ),
        timeout=20,
    )
    load.order_ids.append(order.order_id)
    await _pay(stub, order.order_id, "qr", load)
    if i % 10 == 0:
        # Every tenth payer switches to the wallet too: both may get paid.
        await _pay(stub, order.order_id, "wallet", load)


async def _run_load(target: str) -> Load:
    load = Load()
    tag = uuid.uuid4().hex[:8]
    queue = list(range(ORDERS))
    async with grpc.aio.insecure_channel(target) as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)  # type: ignore[no-untyped-call]

        async def worker() -> None:
            while queue:
                i = queue.pop(0)
                await _one(stub, i, tag, load)
                await asyncio.sleep(random.uniform(0.02, 0.08))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return load


def _killer(suite: Suite, log: list[str], stop: threading.Event) -> None:
    plan = [(1.5, "payment_core"), (2.0, "channel_gateway"), (2.0, "payment_core"), (2.0, "channel_gateway")]
    for pause_s, name in plan:
        if stop.wait(pause_s):
            return
        started = time.monotonic()
        suite.services[name].kill(signal.SIGKILL)
        suite.start_service(name)
        log.append(f"{name} SIGKILLed and back in {time.monotonic() - started:.1f}s")


def test_two_hundred_orders_while_payment_core_and_gateway_are_killed(suite: Suite) -> None:
    kills: list[str] = []
    stop = threading.Event()
    killer = threading.Thread(target=_killer, args=(suite, kills, stop))
    killer.start()
    try:
        load = asyncio.run(_run_load(suite.grpc_target("order")))
    except BaseException:
        stop.set()
        raise
    finally:
        # The plan is bounded (four kills): it runs to its end even when the load finished
        # first, so every kill happens while payments are still settling.
        killer.join()
    order_ids = set(load.order_ids)
    assert len(order_ids) == ORDERS
    assert len(kills) == 4, kills

    def order_rows() -> list[tuple[str, str, str | None, int]]:
        return [
            tuple(r)
            for r in query(
                suite,
                "order",
                "select order_id, status, payment_id, amount_minor from orders where order_id = any(:ids)",
                ids=list(order_ids),
            )
        ]

    def settled() -> bool:
        open_orders = [r for r in order_rows() if r[1] not in ("PAID", "CLOSED")]
        open_money = query(
            suite,
            "payment_core",
            "select (select count(*) from payments where order_id = any(:ids) and status in "
            "('PROCESSING','UNKNOWN')) + (select count(*) from refunds where order_id = any(:ids) "
            "and status in ('PENDING','PROCESSING'))",
            ids=list(order_ids),
        )[0][0]
        return not open_orders and open_money == 0

    eventually(settled, "every order PAID or CLOSED and every payment and refund settled", SETTLE_S)

    orders = {r[0]: r for r in order_rows()}
    payments = query(
        suite,
        "payment_core",
        "select payment_id, order_id, status, amount_minor, duplicate_reason from payments "
        "where order_id = any(:ids)",
        ids=list(order_ids),
    )
    by_id = {p.payment_id: p for p in payments}
    trades = simulator_trades(suite, set(by_id))
    paid_trades = [t for t in trades if t["status"] == "SUCCESS"]
    captured = {"SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED"}

    lost = [t["out_trade_no"] for t in paid_trades if by_id[t["out_trade_no"]].status not in captured]
    keepers: Counter[str] = Counter()
    duplicates_refunded = 0
    for trade in paid_trades:
        payment = by_id[trade["out_trade_no"]]
        if payment.duplicate_reason:
            refunded = sum(1 for r in trade["refunds"] if r["status"] == "SUCCESS")
            assert payment.status == "REFUNDED" and refunded == 1, (payment, trade["refunds"])
            duplicates_refunded += 1
        else:
            keepers[payment.order_id] += 1
            assert orders[payment.order_id][1] == "PAID", (payment, orders[payment.order_id])
            assert orders[payment.order_id][2] == payment.payment_id
    paid_twice = [o for o, n in keepers.items() if n > 1]
    paid_orders = [o for o, r in orders.items() if r[1] == "PAID"]
    unpaid_but_marked = [o for o in paid_orders if keepers[o] != 1]
    check = money_check(suite, order_ids)
    statuses = Counter(r[1] for r in orders.values())

    print(
        f"\nchaos: {len(order_ids)} orders; kills: {'; '.join(kills)}\n"
        f"orders PAID {statuses['PAID']}, CLOSED {statuses['CLOSED']}; payments {len(payments)}; "
        f"paid at the channel {len(paid_trades)} (duplicates auto-refunded {duplicates_refunded})\n"
        f"lost {len(lost)}, paid twice {len(paid_twice)}, PAID without a channel payment "
        f"{len(unpaid_but_marked)}\n"
        f"money: channel took {check.channel_taken / 100:.2f}, "
        f"returned {check.channel_returned / 100:.2f}; "
        f"recorded captured {check.recorded_captured / 100:.2f}, "
        f"refunded {check.recorded_refunded / 100:.2f}\n"
        f"client retries: {dict(load.retries)}, gave up {load.gave_up}"
    )
    assert lost == []
    assert paid_twice == []
    assert unpaid_but_marked == []
    assert check.balanced, check
    assert statuses["PAID"] == len(keepers)
    # The load really ran through the kills: most orders got paid.
    assert statuses["PAID"] >= ORDERS * 0.8
