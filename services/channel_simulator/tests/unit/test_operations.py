"""The protocol-neutral core (operations.py) on a seeded sandbox, with no HTTP at all: each charge's
fate, repeats and tombstones, per-protocol numbering, refund limits, out-of-order answers, payouts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest
from aiohttp import ClientSession, web
from channel_simulator import operations
from channel_simulator.accounts import MerchantAccount, RefundStatus, TradeStatus
from channel_simulator.behaviour import Behaviour
from channel_simulator.operations import (
    ChargeRequest,
    Fate,
    PayoutRequest,
    RefundAccepted,
    RefundRejected,
    RefundRequest,
    Refusal,
    Refused,
)
from channel_simulator.protocols.base import Notice, PaymentNotice, Protocol, RefundNotice
from channel_simulator.sandbox import Sandbox
from paykit.money import Money

T = TypeVar("T")
ACCOUNTS = ("ACC-1", "ACC-2")
TOY, OTHER = "toy", "other"
URL = "http://127.0.0.1:9/notify"


class Recording(Protocol):
    """A protocol that records which notifications the core sends and posts none of them."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def routes(self) -> Sequence[web.RouteDef]:
        return []

    def credentials(self, merchants: Sequence[MerchantAccount]) -> dict[str, Any]:
        return {}

    def destination(self, notice: Notice) -> str | None:
        self.notices.append(notice)
        return None

    def format_notification(self, notice: Notice) -> bytes:
        raise AssertionError("never posted")

    def sign_notification(self, notice: Notice, url: str, body: bytes, now_s: float) -> dict[str, str]:
        raise AssertionError("never posted")

    def is_acknowledged(self, status: int, body: bytes) -> bool:
        raise AssertionError("never posted")


class RecordingToy(Recording):
    name, prefix = TOY, "/toy"


class RecordingOther(Recording):
    name, prefix = OTHER, "/other"


def run(scenario: Callable[[Sandbox], Awaitable[T]], behaviour: Behaviour | None = None, seed: int = 7) -> T:
    async def main() -> T:
        sandbox = Sandbox.create(ACCOUNTS, b"secret", behaviour or Behaviour(), seed)
        sandbox.protocols = {TOY: RecordingToy(), OTHER: RecordingOther()}
        sandbox.http = ClientSession()
        try:
            return await scenario(sandbox)
        finally:
            await sandbox.shutdown()

    return asyncio.run(main())


async def settle(sandbox: Sandbox) -> None:
    """Wait for every payer, refund and notification task alive now (and those they start)."""
    while sandbox.tasks:
        await asyncio.gather(*list(sandbox.tasks))


def notices(sandbox: Sandbox, protocol: str = TOY) -> list[Notice]:
    recorder = sandbox.protocols[protocol]
    assert isinstance(recorder, Recording)
    return recorder.notices


def cny(text: str) -> Money:
    return Money.parse(text, "CNY")


def charge(no: str, amount: str = "10.00", subject: str = "", **options: Any) -> ChargeRequest:
    return ChargeRequest.with_directives(no, cny(amount), URL, subject, **options)


async def paid(sandbox: Sandbox, no: str, amount: str = "10.00") -> None:
    account = sandbox.merchants["ACC-1"]
    await operations.create_charge(sandbox, account, TOY, charge(no, amount, "sim:pay_delay=0"))
    await settle(sandbox)
    trade = operations.query_charge(account, TOY, out_trade_no=no)
    assert trade is not None and trade.status is TradeStatus.SUCCESS


def refund(no: str, trade_no: str, amount: str, currency: str = "CNY", **options: Any) -> RefundRequest:
    return RefundRequest(no, trade_no, Money.parse(amount, currency), URL, **options)


# -- fates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "fate", "stored"),
    [
        ("sim:timeout", Fate.LOST, False),
        ("sim:decline", Fate.DECLINED, False),
        ("sim:success_after_timeout", Fate.ANSWER_LOST, True),
        ("", Fate.ANSWERED, True),
    ],
)
def test_each_directive_decides_the_charges_fate_and_whether_a_trade_exists(
    subject: str, fate: Fate, stored: bool
) -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        outcome = await operations.create_charge(sandbox, account, TOY, charge("o1", subject=subject))
        assert outcome.fate is fate
        assert (outcome.trade is not None) is stored
        assert (account.trade(TOY, "o1") is not None) is stored
        await settle(sandbox)
        if stored:
            # The trade whose answer was lost is paid and notified all the same.
            assert account.trade(TOY, "o1").status is TradeStatus.SUCCESS  # type: ignore[union-attr]
            assert [type(n) for n in notices(sandbox)] == [PaymentNotice]
        else:
            assert notices(sandbox) == []

    run(scenario)


def test_rates_are_drawn_from_the_seed_the_same_way_every_run_and_per_account() -> None:
    behaviour = Behaviour(decline_rate=0.5, pay_rate=0.0)

    async def fates(sandbox: Sandbox, account_id: str, count: int) -> list[Fate]:
        account = sandbox.merchants[account_id]
        return [
            (await operations.create_charge(sandbox, account, TOY, charge(f"o{i}"))).fate
            for i in range(count)
        ]

    async def only_a(sandbox: Sandbox) -> list[Fate]:
        return await fates(sandbox, "ACC-1", 40)

    async def b_first(sandbox: Sandbox) -> list[Fate]:
        await fates(sandbox, "ACC-2", 25)  # another account's traffic shifts nothing at ACC-1
        return await fates(sandbox, "ACC-1", 40)

    first = run(only_a, behaviour, seed=3)
    assert first == run(b_first, behaviour, seed=3)
    assert {Fate.DECLINED, Fate.ANSWERED} == set(first)
    assert first != run(only_a, behaviour, seed=4)


def test_a_malformed_directive_is_refused_before_anything_is_drawn() -> None:
    with pytest.raises(Refused) as refused:
        charge("o1", subject="sim:timeout=3")
    assert (refused.value.code, refused.value.kind) == ("INVALID_DIRECTIVE", Refusal.INVALID)


# -- repeats, tombstones, protocols -------------------------------------------------------------


def test_a_repeated_out_trade_no_gets_the_same_trade_and_another_amount_is_refused() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        first = await operations.create_charge(sandbox, account, TOY, charge("o1", subject="sim:no_pay"))
        again = await operations.create_charge(sandbox, account, TOY, charge("o1", "10.0"))
        assert again.repeated and again.trade is first.trade
        with pytest.raises(Refused) as refused:
            await operations.create_charge(sandbox, account, TOY, charge("o1", "11.00"))
        assert (refused.value.code, refused.value.kind) == ("OUT_TRADE_NO_USED", Refusal.CONFLICT)
        assert len(account.trades) == 1

    run(scenario)


def test_a_close_before_the_charge_leaves_a_tombstone_that_refuses_it_for_good() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        tombstone = operations.close_charge(account, TOY, "o1")
        assert tombstone.is_tombstone and tombstone.status is TradeStatus.CLOSED
        assert operations.close_charge(account, TOY, "o1") is tombstone, "a second close changes nothing"
        with pytest.raises(Refused) as refused:
            await operations.create_charge(sandbox, account, TOY, charge("o1", subject="sim:pay_delay=0"))
        assert (refused.value.code, refused.value.kind) == ("TRADE_CLOSED", Refusal.CONFLICT)
        await settle(sandbox)
        assert tombstone.paid_at is None and notices(sandbox) == []
        # The tombstone is the toy protocol's: the same number through another protocol is a new trade.
        other = await operations.create_charge(sandbox, account, OTHER, charge("o1", subject="sim:no_pay"))
        assert other.fate is Fate.ANSWERED and other.trade is not None

    run(scenario)


def test_a_paid_trade_cannot_be_closed_and_a_closed_one_cannot_be_paid() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        await paid(sandbox, "o1")
        with pytest.raises(Refused) as refused:
            operations.close_charge(account, TOY, "o1")
        assert (refused.value.code, refused.value.kind) == ("TRADE_ALREADY_PAID", Refusal.CONFLICT)
        slow = await operations.create_charge(sandbox, account, TOY, charge("o2", subject="sim:pay_delay=50"))
        operations.close_charge(account, TOY, "o2")
        await settle(sandbox)
        assert slow.trade is not None and slow.trade.status is TradeStatus.CLOSED
        assert [n.trade.out_trade_no for n in notices(sandbox)] == ["o1"]

    run(scenario)


def test_each_protocol_keeps_its_own_numbers_at_a_shared_account() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        toy = await operations.create_charge(sandbox, account, TOY, charge("o1", "1.00", "sim:no_pay"))
        other = await operations.create_charge(
            sandbox, account, OTHER, charge("o1", "2.00", "sim:pay_delay=0")
        )
        assert toy.trade is not None and other.trade is not None
        assert toy.trade.trade_no != other.trade.trade_no
        assert (toy.trade.protocol, toy.trade.merchant_id) == (TOY, "ACC-1")
        assert operations.query_charge(account, TOY, trade_no=other.trade.trade_no) is None
        assert operations.query_charge(account, OTHER, trade_no=other.trade.trade_no) is other.trade
        await settle(sandbox)
        # The notification goes out in the protocol that created the trade, and only there.
        assert notices(sandbox, TOY) == []
        assert [n.trade for n in notices(sandbox, OTHER)] == [other.trade]

    run(scenario)


# -- answers that leave before or after the notification ------------------------------------


def test_out_of_order_notifies_first_and_answers_what_the_trade_was_before() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        outcome = await operations.create_charge(
            sandbox, account, TOY, charge("o1", subject="sim:out_of_order")
        )
        assert outcome.trade is not None and outcome.shown is not None
        assert outcome.trade.status is TradeStatus.SUCCESS, "paid before the answer"
        assert [n.trade for n in notices(sandbox)] == [outcome.trade], "notified before the answer"
        assert outcome.shown.status is TradeStatus.PENDING and outcome.shown.paid_at is None

    run(scenario)


def test_a_charge_that_settles_at_once_answers_paid_and_notifies_too() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        ask = charge("o1", subject="sim:pay_delay=60000", settles_at_once=True, extra={"card": "4242"})
        outcome = await operations.create_charge(sandbox, account, TOY, ask)
        assert outcome.shown is outcome.trade and outcome.trade is not None
        assert outcome.trade.status is TradeStatus.SUCCESS and outcome.trade.extra == {"card": "4242"}
        await settle(sandbox)
        assert [n.trade for n in notices(sandbox)] == [outcome.trade]

    run(scenario)


# -- refunds ------------------------------------------------------------------------------


def test_refunds_never_exceed_the_paid_amount_and_a_failed_one_frees_its_amount() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        await paid(sandbox, "o1", "10.00")
        first = await operations.create_refund(sandbox, account, TOY, refund("r1", "o1", "6.00"))
        assert isinstance(first, RefundAccepted) and first.shown.status is RefundStatus.PROCESSING
        over = await operations.create_refund(sandbox, account, TOY, refund("r2", "o1", "4.01"))
        assert over == RefundRejected("REFUND_AMOUNT_EXCEEDED", "at most 4.00 may still be refunded")
        await settle(sandbox)
        account.behaviour = Behaviour(refund_decline_rate=1.0)
        declined = await operations.create_refund(sandbox, account, TOY, refund("r3", "o1", "4.00"))
        await settle(sandbox)
        assert isinstance(declined, RefundAccepted)
        assert (declined.refund.status, declined.refund.code) == (RefundStatus.FAILED, "REFUND_DECLINED")
        account.behaviour = Behaviour()
        last = await operations.create_refund(sandbox, account, TOY, refund("r4", "o1", "4.00"))
        assert isinstance(last, RefundAccepted)
        await settle(sandbox)
        assert account.refundable(account.trades[(TOY, "o1")]) == cny("0.00")
        assert [n.refund.out_refund_no for n in notices(sandbox) if isinstance(n, RefundNotice)] == [
            "r1",
            "r3",
            "r4",
        ]

    run(scenario)


def test_refunds_are_turned_down_for_unknown_or_unpaid_trades_and_refused_in_another_currency() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        unknown = await operations.create_refund(sandbox, account, TOY, refund("r1", "nope", "1.00"))
        assert isinstance(unknown, RefundRejected) and unknown.code == "TRADE_NOT_FOUND"
        await operations.create_charge(sandbox, account, TOY, charge("o1", subject="sim:no_pay"))
        unpaid = await operations.create_refund(sandbox, account, TOY, refund("r2", "o1", "1.00"))
        assert isinstance(unpaid, RefundRejected) and unpaid.code == "TRADE_NOT_PAID"
        await paid(sandbox, "o2")
        with pytest.raises(Refused) as refused:
            await operations.create_refund(sandbox, account, TOY, refund("r3", "o2", "1.00", "USD"))
        assert (refused.value.code, refused.value.kind) == ("CURRENCY_MISMATCH", Refusal.INVALID)
        # Another protocol cannot refund the toy protocol's trade: it has no such trade.
        foreign = await operations.create_refund(sandbox, account, OTHER, refund("r4", "o2", "1.00"))
        assert isinstance(foreign, RefundRejected) and foreign.code == "TRADE_NOT_FOUND"
        assert account.refunds == {}

    run(scenario)


def test_a_repeated_out_refund_no_is_the_same_refund_and_another_amount_is_refused() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        await paid(sandbox, "o1")
        first = await operations.create_refund(sandbox, account, TOY, refund("r1", "o1", "3.00"))
        again = await operations.create_refund(sandbox, account, TOY, refund("r1", "o1", "3.00"))
        assert isinstance(first, RefundAccepted) and isinstance(again, RefundAccepted)
        assert again.repeated and again.refund is first.refund
        with pytest.raises(Refused) as refused:
            await operations.create_refund(sandbox, account, TOY, refund("r1", "o1", "4.00"))
        assert (refused.value.code, refused.value.kind) == ("OUT_REFUND_NO_USED", Refusal.CONFLICT)
        assert operations.query_refund(account, TOY, refund_no=first.refund.refund_no) is first.refund

    run(scenario)


def test_a_refund_that_settles_at_once_answers_its_result() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-1"]
        await paid(sandbox, "o1")
        outcome = await operations.create_refund(
            sandbox, account, TOY, refund("r1", "o1", "10.00", settles_at_once=True)
        )
        assert isinstance(outcome, RefundAccepted) and outcome.shown.status is RefundStatus.SUCCESS

    run(scenario, Behaviour(refund_delay_ms=60_000))


# -- payouts ------------------------------------------------------------------------------


def test_a_payout_is_decided_once_and_its_number_cannot_pay_another() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        account = sandbox.merchants["ACC-2"]
        ask = PayoutRequest("p1", "bank-1", cny("50.00"))
        first = operations.create_payout(account, TOY, ask)
        account.behaviour = Behaviour(payout_decline_rate=1.0)
        again = operations.create_payout(account, TOY, ask)
        assert again.repeated and again.payout is first.payout and first.payout.paid_at is not None
        with pytest.raises(Refused) as refused:
            operations.create_payout(account, TOY, PayoutRequest("p1", "bank-2", cny("50.00")))
        assert refused.value.code == "OUT_PAYOUT_NO_USED"
        declined = operations.create_payout(account, TOY, PayoutRequest("p2", "bank-1", cny("1.00")))
        assert declined.payout.code == "PAYOUT_DECLINED"
        assert operations.query_payout(account, OTHER, "p1") is None

    run(scenario)
