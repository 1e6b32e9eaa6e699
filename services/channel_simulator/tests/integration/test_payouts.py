"""Payouts at the sandbox: paid at once or declined, idempotent on out_payout_no, per merchant
account, listed by the admin panel and counted in the summary as paid_out."""

from __future__ import annotations

from typing import Any

import pytest

from services.channel_simulator.tests.integration.support import (
    MERCHANT_A,
    MERCHANT_B,
    Receiver,
    SimClient,
    new_no,
)


def _paid_out(summary: dict[str, Any], merchant: str, currency: str) -> tuple[int, int]:
    figure = summary.get(merchant, {}).get(currency, {}).get("paid_out", {"count": 0, "amount_minor": 0})
    return figure["count"], figure["amount_minor"]


def _paid_out_delta(
    before: dict[str, Any], after: dict[str, Any], merchant: str, currency: str
) -> tuple[int, int]:
    (old_count, old_minor), (new_count, new_minor) = (
        _paid_out(before, merchant, currency),
        _paid_out(after, merchant, currency),
    )
    return new_count - old_count, new_minor - old_minor


def test_payout_is_paid_at_once_with_a_signed_answer_and_can_be_queried(sim: SimClient) -> None:
    out_payout_no = new_no("stl")
    answer = sim.payout(out_payout_no, "1234.56", merchant_ref="mch_42")
    assert answer.status == 200 and answer.signed
    body = answer.body
    assert body["result"] == "PAID"
    assert body["payout_no"].startswith("SIMP") and body["paid_at"]
    assert {k: body[k] for k in ("out_payout_no", "merchant_ref", "amount", "currency")} == {
        "out_payout_no": out_payout_no,
        "merchant_ref": "mch_42",
        "amount": "1234.56",
        "currency": "CNY",
    }
    assert "code" not in body
    queried = sim.query_payout(out_payout_no)
    assert queried.signed and queried.body == body


def test_repeated_out_payout_no_returns_the_same_payout_and_pays_once(sim: SimClient) -> None:
    before = sim.summary(MERCHANT_A)
    out_payout_no = new_no("stl")
    first = sim.payout(out_payout_no, "50.00")
    again = sim.payout(out_payout_no, "50.00")
    assert again.status == 200 and again.body == first.body
    assert len(sim.payouts_numbered(out_payout_no, MERCHANT_A)) == 1
    assert _paid_out_delta(before, sim.summary(MERCHANT_A), MERCHANT_A, "CNY") == (1, 5_000)


@pytest.mark.parametrize(
    ("amount", "currency", "merchant_ref"),
    [("50.01", "CNY", "mch_beneficiary_1"), ("50.00", "USD", "mch_beneficiary_1"), ("50.00", "CNY", "mch_2")],
)
def test_same_out_payout_no_for_another_payout_is_refused_and_pays_nothing(
    sim: SimClient, amount: str, currency: str, merchant_ref: str
) -> None:
    out_payout_no = new_no("stl")
    first = sim.payout(out_payout_no, "50.00")
    other = sim.payout(out_payout_no, amount, currency, merchant_ref)
    assert other.status == 409 and other.signed
    assert (other.body["result"], other.body["code"]) == ("INVALID", "OUT_PAYOUT_NO_USED")
    [stored] = sim.payouts_numbered(out_payout_no, MERCHANT_A)
    assert (stored["payout_no"], stored["amount"], stored["currency"]) == (
        first.body["payout_no"],
        "50.00",
        "CNY",
    )


def test_declined_payout_fails_with_payout_declined_and_stays_failed_when_repeated(sim: SimClient) -> None:
    before = sim.summary(MERCHANT_A)
    sim.configure({"payout_decline_rate": 1.0}, MERCHANT_A)
    out_payout_no = new_no("stl")
    declined = sim.payout(out_payout_no, "70.00")
    assert declined.status == 200 and declined.signed
    body = declined.body
    assert (body["result"], body["code"]) == ("FAILED", "PAYOUT_DECLINED")
    assert body["payout_no"] and body["paid_at"] is None and body["message"]
    sim.configure({"payout_decline_rate": 0.0}, MERCHANT_A)
    # Decided once: the channel does not pay a payout it declined because it is asked again.
    assert sim.payout(out_payout_no, "70.00").body == body
    assert sim.query_payout(out_payout_no).body == body
    [stored] = sim.payouts_numbered(out_payout_no, MERCHANT_A)
    assert stored["status"] == "FAILED"
    assert _paid_out_delta(before, sim.summary(MERCHANT_A), MERCHANT_A, "CNY") == (0, 0)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"amount": "0.00"}, "zero"),
        ({"amount": "-1.00"}, "negative"),
        ({"amount": "1.001"}, "decimal places"),
        ({"amount": "1e2"}, "plain decimal"),
        ({"amount": 100}, "must be strings"),
        ({"currency": "XXY"}, "amount"),
        ({"amount": "100.0", "currency": "JPY"}, "decimal places"),
        ({"out_payout_no": ""}, "out_payout_no is required"),
        ({"out_payout_no": "x" * 65}, "out_payout_no is longer"),
        ({"merchant_ref": None}, "merchant_ref must be a string"),
    ],
)
def test_malformed_payouts_are_refused_and_store_nothing(
    sim: SimClient, changes: dict[str, Any], fragment: str
) -> None:
    payload = {"out_payout_no": new_no("stl"), "merchant_ref": "mch_1", "amount": "10.00", "currency": "CNY"}
    payload.update(changes)
    answer = sim.call("POST", "/v1/payouts", payload)
    assert answer.status == 400 and answer.signed
    assert (answer.body["result"], answer.body["code"]) == ("INVALID", "INVALID_REQUEST")
    assert fragment in answer.body["message"]
    assert sim.payouts_numbered(str(payload["out_payout_no"])) == []


def test_payouts_during_an_outage_are_503_and_pay_nothing(sim: SimClient) -> None:
    sim.configure({"unavailable": True}, MERCHANT_A)
    out_payout_no = new_no("stl")
    answer = sim.payout(out_payout_no)
    assert (answer.status, answer.body["error"]) == (503, "CHANNEL_UNAVAILABLE")
    assert sim.query_payout(out_payout_no).status == 503
    assert sim.payouts_numbered(out_payout_no) == []
    sim.configure({"unavailable": False}, MERCHANT_A)
    assert sim.payout(out_payout_no).body["result"] == "PAID"


def test_payouts_belong_to_one_merchant_account(sim: SimClient) -> None:
    at_a, at_b = new_no("stl"), new_no("stl")
    sim.payout(at_a, "1.00")
    sim.payout(at_b, "2.00", merchant=MERCHANT_B)
    assert sim.query_payout(at_a, MERCHANT_B).body == {"result": "NOT_FOUND"}
    assert sim.query_payout(new_no("stl")).body == {"result": "NOT_FOUND"}
    # The same number at the other account is another payout, not a repeat.
    assert sim.payout(at_a, "9.00", merchant=MERCHANT_B).body["result"] == "PAID"
    listed_a = {p["out_payout_no"] for p in sim.payouts(MERCHANT_A)}
    listed_b = {p["out_payout_no"] for p in sim.payouts(MERCHANT_B)}
    assert at_a in listed_a and at_b not in listed_a
    assert {at_a, at_b} <= listed_b
    [row] = [p for p in sim.payouts() if p["out_payout_no"] == at_b]
    assert (row["merchant"], row["status"], row["amount"]) == (MERCHANT_B, "PAID", "2.00")
    assert row["created_at"]
    status, body = sim.admin("/v1/admin/payouts?merchant=NOPE")
    assert (status, body["error"]) == (404, "UNKNOWN_MERCHANT")


def test_summary_counts_paid_out_per_currency_beside_money_taken(sim: SimClient, receiver: Receiver) -> None:
    before = sim.summary(MERCHANT_B)
    trade = new_no()
    sim.charge(trade, receiver.new_url(), "30.00", subject="sim:pay_delay=0", merchant=MERCHANT_B)
    sim.wait_status(trade, "SUCCESS", MERCHANT_B)
    sim.payout(new_no("stl"), "12.34", merchant=MERCHANT_B)
    sim.payout(new_no("stl"), "0.66", merchant=MERCHANT_B)
    sim.payout(new_no("stl"), "700", "JPY", merchant=MERCHANT_B)
    sim.configure({"payout_decline_rate": 1.0}, MERCHANT_B)
    sim.payout(new_no("stl"), "5.00", merchant=MERCHANT_B)  # declined: moves no money

    after = sim.summary(MERCHANT_B)
    assert _paid_out_delta(before, after, MERCHANT_B, "CNY") == (2, 1_300)
    assert _paid_out_delta(before, after, MERCHANT_B, "JPY") == (1, 700)
    cny, jpy = after[MERCHANT_B]["CNY"], after[MERCHANT_B]["JPY"]
    paid_out_minor = cny["paid_out"]["amount_minor"]
    assert cny["paid_out"]["amount"] == f"{paid_out_minor // 100}.{paid_out_minor % 100:02d}"
    assert jpy["paid_out"]["amount"] == str(jpy["paid_out"]["amount_minor"])
    # Payouts are reported apart: net stays money taken less money refunded.
    assert cny["net"]["amount_minor"] == cny["paid"]["amount_minor"] - cny["refunded"]["amount_minor"]


def test_a_currency_only_paid_out_in_is_listed_with_nothing_taken(sim: SimClient) -> None:
    # No test charges in HKD: the currency appears in the summary through the payout alone.
    sim.payout(new_no("stl"), "8.80", "HKD", merchant=MERCHANT_B)
    hkd = sim.summary(MERCHANT_B)[MERCHANT_B]["HKD"]
    assert hkd["paid"] == {"count": 0, "amount": "0.00", "amount_minor": 0}
    assert hkd["refunded"]["count"] == 0 and hkd["net"]["amount_minor"] == 0
    assert hkd["paid_out"]["count"] >= 1 and hkd["paid_out"]["amount_minor"] >= 880
