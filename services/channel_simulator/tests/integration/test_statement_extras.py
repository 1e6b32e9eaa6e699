"""Planting statement lines through the admin panel (for reconciliation's discrepancies), and
fetching the statement file a protocol makes for an account and a day."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from reconciliation.statements import alipay as alipay_bill

from services.channel_simulator.tests.integration.alipay_support import beijing_today
from services.channel_simulator.tests.integration.support import (
    HTTP_TIMEOUT_S,
    MERCHANT_A,
    MERCHANT_B,
    Receiver,
    SimClient,
    new_no,
)

EXTRAS = "/v1/admin/statement-extras"


@pytest.fixture
def clean(sim: SimClient) -> Iterator[SimClient]:
    yield sim
    request = urllib.request.Request(sim.base_url + EXTRAS, method="DELETE")
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
        assert resp.status == 200


def plant(sim: SimClient, merchant: str | None = MERCHANT_B, **fields: Any) -> tuple[int, Any]:
    line = {
        "protocol": "alipay",
        "day": beijing_today().isoformat(),
        "kind": "PAYMENT",
        "out_trade_no": new_no(),
        "amount": "12.34",
        "currency": "CNY",
        **fields,
    }
    suffix = f"?merchant={merchant}" if merchant else ""
    return sim.admin(EXTRAS + suffix, {k: v for k, v in line.items() if v is not None})


def statement(sim: SimClient, query: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(
            sim.base_url + "/v1/admin/statement?" + query, timeout=HTTP_TIMEOUT_S
        ) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_payment_the_channel_invents_is_on_its_statement_and_nowhere_else(clean: SimClient) -> None:
    status, line = plant(clean, out_trade_no="pay_never_sent", subject="phantom")
    assert status == 201, line
    assert (line["merchant"], line["kind"], line["amount"], line["out_refund_no"]) == (
        MERCHANT_B,
        "PAYMENT",
        "12.34",
        "",
    )
    assert line["trade_no"], "the channel numbers its invention"
    assert clean.admin(EXTRAS + f"?merchant={MERCHANT_B}")[1] == [line]
    assert clean.admin(EXTRAS + f"?merchant={MERCHANT_A}")[1] == []
    assert clean.trade("pay_never_sent", MERCHANT_B) is None, "no trade behind it"

    today = beijing_today()
    status, content = statement(clean, f"merchant={MERCHANT_B}&protocol=alipay&day={today}")
    assert status == 200
    c = alipay_bill.parse(content, "b.csv", "alipay", today).columns
    at = c["our_id"].index("pay_never_sent")
    assert (c["kind"][at], c["amount_minor"][at], c["channel_txn_id"][at]) == (
        "PAYMENT",
        1234,
        line["trade_no"],
    )


def test_a_planted_refund_of_a_real_trade_carries_its_trade_number(
    clean: SimClient, receiver: Receiver
) -> None:
    out_trade_no, _ = clean.paid_trade(receiver)
    real = clean.trade(out_trade_no)
    assert real is not None
    status, line = plant(
        clean, MERCHANT_A, protocol="simpay", kind="REFUND", out_trade_no=out_trade_no, out_refund_no="rfd_x",
        occurred_at="2026-03-01T10:00:00+08:00",
    )  # fmt: skip
    assert status == 201, line
    assert (line["trade_no"], line["protocol"], line["occurred_at"]) == (
        real["trade_no"],
        "simpay",
        "2026-03-01T10:00:00+08:00",
    )
    assert line["refund_no"]
    status, body = statement(clean, f"merchant={MERCHANT_A}&protocol=simpay&day=2026-03-01")
    assert (status, json.loads(body)["error"]) == (404, "NO_STATEMENT"), "simpay makes no statement files"


@pytest.mark.parametrize(
    ("merchant", "fields", "status", "error", "fragment"),
    [
        (None, {}, 400, "MERCHANT_REQUIRED", "?merchant="),
        ("NOPE", {}, 404, "UNKNOWN_MERCHANT", "NOPE"),
        (MERCHANT_B, {"protocol": "nope"}, 400, "INVALID_STATEMENT_EXTRA", "protocol 'nope' is not enabled"),
        (MERCHANT_B, {"kind": "CHARGEBACK"}, 400, "INVALID_STATEMENT_EXTRA", "kind must be one of"),
        (MERCHANT_B, {"kind": "REFUND"}, 400, "INVALID_STATEMENT_EXTRA", "out_refund_no"),
        (MERCHANT_B, {"day": "2026-3-1"}, 400, "INVALID_STATEMENT_EXTRA", "day must be a date"),
        (MERCHANT_B, {"amount": "12.345"}, 400, "INVALID_STATEMENT_EXTRA", "amount"),
        (MERCHANT_B, {"out_trade_no": None}, 400, "INVALID_STATEMENT_EXTRA", "out_trade_no"),
        (MERCHANT_B, {"occurred_at": "2026-03-01T10:00:00"}, 400, "INVALID_STATEMENT_EXTRA", "UTC offset"),
    ],
)  # fmt: skip
def test_a_bad_line_is_refused_naming_what_is_wrong_and_nothing_is_kept(
    clean: SimClient, merchant: str | None, fields: dict[str, Any], status: int, error: str, fragment: str
) -> None:
    got, body = plant(clean, merchant, **fields)
    assert (got, body["error"]) == (status, error), body
    assert fragment in body["message"]
    assert clean.admin(EXTRAS)[1] == []


def test_delete_removes_the_planted_lines_of_the_merchant_named(clean: SimClient) -> None:
    assert plant(clean, MERCHANT_A)[0] == plant(clean, MERCHANT_B)[0] == 201
    request = urllib.request.Request(clean.base_url + EXTRAS + f"?merchant={MERCHANT_A}", method="DELETE")
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
        assert json.loads(resp.read()) == {"removed": 1}
    assert [line["merchant"] for line in clean.admin(EXTRAS)[1]] == [MERCHANT_B]


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("protocol=alipay&day=2026-03-01", 400, "MERCHANT_REQUIRED"),
        (f"merchant={MERCHANT_A}&protocol=nope&day=2026-03-01", 400, "UNKNOWN_PROTOCOL"),
        (f"merchant={MERCHANT_A}&protocol=alipay&day=yesterday", 400, "INVALID_DAY"),
    ],
)
def test_a_statement_needs_an_account_an_enabled_protocol_and_a_day(
    sim: SimClient, query: str, status: int, error: str
) -> None:
    got, body = statement(sim, query)
    assert (got, json.loads(body)["error"]) == (status, error)
