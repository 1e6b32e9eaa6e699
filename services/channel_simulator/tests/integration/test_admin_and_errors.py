"""The admin panel (config per merchant, trades, summary) and the JSON answer to every error."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from channel_simulator.behaviour import Behaviour
from channel_simulator.protocols.simpay.signing import signed_headers

from services.channel_simulator.tests.integration.support import (
    KEY,
    MERCHANT_A,
    MERCHANT_B,
    Receiver,
    SimClient,
    new_no,
)


def test_config_with_a_merchant_changes_only_that_merchant(sim: SimClient) -> None:
    changed = sim.configure({"decline_rate": 0.5, "hang_s": 2}, MERCHANT_B)
    assert changed["decline_rate"] == 0.5 and changed["hang_s"] == 2.0
    everyone = sim.admin("/v1/admin/config")[1]
    assert everyone[MERCHANT_A] == Behaviour().as_dict()
    assert everyone[MERCHANT_B]["decline_rate"] == 0.5


def test_config_without_a_merchant_changes_every_merchant(sim: SimClient) -> None:
    changed = sim.configure({"drop_notifications": True})
    assert {m: c["drop_notifications"] for m, c in changed.items()} == {MERCHANT_A: True, MERCHANT_B: True}


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"decline_rat": 0.1}, "unknown settings ['decline_rat']"),
        ({"decline_rate": 1.5}, "decline_rate must be within"),
        ({"decline_rate": "0.1"}, "decline_rate must be a number"),
        ({"pay_delay_ms": 1.5}, "pay_delay_ms must be an integer"),
        ({"pay_delay_ms": True}, "pay_delay_ms must be a number"),
        ({"unavailable": 1}, "unavailable must be true or false"),
        ({"duplicate_notifications": 0}, "duplicate_notifications must be within"),
        ({"payout_decline_rate": -0.1}, "payout_decline_rate must be within"),
    ],
)
def test_bad_config_is_refused_whole_with_a_clear_message(
    sim: SimClient, changes: dict[str, object], fragment: str
) -> None:
    status, body = sim.admin("/v1/admin/config", {"pay_rate": 0.5, **changes})
    assert status == 400 and body["error"] == "INVALID_CONFIG"
    assert fragment in body["message"]
    assert sim.admin("/v1/admin/config")[1][MERCHANT_A]["pay_rate"] == 1.0, "nothing applied"


def test_admin_names_unknown_merchants_and_malformed_bodies(sim: SimClient) -> None:
    status, body = sim.admin("/v1/admin/trades?merchant=NOPE")
    assert (status, body["error"]) == (404, "UNKNOWN_MERCHANT")
    status, body = sim.admin("/v1/admin/config", raw=b"{not json")
    assert (status, body["error"]) == (400, "INVALID_CONFIG")
    status, body = sim.admin("/v1/admin/config", [1, 2])
    assert status == 400 and "JSON object" in body["message"]


def test_trades_list_per_merchant_with_refunds(sim: SimClient, receiver: Receiver) -> None:
    paid, _ = sim.paid_trade(receiver, "10.00")
    sim.refund(new_no("rfd"), paid, "2.50", receiver.new_url())
    at_b = new_no()
    sim.charge(at_b, receiver.new_url(), subject="sim:no_pay", merchant=MERCHANT_B)
    trade = sim.trade(paid)
    assert trade is not None
    assert trade["merchant"] == MERCHANT_A
    assert [(r["amount"], r["out_trade_no"]) for r in trade["refunds"]] == [("2.50", paid)]
    assert sim.trade(at_b, MERCHANT_A) is None
    assert sim.trade(at_b, MERCHANT_B) is not None
    assert {t["merchant"] for t in sim.trades() if t["out_trade_no"] in (paid, at_b)} == {
        MERCHANT_A,
        MERCHANT_B,
    }


def test_summary_counts_money_paid_and_refunded_per_merchant_and_currency(
    sim: SimClient, receiver: Receiver
) -> None:
    before = sim.summary()
    cny, _ = sim.paid_trade(receiver, "10.00")
    sim.paid_trade(receiver, "0.05")
    jpy = new_no()
    sim.charge(jpy, receiver.new_url(), "500", "JPY", subject="sim:pay_delay=0")
    sim.wait_status(jpy, "SUCCESS")
    sim.charge(new_no(), receiver.new_url(), "99.00", subject="sim:no_pay")  # never paid: not counted
    ok, url = new_no("rfd"), receiver.new_url()
    sim.refund(ok, cny, "3.00", url)
    sim.wait_refund(ok, "SUCCESS")
    sim.configure({"refund_decline_rate": 1.0}, MERCHANT_A)
    declined = new_no("rfd")
    sim.refund(declined, cny, "1.00", url)
    sim.wait_refund(declined, "FAILED")  # failed refunds move no money

    after = sim.summary()
    assert _delta(before, after, MERCHANT_A, "CNY", "paid") == (2, 1005)
    assert _delta(before, after, MERCHANT_A, "CNY", "refunded") == (1, 300)
    assert _delta(before, after, MERCHANT_A, "JPY", "paid") == (1, 500)
    figures = after[MERCHANT_A]["CNY"]
    paid, refunded, net = figures["paid"], figures["refunded"], figures["net"]
    assert net["amount_minor"] == paid["amount_minor"] - refunded["amount_minor"]
    assert paid["amount"] == f"{paid['amount_minor'] // 100}.{paid['amount_minor'] % 100:02d}"
    assert after[MERCHANT_A]["JPY"]["paid"]["amount"] == str(after[MERCHANT_A]["JPY"]["paid"]["amount_minor"])
    assert sim.summary(MERCHANT_B).keys() == {MERCHANT_B}


def _delta(
    before: dict[str, Any], after: dict[str, Any], merchant: str, currency: str, kind: str
) -> tuple[int, int]:
    empty = {"count": 0, "amount_minor": 0}
    old = before.get(merchant, {}).get(currency, {}).get(kind, empty)
    new = after[merchant][currency][kind]
    return new["count"] - old["count"], new["amount_minor"] - old["amount_minor"]


def _post(sim: SimClient, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(sim.base_url + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_unsigned_tampered_or_foreign_requests_get_a_json_401(sim: SimClient, receiver: Receiver) -> None:
    body = json.dumps({"out_trade_no": new_no(), "amount": "1.00", "currency": "CNY"}).encode()
    headers = signed_headers(MERCHANT_A, KEY, "POST", "/v1/charges", body, time.time())
    status, answer = _post(sim, "/v1/charges", body.replace(b"1.00", b"9.00"), headers)
    assert (status, answer["error"]) == (401, "BAD_SIGNATURE")
    wrong_key = signed_headers(MERCHANT_A, b"not-the-key", "POST", "/v1/charges", body, time.time())
    assert _post(sim, "/v1/charges", body, wrong_key)[0] == 401
    stale = signed_headers(MERCHANT_A, KEY, "POST", "/v1/charges", body, time.time() - 3600)
    assert "tolerance" in str(_post(sim, "/v1/charges", body, stale)[1]["message"])
    stranger = signed_headers("SIM-MERCHANT-9", KEY, "POST", "/v1/charges", body, time.time())
    assert _post(sim, "/v1/charges", body, stranger)[1]["error"] == "UNKNOWN_MERCHANT"


def test_malformed_charges_and_unknown_routes_get_json_errors(sim: SimClient, receiver: Receiver) -> None:
    answer = sim.call("POST", "/v1/charges", {"out_trade_no": new_no(), "amount": 1, "currency": "CNY"})
    assert answer.status == 400 and answer.body["code"] == "INVALID_REQUEST"
    answer = sim.charge(new_no(), "ftp://example/x")
    assert answer.status == 400 and "notify_url" in answer.body["message"]
    status, body = sim.admin("/v1/nothing-here")
    assert (status, body["error"]) == (404, "NOT_FOUND")
