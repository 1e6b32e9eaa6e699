"""The sandbox's Alipay protocol over real HTTP: gateway.do signed by alipay-sdk-python's own
functions and every answer and notification verified by them; refusals in Alipay's shape;
each method's states and codes; faults; the bill link."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from aiohttp import ClientError, web
from channel_gateway.adapters.connectors.alipay import sandbox as gateway_sandbox
from channel_simulator.harness import LoopThread, RunningSimulator
from channel_simulator.protocols.alipay import protocol as alipay_protocol
from cryptography.hazmat.primitives import serialization
from reconciliation.statements import alipay as alipay_bill

from services.channel_simulator.tests.integration.alipay_support import (
    GATEWAY_PATH,
    App,
    Merchant,
    NotifyEndpoint,
    Reply,
    alipay_apps,
    beijing_today,
    read_reply,
    signed_params,
    stranger_key,
)
from services.channel_simulator.tests.integration.support import (
    MERCHANT_A,
    MERCHANT_B,
    SimClient,
    eventually,
    new_no,
)

LOST = (TimeoutError, ClientError, ConnectionError)
# What a man in the middle would rather charge.
OTHER_BIZ = '{"out_trade_no":"x","total_amount":"0.01","subject":"s"}'


@pytest.fixture(scope="module")
def endpoint(loop_thread: LoopThread) -> Iterator[NotifyEndpoint]:
    found = NotifyEndpoint()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(found.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop_thread.run(start())
    found.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield found
    finally:
        loop_thread.run(runner.cleanup())


@pytest.fixture(scope="module")
def apps(running_simulator: RunningSimulator) -> dict[str, App]:
    return alipay_apps(running_simulator.base_url)


@pytest.fixture
def merchant(sim: SimClient, loop_thread: LoopThread, apps: dict[str, App]) -> Merchant:
    return Merchant(loop_thread, sim.base_url, apps[MERCHANT_A])


def charge(out_trade_no: str, subject: str, amount: str = "2.00") -> dict[str, str]:
    return {"out_trade_no": out_trade_no, "total_amount": amount, "subject": subject}


def ok(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200 and reply.verified, reply
    assert reply.node["code"] == "10000", reply.node
    return dict(reply.node)


def refused(reply: Reply, sub_code: str, code: str = "40004") -> None:
    assert reply.status == 200 and reply.verified, reply
    assert (reply.node["code"], reply.node["sub_code"]) == (code, sub_code), reply.node


def paid(merchant: Merchant, amount: str = "100.00", notify_url: str = "") -> str:
    out_trade_no = new_no()
    ok(merchant.precreate(out_trade_no, amount, "sim:pay_delay=0", notify_url))
    eventually(lambda: merchant.query(out_trade_no).node.get("trade_status") == "TRADE_SUCCESS", "payment")
    return out_trade_no


# -- credentials ----------------------------------------------------------------------------


def test_each_account_gets_its_own_app_and_the_gateway_config_is_built_from_it(
    sim: SimClient, apps: dict[str, App]
) -> None:
    assert set(apps) == {MERCHANT_A, MERCHANT_B}
    a, b = apps[MERCHANT_A], apps[MERCHANT_B]
    assert set(a.credentials) == {
        "app_id",
        "seller_id",
        "app_private_key_pem",
        "alipay_public_key_pem",
        "gateway_path",
    }
    assert a.app_id != b.app_id and a.seller_id != b.seller_id and a.private_key != b.private_key
    assert a.alipay_public_key == b.alipay_public_key, "one Alipay key for the channel"
    assert a.seller_id.startswith("2088") and len(a.seller_id) == 16
    # As Alipay's key tool gives them: bare base64 DER, PKCS#1 private and SubjectPublicKeyInfo public.
    private = serialization.load_der_private_key(base64.b64decode(a.private_key), password=None)
    assert private.key_size == 2048  # type: ignore[union-attr]
    serialization.load_der_public_key(base64.b64decode(a.alipay_public_key))
    config = gateway_sandbox.account_config(sim.base_url, a.credentials)
    assert config["gateway_url"] == sim.base_url + GATEWAY_PATH
    assert (config["app_id"], config["seller_id"]) == (a.app_id, a.seller_id)
    status, one = sim.admin(f"/v1/admin/sandbox-credentials?merchant={MERCHANT_B}")
    assert status == 200 and one["alipay"] == {MERCHANT_B: b.credentials}


# -- signatures both ways -------------------------------------------------------------------


def test_a_request_the_sdk_signed_is_answered_with_a_node_the_sdk_verifies(merchant: Merchant) -> None:
    no = new_no()
    reply = merchant.precreate(no, "19.99", "咖啡 & cake = 2, sim:no_pay")
    node = ok(reply)
    assert reply.node_name == "alipay_trade_precreate_response"
    assert node["out_trade_no"] == no and node["qr_code"]
    # The signature covers the node's exact text: one byte changed and the SDK refuses it.
    tampered = reply.text.replace(no, no[:-1] + "x")
    assert not read_reply(200, tampered, merchant.app.alipay_public_key).verified


@pytest.mark.parametrize(
    ("change", "sub_code", "code"),
    [
        ({"key": "stranger"}, "isv.invalid-signature", "40002"),
        ({"tamper": {"biz_content": OTHER_BIZ}}, "isv.invalid-signature", "40002"),
        ({"tamper": {"app_id": "9021999999999999"}}, "isv.invalid-app-id", "40002"),
        ({"drop": "app_id"}, "isv.missing-app-id", "40001"),
        ({"drop": "sign"}, "isv.missing-signature", "40001"),
        ({"common": {"sign_type": "RSA"}}, "isv.invalid-signature-type", "40002"),
        ({"method": "alipay.trade.pay"}, "isv.invalid-method", "40002"),
        ({"common": {"timestamp": "2026/03/01 12:00"}}, "isv.invalid-timestamp", "40002"),
        ({"common": {"timestamp": "2020-01-01 00:00:00"}}, "isv.invalid-timestamp", "40002"),
        ({"common": {"charset": "GBK"}}, "isv.invalid-charset", "40002"),
    ],
    ids=[
        "stranger-key", "tampered-biz", "unknown-app", "no-app", "no-sign", "rsa1", "unknown-method",
        "bad-timestamp", "stale-timestamp", "gbk",
    ],
)  # fmt: skip
def test_a_call_that_is_not_the_apps_is_refused_in_a_signed_error_response(
    sim: SimClient, merchant: Merchant, change: dict[str, Any], sub_code: str, code: str
) -> None:
    no = new_no()
    biz = {"out_trade_no": no, "total_amount": "19.99", "subject": "s"}
    key = stranger_key() if change.get("key") else ""
    method = change.get("method", "alipay.trade.precreate")
    params = signed_params(merchant.app, method, biz, key=key, **change.get("common", {}))
    params.update(change.get("tamper", {}))
    params.pop(change.get("drop", ""), None)
    reply = merchant.send(params)
    assert reply.status == 200 and reply.verified, "error answers are signed by Alipay too"
    assert reply.node_name == "error_response"
    assert (reply.node["code"], reply.node["sub_code"]) == (code, sub_code), reply.node
    assert reply.node["msg"] in ("Invalid Arguments", "Missing Required Arguments")
    assert sim.trade(no) is None and sim.trade("x") is None, "nothing was charged"


def test_a_parameter_given_twice_is_refused_whichever_was_signed(merchant: Merchant) -> None:
    params = signed_params(merchant.app, "alipay.trade.query", {"out_trade_no": "x"})
    reply = merchant.send(params, extra_query="&method=alipay.trade.close")
    assert reply.verified and reply.node_name == "error_response"
    assert reply.sub_code == "isv.invalid-parameter" and "method" in reply.node["sub_msg"]


# -- the methods ----------------------------------------------------------------------------


def test_query_shows_the_trade_waiting_paid_and_closed(merchant: Merchant) -> None:
    waiting = new_no()
    ok(merchant.precreate(waiting, "12.30", "sim:no_pay"))
    node = ok(merchant.query(waiting))
    assert (node["trade_status"], node["total_amount"], node["out_trade_no"]) == (
        "WAIT_BUYER_PAY",
        "12.30",
        waiting,
    )
    assert "send_pay_date" not in node and node["trade_no"]
    assert ok(merchant.close(waiting))["out_trade_no"] == waiting
    node = ok(merchant.query(waiting))
    assert node["trade_status"] == "TRADE_CLOSED" and "send_pay_date" not in node
    refused(merchant.close(waiting), "ACQ.TRADE_HAS_CLOSE")
    refused(merchant.query(new_no()), "ACQ.TRADE_NOT_EXIST")

    done = paid(merchant, "30.00")
    node = ok(merchant.query(done))
    assert node["send_pay_date"] and node["buyer_logon_id"] and node["total_amount"] == "30.00"
    by_trade_no = ok(merchant.call("alipay.trade.query", {"trade_no": node["trade_no"]}))
    assert by_trade_no["out_trade_no"] == done
    refused(merchant.close(done), "ACQ.TRADE_STATUS_ERROR")
    # Refunded in full, Alipay calls the trade closed, still with its payment date.
    ok(merchant.refund(done, "30.00", new_no("rfd")))
    node = ok(merchant.query(done))
    assert node["trade_status"] == "TRADE_CLOSED" and node["send_pay_date"]


def test_closing_a_number_never_charged_leaves_a_tombstone(merchant: Merchant) -> None:
    no = new_no()
    refused(merchant.close(no), "ACQ.TRADE_NOT_EXIST")
    refused(merchant.precreate(no), "ACQ.TRADE_HAS_CLOSE")
    refused(merchant.query(no), "ACQ.TRADE_NOT_EXIST")


def test_precreate_is_idempotent_and_refuses_what_alipay_refuses(merchant: Merchant) -> None:
    no = new_no()
    first = ok(merchant.precreate(no, "5.00", "sim:no_pay"))
    assert ok(merchant.precreate(no, "5.00", "sim:no_pay")) == first
    refused(merchant.precreate(no, "5.01", "sim:no_pay"), "ACQ.CONTEXT_INCONSISTENT")
    refused(merchant.precreate(new_no(), "5.00", "sim:decline"), "ACQ.BEYOND_PAY_RESTRICTION")
    bad = merchant.precreate(new_no(), "5.00", "sim:nope")
    refused(bad, "ACQ.INVALID_PARAMETER")
    assert "sim:nope" in bad.node["sub_msg"]
    for amount in ("5.001", "0.00", "1e3", "100000000.01"):
        refused(merchant.precreate(new_no(), amount), "ACQ.INVALID_PARAMETER")
    no_subject = merchant.call("alipay.trade.precreate", {"out_trade_no": new_no(), "total_amount": "1.00"})
    refused(no_subject, "ACQ.INVALID_PARAMETER")
    other_seller = {
        "out_trade_no": new_no(),
        "total_amount": "1.00",
        "subject": "s",
        "seller_id": "2088999999999999",
    }
    refused(merchant.call("alipay.trade.precreate", other_seller), "ACQ.INVALID_PARAMETER")
    done = paid(merchant, "7.00")
    refused(merchant.precreate(done, "7.00"), "ACQ.TRADE_HAS_SUCCESS")


def test_refunds_settle_at_once_and_report_the_trades_refunded_total(merchant: Merchant) -> None:
    no = paid(merchant, "100.00")
    first, second = new_no("rfd"), new_no("rfd")
    node = ok(merchant.refund(no, "30.00", first))
    assert (node["fund_change"], node["refund_fee"], node["out_trade_no"]) == ("Y", "30.00", no)
    assert node["gmt_refund_pay"]
    assert ok(merchant.refund(no, "20.00", second))["refund_fee"] == "50.00"
    # A repeat moves no money: fund_change N (the connector then asks the refund query).
    assert (ok(merchant.refund(no, "30.00", first))["fund_change"]) == "N"
    refused(merchant.refund(no, "31.00", first), "ACQ.DISCORDANT_REPEAT_REQUEST")
    refused(merchant.refund(no, "50.01", new_no("rfd")), "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    refused(merchant.refund(new_no(), "1.00", new_no("rfd")), "ACQ.TRADE_NOT_EXIST")
    waiting = new_no()
    ok(merchant.precreate(waiting, "9.00", "sim:no_pay"))
    refused(merchant.refund(waiting, "1.00", new_no("rfd")), "ACQ.TRADE_STATUS_ERROR")

    found = ok(merchant.refund_query(no, second))
    assert (found["refund_status"], found["refund_amount"], found["total_amount"]) == (
        "REFUND_SUCCESS",
        "20.00",
        "100.00",
    )
    assert found["out_request_no"] == second and found["gmt_refund_pay"]
    unknown = ok(merchant.refund_query(no, new_no("rfd")))
    assert "refund_status" not in unknown and "refund_amount" not in unknown
    refused(merchant.refund_query(new_no(), first), "ACQ.TRADE_NOT_EXIST")


def test_a_declined_refund_is_refused_and_its_query_shows_no_refund(
    sim: SimClient, merchant: Merchant
) -> None:
    no = paid(merchant, "10.00")
    sim.configure({"refund_decline_rate": 1.0}, MERCHANT_A)
    rfd = new_no("rfd")
    refused(merchant.refund(no, "4.00", rfd), "ACQ.SELLER_BALANCE_NOT_ENOUGH")
    assert "refund_status" not in ok(merchant.refund_query(no, rfd))


def test_each_account_reaches_only_its_own_trades(
    sim: SimClient, merchant: Merchant, apps: dict[str, App]
) -> None:
    no = paid(merchant, "3.00")
    other = Merchant(merchant.loop, sim.base_url, apps[MERCHANT_B])
    refused(other.query(no), "ACQ.TRADE_NOT_EXIST")
    # Alipay's numbers are the protocol's own: simpay knows nothing of this trade.
    assert sim.query(no).body == {"result": "NOT_FOUND"}
    assert sim.trade(no, MERCHANT_A)["protocol"] == "alipay"  # type: ignore[index]


# -- notifications --------------------------------------------------------------------------


def test_payment_and_refund_notifications_are_form_posts_the_sdk_verifies(
    merchant: Merchant, endpoint: NotifyEndpoint
) -> None:
    url = endpoint.new_url()
    no = paid(merchant, "100.00", notify_url=url)
    eventually(lambda: len(endpoint.posts(url)) == 1, "the payment notification")
    payment = endpoint.posts(url)[0]
    assert payment.content_type.startswith("application/x-www-form-urlencoded")
    assert payment.verified_by_sdk(merchant.app.alipay_public_key)
    params = payment.params
    assert {k: params[k] for k in ("notify_type", "app_id", "seller_id", "out_trade_no", "trade_status")} == {
        "notify_type": "trade_status_sync",
        "app_id": merchant.app.app_id,
        "seller_id": merchant.app.seller_id,
        "out_trade_no": no,
        "trade_status": "TRADE_SUCCESS",
    }
    assert (params["total_amount"], params["sign_type"], params["charset"]) == ("100.00", "RSA2", "utf-8")
    assert params["gmt_payment"] and params["notify_time"] and params["notify_id"]

    # Refunds go to the trade's notify_url; refund_fee is the trade's refunded total.
    ok(merchant.refund(no, "40.00", "rfd-a-" + no))
    ok(merchant.refund(no, "60.00", "rfd-b-" + no))
    eventually(lambda: len(endpoint.posts(url)) == 3, "two refund notifications")
    refunds = sorted((p.params for p in endpoint.posts(url)[1:]), key=lambda p: p["out_biz_no"])
    assert all(p.verified_by_sdk(merchant.app.alipay_public_key) for p in endpoint.posts(url))
    assert [(p["out_biz_no"], p["refund_fee"], p["trade_status"]) for p in refunds] == [
        ("rfd-a-" + no, "40.00", "TRADE_SUCCESS"),
        ("rfd-b-" + no, "100.00", "TRADE_CLOSED"),
    ]
    assert refunds[1]["gmt_close"] and len(refunds[1]["gmt_refund"]) == len("2026-01-01 00:00:00.000")
    assert len({p["notify_id"] for p in [params, *refunds]}) == 3


def test_only_exactly_success_acknowledges_a_notification(
    sim: SimClient, merchant: Merchant, endpoint: NotifyEndpoint
) -> None:
    url = endpoint.new_url([(200, b"SUCCESS"), (200, b"success\n"), (500, b"success")])
    no = paid(merchant, "1.00", notify_url=url)
    eventually(lambda: len(endpoint.posts(url)) == 4, "three refusals, then the exact success")
    bodies = {p.body for p in endpoint.posts(url)}
    assert len(bodies) == 1, "every retry sends the same signed bytes"
    eventually(lambda: sim.trade(no)["notifications_acked"] == 1, "the ack to count")  # type: ignore[index]
    assert sim.trade(no)["notifications_sent"] == 4  # type: ignore[index]


def test_a_declined_refund_is_never_notified(
    sim: SimClient, merchant: Merchant, endpoint: NotifyEndpoint
) -> None:
    url = endpoint.new_url()
    no = paid(merchant, "10.00", notify_url=url)
    eventually(lambda: len(endpoint.posts(url)) == 1, "the payment notification")
    sim.configure({"refund_decline_rate": 1.0}, MERCHANT_A)
    refused(merchant.refund(no, "1.00", new_no("rfd")), "ACQ.SELLER_BALANCE_NOT_ENOUGH")
    time.sleep(0.3)
    assert len(endpoint.posts(url)) == 1


# -- faults ---------------------------------------------------------------------------------


def test_an_outage_answers_503_unsigned_from_the_front_door(sim: SimClient, merchant: Merchant) -> None:
    link = ok(merchant.bill(beijing_today()))["bill_download_url"]
    sim.configure({"unavailable": True}, MERCHANT_A)
    reply = merchant.precreate(new_no())
    assert reply.status == 503 and "sign" not in reply.text
    assert merchant.get(link)[0] == 503


def test_a_lost_answer_hangs_and_drops_and_success_after_timeout_still_takes_the_money(
    sim: SimClient, merchant: Merchant
) -> None:
    sim.configure({"hang_s": 0.3}, MERCHANT_A)
    lost, taken = new_no(), new_no()
    started = time.monotonic()
    with pytest.raises(LOST):
        merchant.send(signed_params(merchant.app, "alipay.trade.precreate", charge(lost, "sim:timeout")), 5.0)
    assert time.monotonic() - started < 3.0
    refused(merchant.query(lost), "ACQ.TRADE_NOT_EXIST")
    with pytest.raises(LOST):
        subject = "sim:success_after_timeout sim:pay_delay=0"
        merchant.send(signed_params(merchant.app, "alipay.trade.precreate", charge(taken, subject)), 5.0)
    eventually(lambda: merchant.query(taken).node.get("trade_status") == "TRADE_SUCCESS", "the payment")


# -- the bill -------------------------------------------------------------------------------


def test_the_bill_link_serves_the_days_trade_bill_and_no_other(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    no = paid(merchant, "88.00")
    today = beijing_today()
    link = ok(merchant.bill(today))["bill_download_url"]
    assert link.startswith(merchant.base_url + "/alipay/bills/")
    status, headers, content = merchant.get(link)
    assert status == 200 and f"{merchant.app.seller_id}_{today:%Y%m%d}.csv" in headers["Content-Disposition"]
    parsed = alipay_bill.parse(content, "bill.csv", "alipay", today)
    assert parsed.account == merchant.app.seller_id
    assert no in parsed.columns["our_id"]
    assert merchant.get(link.replace("token=", "token=0"))[0] == 403
    assert merchant.get(link.replace(today.isoformat(), (today - timedelta(days=1)).isoformat()))[0] == 403
    monkeypatch.setattr(alipay_protocol, "BILL_LINK_TTL_S", -1)
    expired = ok(merchant.bill(today))["bill_download_url"]
    assert merchant.get(expired)[0] == 403, "a link lives BILL_LINK_TTL_S (Alipay's: 30 s)"


def test_a_bill_of_a_day_not_begun_or_of_another_type_is_refused(merchant: Merchant) -> None:
    refused(merchant.bill(beijing_today() + timedelta(days=1)), "isp.bill_not_exist")
    refused(merchant.bill(beijing_today(), "signcustomer"), "INVAILID_ARGUMENTS")
    bad_date = merchant.call(
        "alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": "2026-02"}
    )
    refused(bad_date, "INVAILID_ARGUMENTS")
    assert ok(merchant.bill(date(2020, 1, 1)))["bill_download_url"]
