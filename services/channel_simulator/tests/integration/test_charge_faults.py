"""Charges and every fault mode, switched per request (a `sim:` directive) and per merchant (Behaviour)."""

from __future__ import annotations

import socket
import time
import urllib.error

import pytest

from services.channel_simulator.tests.integration.support import (
    MERCHANT_A,
    MERCHANT_B,
    Receiver,
    SimClient,
    eventually,
    new_no,
)

# The client gives up on a lost answer after this; the sandbox holds it for hang_s (30 s).
CLIENT_TIMEOUT_S = 1.0
QUIET_S = 0.4  # long enough for a notification that should not come (pay delay is 0 or 50 ms)
LOST = (TimeoutError, socket.timeout, urllib.error.URLError, ConnectionError)


def test_charge_is_pending_then_paid_and_notified_with_type_payment(
    sim: SimClient, receiver: Receiver
) -> None:
    no, url = new_no(), receiver.new_url()
    answer = sim.charge(no, url, "19.99")
    assert answer.status == 200 and answer.signed
    assert answer.body["result"] == "PENDING"
    assert answer.body["qr_code"] == f"simpay://qr/{answer.body['trade_no']}"
    eventually(lambda: len(receiver.posts(url)) == 1, "the payment notification")
    post = receiver.posts(url)[0]
    assert post.signature_valid and post.merchant == MERCHANT_A
    assert post.body["type"] == "PAYMENT"
    assert post.body["status"] == "SUCCESS"
    assert (post.body["amount"], post.body["currency"], post.body["out_trade_no"]) == ("19.99", "CNY", no)
    assert sim.query(no).body["result"] == "SUCCESS"


def test_same_out_trade_no_lives_separately_at_two_merchants(sim: SimClient, receiver: Receiver) -> None:
    no = new_no()
    a = sim.charge(no, receiver.new_url(), "10.00", subject="sim:no_pay", merchant=MERCHANT_A)
    b = sim.charge(no, receiver.new_url(), "25.00", merchant=MERCHANT_B)
    assert a.body["result"] == b.body["result"] == "PENDING"
    assert a.body["trade_no"] != b.body["trade_no"]
    sim.wait_status(no, "SUCCESS", MERCHANT_B)
    assert sim.query(no, MERCHANT_A).body["result"] == "PENDING"
    assert sim.query(no, MERCHANT_A).body["amount"] == "10.00"
    assert sim.query(no, MERCHANT_B).body["amount"] == "25.00"


def test_repeated_charge_returns_the_trade_and_another_amount_is_refused(
    sim: SimClient, receiver: Receiver
) -> None:
    no, url = new_no(), receiver.new_url()
    first = sim.charge(no, url, "5.00", subject="sim:no_pay")
    again = sim.charge(no, url, "5.0", subject="sim:no_pay")
    assert again.body["trade_no"] == first.body["trade_no"]
    other = sim.charge(no, url, "6.00")
    assert other.status == 409 and other.body["code"] == "OUT_TRADE_NO_USED"


@pytest.mark.parametrize("how", ["directive", "global"])
def test_timeout_loses_the_request_no_trade_no_answer(sim: SimClient, receiver: Receiver, how: str) -> None:
    no, url = new_no(), receiver.new_url()
    if how == "global":
        sim.configure({"timeout_rate": 1.0}, MERCHANT_A)
    with pytest.raises(LOST):
        sim.charge(no, url, subject="sim:timeout" if how == "directive" else "", timeout_s=CLIENT_TIMEOUT_S)
    assert sim.trade(no) is None
    assert sim.query(no).body == {"result": "NOT_FOUND"}


def test_hang_s_bounds_how_long_a_lost_request_holds_its_connection(
    sim: SimClient, receiver: Receiver
) -> None:
    sim.configure({"hang_s": 0.3}, MERCHANT_A)
    started = time.monotonic()
    with pytest.raises(LOST):
        sim.charge(new_no(), receiver.new_url(), subject="sim:timeout", timeout_s=5.0)
    assert time.monotonic() - started < 3.0, "dropped after hang_s, not after the client's timeout"


@pytest.mark.parametrize("how", ["directive", "global"])
def test_success_after_timeout_takes_the_money_but_never_answers(
    sim: SimClient, receiver: Receiver, how: str
) -> None:
    no, url = new_no(), receiver.new_url()
    if how == "global":
        sim.configure({"success_after_timeout_rate": 1.0}, MERCHANT_A)
    subject = "sim:success_after_timeout" if how == "directive" else ""
    with pytest.raises(LOST):
        sim.charge(no, url, "8.88", subject=subject, timeout_s=CLIENT_TIMEOUT_S)
    sim.wait_status(no, "SUCCESS")
    eventually(lambda: len(receiver.posts(url)) == 1, "the notification of the paid trade")
    # A retry of the lost request finds the trade (channels are idempotent on out_trade_no).
    assert sim.charge(no, url, "8.88", subject=subject).body["result"] == "SUCCESS"


@pytest.mark.parametrize("how", ["directive", "global"])
def test_decline_stores_no_trade(sim: SimClient, receiver: Receiver, how: str) -> None:
    no = new_no()
    if how == "global":
        sim.configure({"decline_rate": 1.0}, MERCHANT_A)
    answer = sim.charge(no, receiver.new_url(), subject="sim:decline" if how == "directive" else "")
    assert answer.status == 200 and answer.signed
    assert (answer.body["result"], answer.body["code"]) == ("DECLINED", "RISK_DECLINED")
    assert sim.trade(no) is None


@pytest.mark.parametrize("how", ["directive", "global"])
def test_delay_notify_sends_the_notification_later(sim: SimClient, receiver: Receiver, how: str) -> None:
    no, url = new_no(), receiver.new_url()
    if how == "global":
        sim.configure({"notify_delay_ms": 800}, MERCHANT_A)
    subject = "sim:pay_delay=0" + (" sim:delay_notify=800" if how == "directive" else "")
    sim.charge(no, url, subject=subject)
    sim.wait_status(no, "SUCCESS")
    time.sleep(QUIET_S)
    assert receiver.posts(url) == [], "paid, but the notification is still held back"
    eventually(lambda: len(receiver.posts(url)) == 1, "the delayed notification")


@pytest.mark.parametrize("how", ["directive", "global"])
def test_duplicate_notify_sends_each_notification_n_times(
    sim: SimClient, receiver: Receiver, how: str
) -> None:
    no, url = new_no(), receiver.new_url()
    if how == "global":
        sim.configure({"duplicate_notifications": 3}, MERCHANT_A)
    sim.charge(no, url, subject="sim:duplicate_notify=3" if how == "directive" else "")
    eventually(lambda: sim.trade(no)["notifications_acked"] == 3, "three acknowledged copies")  # type: ignore[index]
    posts = receiver.posts(url)
    assert len(posts) == 3
    assert len({p.body["notify_id"] for p in posts}) == 1, "copies of one notification, one notify_id"


def test_each_copy_is_retried_until_acknowledged(sim: SimClient, receiver: Receiver) -> None:
    no, url = new_no(), receiver.new_url(refuse_first=1)
    sim.charge(no, url, subject="sim:pay_delay=0")
    eventually(lambda: sim.trade(no)["notifications_acked"] == 1, "the retried copy acknowledged")  # type: ignore[index]
    trade = sim.trade(no)
    assert trade is not None and trade["notifications_sent"] == 2
    assert len(receiver.posts(url)) == 2


@pytest.mark.parametrize("how", ["directive", "global"])
def test_drop_notify_pays_but_never_notifies(sim: SimClient, receiver: Receiver, how: str) -> None:
    no, url = new_no(), receiver.new_url()
    if how == "global":
        sim.configure({"drop_notifications": True}, MERCHANT_A)
    sim.charge(no, url, subject="sim:pay_delay=0" + (" sim:drop_notify" if how == "directive" else ""))
    sim.wait_status(no, "SUCCESS")
    time.sleep(QUIET_S)
    assert receiver.posts(url) == []


@pytest.mark.parametrize("how", ["directive", "global"])
def test_out_of_order_notifies_before_answering_with_the_stale_pending_view(
    sim: SimClient, receiver: Receiver, how: str
) -> None:
    no, url = new_no(), receiver.new_url()
    if how == "global":
        sim.configure({"out_of_order_rate": 1.0, "pay_delay_ms": 5_000}, MERCHANT_A)
    answer = sim.charge(no, url, subject="sim:out_of_order" if how == "directive" else "")
    # The answer says PENDING, yet the notification was already delivered and acknowledged.
    assert answer.body["result"] == "PENDING"
    posts = receiver.posts(url)
    assert len(posts) == 1 and posts[0].body["status"] == "SUCCESS"
    trade = sim.trade(no)
    assert trade is not None and trade["notifications_acked"] == 1
    assert sim.query(no).body["result"] == "SUCCESS"


@pytest.mark.parametrize("how", ["directive", "global"])
def test_no_pay_leaves_the_trade_pending(sim: SimClient, receiver: Receiver, how: str) -> None:
    no, url = new_no(), receiver.new_url()
    if how == "global":
        sim.configure({"pay_rate": 0.0}, MERCHANT_A)
    sim.charge(no, url, subject="sim:no_pay" if how == "directive" else "")
    time.sleep(QUIET_S)
    assert sim.query(no).body["result"] == "PENDING"
    assert receiver.posts(url) == []


@pytest.mark.parametrize("how", ["directive", "global"])
def test_pay_delay_holds_the_payer_back(sim: SimClient, receiver: Receiver, how: str) -> None:
    no, url = new_no(), receiver.new_url()
    if how == "global":
        sim.configure({"pay_delay_ms": 800}, MERCHANT_A)
    sim.charge(no, url, subject="sim:pay_delay=800" if how == "directive" else "")
    time.sleep(QUIET_S)
    assert sim.query(no).body["result"] == "PENDING"
    sim.wait_status(no, "SUCCESS")


def test_unavailable_answers_503_to_every_api_call_of_that_merchant_only(
    sim: SimClient, receiver: Receiver
) -> None:
    paid, url = sim.paid_trade(receiver)
    sim.configure({"unavailable": True}, MERCHANT_A)
    for answer in (
        sim.charge(new_no(), url),
        sim.query(paid),
        sim.close(new_no()),
        sim.refund(new_no("rfd"), paid, "1.00", url),
        sim.query_refund(new_no("rfd")),
    ):
        assert answer.status == 503 and answer.body["error"] == "CHANNEL_UNAVAILABLE"
    assert sim.charge(new_no(), url, merchant=MERCHANT_B).body["result"] == "PENDING"
    status, _config = sim.admin(f"/v1/admin/config?merchant={MERCHANT_A}")
    assert status == 200, "admin keeps working through an outage"


@pytest.mark.parametrize(
    ("subject", "fragment"),
    [
        ("sim:explode", "unknown directive 'sim:explode'"),
        ("sim:pay_delay", "needs an integer value"),
        ("sim:pay_delay=-1", "needs an integer value"),
        ("sim:duplicate_notify=0", "within 1..10"),
        ("sim:no_pay=1", "takes no value"),
        ("sim:no_pay sim:no_pay", "given twice"),
    ],
)
def test_unknown_or_malformed_directive_is_refused(
    sim: SimClient, receiver: Receiver, subject: str, fragment: str
) -> None:
    no = new_no()
    answer = sim.charge(no, receiver.new_url(), subject=f"order 42 {subject}")
    assert answer.status == 400 and answer.signed
    assert (answer.body["result"], answer.body["code"]) == ("INVALID", "INVALID_DIRECTIVE")
    assert fragment in answer.body["message"]
    assert sim.trade(no) is None


def test_trade_remembers_its_directives(sim: SimClient, receiver: Receiver) -> None:
    no = new_no()
    sim.charge(no, receiver.new_url(), subject="Coffee sim:no_pay sim:delay_notify=5")
    trade = sim.trade(no)
    assert trade is not None
    assert trade["directives"] == ["no_pay", "delay_notify=5"]
    assert trade["subject"] == "Coffee sim:no_pay sim:delay_notify=5"
