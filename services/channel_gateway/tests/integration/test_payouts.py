"""Payouts through the Gateway against the sandbox and PostgreSQL: a settlement is paid out once,
whatever is repeated, declined, or lost on the way."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from channel_gateway.adapters.connectors.base import ChannelConnector
from channel_gateway.domain.channel import (
    ChannelUnavailable,
    PayoutCommand,
    PayoutReply,
    PayoutState,
    RawExchange,
)
from channel_gateway.service_layer.services import Gateway
from paykit.errors import AlreadyExists, Unavailable
from paykit.ids import IdKind, new_id
from paykit.money import Money

from services.channel_gateway.tests.integration.support import (
    CHANNEL_A,
    CHANNEL_B,
    MERCHANT_A,
    MERCHANT_B,
    Stack,
    unique,
)


def _command(amount: Money | None = None, merchant_id: str = "") -> PayoutCommand:
    return PayoutCommand(
        settlement_id=new_id(IdKind.SETTLEMENT),
        merchant_id=merchant_id or unique("mch"),
        amount=amount or Money(250_000, "CNY"),
    )


def _at_channel(stack: Stack, merchant: str, settlement_id: str) -> list[dict[str, Any]]:
    """The sandbox's payouts numbered `settlement_id` at `merchant` (as its operator sees them)."""
    return [
        p
        for p in stack.sandbox(f"/v1/admin/payouts?merchant={merchant}")
        if p["out_payout_no"] == settlement_id
    ]


def _paid_out_minor(stack: Stack, merchant: str, currency: str = "CNY") -> int:
    figures = stack.sandbox(f"/v1/admin/summary?merchant={merchant}")["merchants"][merchant]
    return int(figures.get(currency, {}).get("paid_out", {}).get("amount_minor", 0))


def _exchanges(stack: Stack, settlement_id: str) -> list[Any]:
    return stack.rows(
        "select operation, response_status, error, payment_id from channel_exchanges "
        "where settlement_id=:s order by id",
        s=settlement_id,
    )


def _stored(stack: Stack, settlement_id: str) -> Any:
    [row] = stack.rows("select * from payouts where settlement_id=:s", s=settlement_id)
    return row


def test_payout_is_paid_and_stored_with_its_raw_exchange(stack: Stack) -> None:
    command = _command(Money(123_456, "CNY"))
    reply = stack.loop.run(stack.gateway.payout(command, CHANNEL_A))
    assert reply.state is PayoutState.PAID
    assert reply.payout_reference.startswith("SIMP") and not reply.failure_code

    row = _stored(stack, command.settlement_id)
    assert (row.merchant_id, row.channel, row.amount_minor, row.currency) == (
        command.merchant_id,
        CHANNEL_A,
        123_456,
        "CNY",
    )
    assert (row.state, row.payout_reference, row.failure_code) == ("PAID", reply.payout_reference, None)
    assert row.updated_at >= row.created_at
    [exchange] = _exchanges(stack, command.settlement_id)
    assert (exchange.operation, exchange.response_status, exchange.error) == ("payout", 200, None)
    assert exchange.payment_id is None, "a payout's exchange is about a settlement, not a payment"
    [at_channel] = _at_channel(stack, MERCHANT_A, command.settlement_id)
    assert (at_channel["status"], at_channel["payout_no"]) == ("PAID", reply.payout_reference)
    assert (at_channel["merchant_ref"], at_channel["amount"]) == (command.merchant_id, "1234.56")


def test_repeated_payout_gets_the_same_answer_and_the_channel_pays_once(stack: Stack) -> None:
    before = _paid_out_minor(stack, MERCHANT_A)
    command = _command(Money(40_000, "CNY"))
    first = stack.loop.run(stack.gateway.payout(command, CHANNEL_A))
    again = stack.loop.run(stack.gateway.payout(command, CHANNEL_A))
    assert again == first
    assert len(_exchanges(stack, command.settlement_id)) == 1, "answered from the row, the channel not asked"
    assert len(_at_channel(stack, MERCHANT_A, command.settlement_id)) == 1
    assert _paid_out_minor(stack, MERCHANT_A) - before == 40_000


def test_declined_payout_is_failed_with_the_channel_code_and_stays_failed(stack: Stack) -> None:
    before = _paid_out_minor(stack, MERCHANT_B)
    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"payout_decline_rate": 1.0})
    command = _command()
    reply = stack.loop.run(stack.gateway.payout(command, CHANNEL_B))
    assert (reply.state, reply.failure_code) == (PayoutState.FAILED, "PAYOUT_DECLINED")
    assert reply.failure_message
    row = _stored(stack, command.settlement_id)
    assert (row.state, row.failure_code, row.failure_message) == (
        "FAILED",
        "PAYOUT_DECLINED",
        reply.failure_message,
    )
    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"payout_decline_rate": 0.0})
    # FAILED is final: accounting has made the amount available again; a repeat must not pay it.
    assert stack.loop.run(stack.gateway.payout(command, CHANNEL_B)) == reply
    assert len(_exchanges(stack, command.settlement_id)) == 1
    assert _paid_out_minor(stack, MERCHANT_B) == before


def test_payout_during_an_outage_is_unavailable_and_the_retry_after_recovery_pays_exactly_once(
    stack: Stack,
) -> None:
    before = _paid_out_minor(stack, MERCHANT_B)
    command = _command(Money(77_700, "CNY"))
    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"unavailable": True})
    with pytest.raises(Unavailable, match="HTTP 503"):
        stack.loop.run(stack.gateway.payout(command, CHANNEL_B))
    assert _stored(stack, command.settlement_id).state is None, "stored before the channel was asked"
    [failed] = _exchanges(stack, command.settlement_id)
    assert failed.response_status == 503 and "HTTP 503" in failed.error
    assert _at_channel(stack, MERCHANT_B, command.settlement_id) == []

    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"unavailable": False})
    paid = stack.loop.run(stack.gateway.payout(command, CHANNEL_B))
    assert paid.state is PayoutState.PAID
    assert stack.loop.run(stack.gateway.payout(command, CHANNEL_B)) == paid
    assert [e.response_status for e in _exchanges(stack, command.settlement_id)] == [503, 200]
    assert len(_at_channel(stack, MERCHANT_B, command.settlement_id)) == 1
    assert _paid_out_minor(stack, MERCHANT_B) - before == 77_700
    assert _stored(stack, command.settlement_id).state == "PAID"


def test_a_retry_racing_the_first_request_pays_once_and_both_get_the_same_answer(stack: Stack) -> None:
    before = _paid_out_minor(stack, MERCHANT_A)
    command = _command(Money(62_500, "CNY"))

    async def twice() -> list[PayoutReply]:
        return list(
            await asyncio.gather(
                stack.gateway.payout(command, CHANNEL_A), stack.gateway.payout(command, CHANNEL_A)
            )
        )

    first, second = stack.loop.run(twice())
    assert first == second and first.state is PayoutState.PAID
    assert len(_at_channel(stack, MERCHANT_A, command.settlement_id)) == 1
    assert _paid_out_minor(stack, MERCHANT_A) - before == 62_500
    assert _stored(stack, command.settlement_id).payout_reference == first.payout_reference


class _AnswerLost:
    """The real connector, except that a payout's answer never comes back (the network dropped it
    after the channel paid): what a gateway sees when its call to the channel times out."""

    def __init__(self, real: ChannelConnector) -> None:
        self._real = real
        self.name = real.name

    async def payout(self, command: PayoutCommand) -> tuple[PayoutReply, RawExchange]:
        _reply, raw = await self._real.payout(command)
        lost = dataclasses.replace(raw, response_status=0, response_body="")
        raise ChannelUnavailable("payout: TimeoutError: the answer was lost", lost)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_payout_whose_answer_was_lost_is_asked_again_and_the_channel_pays_only_once(stack: Stack) -> None:
    before = _paid_out_minor(stack, MERCHANT_A)
    command = _command(Money(31_400, "CNY"))
    lossy = Gateway(
        stack.gateway.sessions,
        {CHANNEL_A: _AnswerLost(stack.gateway.connector(CHANNEL_A))},  # type: ignore[dict-item]
        stack.gateway.sink,
        stack.gateway.notify_url_for,
    )
    with pytest.raises(Unavailable, match="answer was lost"):
        stack.loop.run(lossy.payout(command, CHANNEL_A))
    assert _stored(stack, command.settlement_id).state is None
    [made] = _at_channel(stack, MERCHANT_A, command.settlement_id)
    assert made["status"] == "PAID", "the channel paid; only the answer was lost"

    # Accounting retries; the same out_payout_no reaches the channel, which answers with its payout.
    retried = stack.loop.run(stack.gateway.payout(command, CHANNEL_A))
    assert (retried.state, retried.payout_reference) == (PayoutState.PAID, made["payout_no"])
    assert len(_at_channel(stack, MERCHANT_A, command.settlement_id)) == 1
    assert _paid_out_minor(stack, MERCHANT_A) - before == 31_400
    assert [e.operation for e in _exchanges(stack, command.settlement_id)] == ["payout", "payout"]


@pytest.mark.parametrize("change", ["amount", "currency", "merchant", "channel"])
def test_same_settlement_for_another_payout_is_already_exists_and_pays_nothing_more(
    stack: Stack, change: str
) -> None:
    command = _command(Money(10_000, "CNY"))
    first = stack.loop.run(stack.gateway.payout(command, CHANNEL_A))
    other = {
        "amount": dataclasses.replace(command, amount=Money(10_001, "CNY")),
        "currency": dataclasses.replace(command, amount=Money(10_000, "USD")),
        "merchant": dataclasses.replace(command, merchant_id=unique("mch")),
        "channel": command,
    }[change]
    channel = CHANNEL_B if change == "channel" else CHANNEL_A
    with pytest.raises(AlreadyExists, match=command.settlement_id) as caught:
        stack.loop.run(stack.gateway.payout(other, channel))
    assert caught.value.field == "settlement_id"
    row = _stored(stack, command.settlement_id)
    assert (row.amount_minor, row.channel, row.payout_reference) == (
        10_000,
        CHANNEL_A,
        first.payout_reference,
    )
    assert len(_exchanges(stack, command.settlement_id)) == 1
    assert _at_channel(stack, MERCHANT_B, command.settlement_id) == []


def test_a_number_the_channel_used_for_another_payout_is_already_exists_and_records_no_answer(
    stack: Stack,
) -> None:
    command = _command(Money(5_000, "CNY"))
    # Something other than this gateway already used the settlement id at the channel, for another amount.
    elsewhere = dataclasses.replace(command, amount=Money(4_999, "CNY"))
    stack.loop.run(stack.gateway.connector(CHANNEL_A).payout(elsewhere))
    with pytest.raises(AlreadyExists, match="holds another payout"):
        stack.loop.run(stack.gateway.payout(command, CHANNEL_A))
    # Never FAILED: money moved under that number, and FAILED would let accounting pay it again.
    assert _stored(stack, command.settlement_id).state is None
    [exchange] = _exchanges(stack, command.settlement_id)
    assert exchange.response_status == 409 and "another payout" in exchange.error
