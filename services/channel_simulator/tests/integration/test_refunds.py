"""Refunds at the sandbox: a real channel's rules, notifications of type REFUND, and the
property that the refunds of a trade never add up to more than was paid."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paykit.money import Money

from services.channel_simulator.tests.integration.support import (
    MERCHANT_A,
    MERCHANT_B,
    Receiver,
    SimClient,
    eventually,
    new_no,
)


def test_refund_is_processing_then_succeeds_and_notifies_with_type_refund(
    sim: SimClient, receiver: Receiver
) -> None:
    trade_no, _ = sim.paid_trade(receiver, "100.00")
    refund_no, url = new_no("rfd"), receiver.new_url()
    answer = sim.refund(refund_no, trade_no, "30.00", url)
    assert answer.status == 200 and answer.signed
    assert answer.body["result"] == "PROCESSING"
    assert {k: answer.body[k] for k in ("out_refund_no", "out_trade_no", "amount", "currency")} == {
        "out_refund_no": refund_no,
        "out_trade_no": trade_no,
        "amount": "30.00",
        "currency": "CNY",
    }
    eventually(lambda: len(receiver.posts(url)) == 1, "the refund notification")
    post = receiver.posts(url)[0]
    assert post.signature_valid
    assert post.body["type"] == "REFUND"
    assert post.body["status"] == "SUCCESS"
    assert post.body["refund_no"] == answer.body["refund_no"]
    assert (post.body["out_refund_no"], post.body["out_trade_no"]) == (refund_no, trade_no)
    assert (post.body["amount"], post.body["currency"]) == ("30.00", "CNY")
    assert post.body["notify_id"] and post.body["refunded_at"]
    queried = sim.query_refund(refund_no)
    assert queried.body["result"] == "SUCCESS" and queried.signed


def test_refunds_beyond_the_paid_amount_are_refused(sim: SimClient, receiver: Receiver) -> None:
    trade_no, _ = sim.paid_trade(receiver, "10.00")
    url = receiver.new_url()
    assert sim.refund(new_no("rfd"), trade_no, "6.00", url).body["result"] == "PROCESSING"
    over = sim.refund(new_no("rfd"), trade_no, "4.01", url)
    assert (over.body["result"], over.body["code"]) == ("FAILED", "REFUND_AMOUNT_EXCEEDED")
    assert sim.refund(new_no("rfd"), trade_no, "4.00", url).body["result"] == "PROCESSING"
    last = sim.refund(new_no("rfd"), trade_no, "0.01", url)
    assert last.body["code"] == "REFUND_AMOUNT_EXCEEDED"


def test_repeated_out_refund_no_is_idempotent_and_another_amount_is_refused(
    sim: SimClient, receiver: Receiver
) -> None:
    trade_no, _ = sim.paid_trade(receiver, "10.00")
    refund_no, url = new_no("rfd"), receiver.new_url()
    first = sim.refund(refund_no, trade_no, "3.00", url)
    again = sim.refund(refund_no, trade_no, "3.00", url)
    assert again.body["refund_no"] == first.body["refund_no"]
    other = sim.refund(refund_no, trade_no, "4.00", url)
    assert other.status == 409
    assert (other.body["result"], other.body["code"]) == ("INVALID", "OUT_REFUND_NO_USED")
    trade = sim.trade(trade_no)
    assert trade is not None and len(trade["refunds"]) == 1


def test_refund_of_an_unpaid_or_unknown_trade_fails(sim: SimClient, receiver: Receiver) -> None:
    unpaid, url = new_no(), receiver.new_url()
    sim.charge(unpaid, url, subject="sim:no_pay")
    answer = sim.refund(new_no("rfd"), unpaid, "1.00", url)
    assert (answer.body["result"], answer.body["code"]) == ("FAILED", "TRADE_NOT_PAID")
    unknown = sim.refund(new_no("rfd"), new_no(), "1.00", url)
    assert (unknown.body["result"], unknown.body["code"]) == ("FAILED", "TRADE_NOT_FOUND")
    assert sim.query_refund(new_no("rfd")).body == {"result": "NOT_FOUND"}


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("1.001", "CNY", "INVALID_REQUEST"),
        ("0.00", "CNY", "INVALID_REQUEST"),
        ("-1.00", "CNY", "INVALID_REQUEST"),
        ("1e2", "CNY", "INVALID_REQUEST"),
        ("1.00", "USD", "CURRENCY_MISMATCH"),
    ],
)
def test_refund_amount_must_be_exact_positive_and_in_the_trade_currency(
    sim: SimClient, receiver: Receiver, amount: str, currency: str, code: str
) -> None:
    trade_no, _ = sim.paid_trade(receiver, "10.00")
    answer = sim.refund(new_no("rfd"), trade_no, amount, receiver.new_url(), currency)
    assert answer.status == 400
    assert (answer.body["result"], answer.body["code"]) == ("INVALID", code)


def test_declined_refund_fails_notifies_failed_and_frees_the_amount(
    sim: SimClient, receiver: Receiver
) -> None:
    trade_no, _ = sim.paid_trade(receiver, "10.00")
    sim.configure({"refund_decline_rate": 1.0}, MERCHANT_A)
    refund_no, url = new_no("rfd"), receiver.new_url()
    assert sim.refund(refund_no, trade_no, "10.00", url).body["result"] == "PROCESSING"
    eventually(lambda: len(receiver.posts(url)) == 1, "the FAILED refund notification")
    assert receiver.posts(url)[0].body["status"] == "FAILED"
    failed = sim.query_refund(refund_no).body
    assert (failed["result"], failed["code"]) == ("FAILED", "REFUND_DECLINED")
    sim.configure({"refund_decline_rate": 0.0}, MERCHANT_A)
    retry = new_no("rfd")
    assert sim.refund(retry, trade_no, "10.00", url).body["result"] == "PROCESSING"
    sim.wait_refund(retry, "SUCCESS")


def test_refund_delay_holds_the_refund_in_processing(sim: SimClient, receiver: Receiver) -> None:
    trade_no, _ = sim.paid_trade(receiver)
    sim.configure({"refund_delay_ms": 800}, MERCHANT_A)
    refund_no = new_no("rfd")
    sim.refund(refund_no, trade_no, "1.00", receiver.new_url())
    time.sleep(0.4)
    assert sim.query_refund(refund_no).body["result"] == "PROCESSING"
    sim.wait_refund(refund_no, "SUCCESS")


def test_out_of_order_trade_delivers_the_refund_notification_before_the_processing_answer(
    sim: SimClient, receiver: Receiver
) -> None:
    trade_no, _ = sim.paid_trade(receiver, "10.00", subject="sim:out_of_order")
    sim.configure({"refund_delay_ms": 5_000}, MERCHANT_A)
    url = receiver.new_url()
    answer = sim.refund(new_no("rfd"), trade_no, "2.00", url)
    assert answer.body["result"] == "PROCESSING"
    posts = receiver.posts(url)
    assert len(posts) == 1 and posts[0].body["status"] == "SUCCESS"


def test_trade_directives_govern_refund_notifications(sim: SimClient, receiver: Receiver) -> None:
    dropped, _ = sim.paid_trade(receiver, subject="sim:drop_notify")
    doubled, _ = sim.paid_trade(receiver, subject="sim:duplicate_notify=2")
    drop_no, drop_url = new_no("rfd"), receiver.new_url()
    double_no, double_url = new_no("rfd"), receiver.new_url()
    sim.refund(drop_no, dropped, "1.00", drop_url)
    sim.refund(double_no, doubled, "1.00", double_url)
    eventually(lambda: len(receiver.posts(double_url)) == 2, "two copies of the refund notification")
    sim.wait_refund(drop_no, "SUCCESS")
    time.sleep(0.3)
    assert receiver.posts(drop_url) == [], "only a query reveals the dropped refund's outcome"


def test_refund_at_one_merchant_cannot_touch_the_other_merchants_trade(
    sim: SimClient, receiver: Receiver
) -> None:
    trade_no, _ = sim.paid_trade(receiver)
    answer = sim.refund(new_no("rfd"), trade_no, "1.00", receiver.new_url(), merchant=MERCHANT_B)
    assert answer.body["code"] == "TRADE_NOT_FOUND"


# -- property: refunds of a trade never exceed it -------------------------------------

_TRADE_MINOR = st.integers(min_value=1, max_value=5_000)
_STEP = st.tuples(st.booleans(), st.integers(min_value=1, max_value=6_000))


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    trade_minor=_TRADE_MINOR, steps=st.lists(_STEP, min_size=1, max_size=8), decline=st.sampled_from([0, 0.5])
)
def test_refunds_never_add_up_to_more_than_the_trade_under_random_sequences(
    sim: SimClient, receiver: Receiver, trade_minor: int, steps: list[tuple[bool, int]], decline: float
) -> None:
    sim.configure({"refund_decline_rate": decline, "refund_delay_ms": 5}, MERCHANT_A)
    paid = Money(trade_minor, "CNY")
    trade_no, _ = sim.paid_trade(receiver, paid.format())
    url = receiver.new_url()
    issued: dict[str, Money] = {}
    for repeat, minor in steps:
        amount = Money(minor, "CNY")
        if repeat and issued:
            refund_no = next(iter(issued))
            answer = sim.refund(refund_no, trade_no, issued[refund_no].format(), url)
            assert answer.body["out_refund_no"] == refund_no, "a repeat returns the refund it repeats"
            continue
        refundable_before = _refundable(sim, trade_no, paid)
        refund_no = new_no("rfd")
        answer = sim.refund(refund_no, trade_no, amount.format(), url)
        if amount <= refundable_before:
            # Refundable only grows between the look and the request (a refund may fail).
            assert answer.body["result"] == "PROCESSING", answer
        if answer.body["result"] == "PROCESSING":
            issued[refund_no] = amount
        else:
            assert answer.body["code"] == "REFUND_AMOUNT_EXCEEDED"
        assert _refundable(sim, trade_no, paid).minor >= 0
    for refund_no in issued:
        eventually(lambda no=refund_no: sim.query_refund(no).body["result"] != "PROCESSING", "refund done")
    refunds = sim.trade(trade_no)["refunds"]  # type: ignore[index]
    succeeded = sum(Money.parse(r["amount"], "CNY").minor for r in refunds if r["status"] == "SUCCESS")
    assert succeeded <= paid.minor


def _refundable(sim: SimClient, trade_no: str, paid: Money) -> Money:
    trade = sim.trade(trade_no)
    assert trade is not None
    committed = sum(
        Money.parse(r["amount"], "CNY").minor for r in trade["refunds"] if r["status"] != "FAILED"
    )
    return paid - Money(committed, "CNY")
