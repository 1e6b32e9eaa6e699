"""Closing a charge: an unpaid trade can no longer be paid, a close that overtakes its charge
leaves a tombstone that refuses the charge, and a paid trade cannot be closed."""

from __future__ import annotations

import time

from services.channel_simulator.tests.integration.support import (
    MERCHANT_A,
    MERCHANT_B,
    Receiver,
    SimClient,
    new_no,
)


def test_close_of_a_pending_trade_closes_it_and_query_says_closed(sim: SimClient, receiver: Receiver) -> None:
    no, url = new_no(), receiver.new_url()
    sim.charge(no, url, subject="sim:no_pay")
    answer = sim.close(no)
    assert answer.status == 200 and answer.signed
    assert answer.body == {"result": "CLOSED"}
    assert sim.query(no).body["result"] == "CLOSED"
    again = sim.charge(no, url)
    assert (again.status, again.body["code"]) == (409, "TRADE_CLOSED")


def test_payer_who_comes_after_the_close_cannot_pay(sim: SimClient, receiver: Receiver) -> None:
    no, url = new_no(), receiver.new_url()
    sim.charge(no, url, "30.00", subject="sim:pay_delay=300")
    assert sim.close(no).body == {"result": "CLOSED"}
    time.sleep(0.6)
    assert sim.query(no).body["result"] == "CLOSED"
    assert receiver.posts(url) == []
    trade = sim.trade(no)
    assert trade is not None and trade["paid_at"] is None


def test_close_of_an_unknown_trade_leaves_a_tombstone_that_refuses_a_later_charge(
    sim: SimClient, receiver: Receiver
) -> None:
    no, url = new_no(), receiver.new_url()
    before = sim.summary(MERCHANT_A)
    assert sim.close(no).body == {"result": "CLOSED"}
    late = sim.charge(no, url, "12.00", subject="sim:pay_delay=0")
    assert late.status == 409
    assert (late.body["result"], late.body["code"]) == ("INVALID", "TRADE_CLOSED")
    time.sleep(0.3)
    assert sim.query(no).body["result"] == "CLOSED"
    assert receiver.posts(url) == []
    assert sim.summary(MERCHANT_A) == before, "no money taken on a tombstone"


def test_close_twice_is_closed_twice(sim: SimClient, receiver: Receiver) -> None:
    no = new_no()
    sim.charge(no, receiver.new_url(), subject="sim:no_pay")
    assert sim.close(no).body == {"result": "CLOSED"}
    assert sim.close(no).body == {"result": "CLOSED"}


def test_close_of_a_paid_trade_is_refused_as_already_paid(sim: SimClient, receiver: Receiver) -> None:
    no, _url = sim.paid_trade(receiver)
    answer = sim.close(no)
    assert answer.status == 409 and answer.signed
    assert (answer.body["result"], answer.body["code"]) == ("INVALID", "TRADE_ALREADY_PAID")
    assert sim.query(no).body["result"] == "SUCCESS"


def test_close_at_one_merchant_leaves_the_other_merchants_trade_alone(
    sim: SimClient, receiver: Receiver
) -> None:
    no = new_no()
    sim.charge(no, receiver.new_url(), subject="sim:no_pay", merchant=MERCHANT_B)
    assert sim.close(no, MERCHANT_A).body == {"result": "CLOSED"}
    assert sim.query(no, MERCHANT_B).body["result"] == "PENDING"
    assert sim.query(no, MERCHANT_A).body["result"] == "CLOSED"
