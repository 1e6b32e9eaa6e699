"""The sandbox's WeChat Pay API v3 over HTTP, driven through WeChat Pay's own SDK (wechatpayv3):
requests it signs are taken and badly signed ones refused unsigned; answers and callbacks verify
with the published platform key and callbacks decrypt with the APIv3 key; the neutral core's
faults, closes, refunds and bills come out in WeChat Pay's codes and formats."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
from aiohttp import web
from channel_simulator.harness import LoopThread, RunningSimulator, start_simulator
from channel_simulator.protocols.wechatpay.bills import DOWNLOAD_PATH
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from reconciliation.statements.wechatpay import parse

from services.channel_simulator.tests.integration.support import MERCHANT_A, MERCHANT_B, SimClient, eventually
from services.channel_simulator.tests.integration.wechatpay_support import (
    Answer,
    CallbackReceiver,
    Creds,
    WechatMerchant,
    new_number,
    published_credentials,
)

CHINA = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def wx(loop_thread: LoopThread) -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(receiver.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop_thread.run(start())
    receiver.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield receiver
    finally:
        loop_thread.run(runner.cleanup())


@pytest.fixture(scope="module")
def creds(running_simulator: RunningSimulator) -> Creds:
    return Creds.of(running_simulator.base_url, MERCHANT_A)


@pytest.fixture
def merchant(
    loop_thread: LoopThread, running_simulator: RunningSimulator, creds: Creds, sim: SimClient
) -> WechatMerchant:
    # `sim` puts every account back to the default behaviour around each test.
    return WechatMerchant(loop_thread, running_simulator.base_url, creds)


def paid(merchant: WechatMerchant, wx: CallbackReceiver, total: int = 10_000) -> tuple[str, str]:
    """A paid trade: (out_trade_no, its notify_url)."""
    number, url = new_number(), wx.new_url()
    answer = merchant.native(number, total, url, "茶 sim:pay_delay=0")
    assert answer.status == 200 and answer.signed, answer
    merchant.wait_state(number, "SUCCESS")
    return number, url


def assert_refused(answer: Answer, status: int, code: str, *, signed: bool) -> None:
    assert (answer.status, answer.code) == (status, code), answer
    assert answer.signed is signed, answer
    if not signed:
        assert "Wechatpay-Signature" not in answer.headers


# -- credentials -------------------------------------------------------------------------


def test_each_account_publishes_its_own_mchid_keys_and_apiv3_key(running_simulator: RunningSimulator) -> None:
    published = published_credentials(running_simulator.base_url)
    accounts = published["merchants"]
    assert set(accounts) == {MERCHANT_A, MERCHANT_B}
    a, b = Creds(**accounts[MERCHANT_A]), Creds(**accounts[MERCHANT_B])
    assert a.mchid != b.mchid and a.merchant_serial_no != b.merchant_serial_no and a.apiv3_key != b.apiv3_key
    assert a.platform_serial_no == b.platform_serial_no and a.platform_serial_no.startswith("PUB_KEY_ID_")
    assert len(a.apiv3_key) == 32 and a.api_path == "/wechatpay" and a.appid.startswith("wx")
    assert (
        "BEGIN PRIVATE KEY" in a.merchant_private_key_pem and "BEGIN PUBLIC KEY" in a.platform_public_key_pem
    )
    a.sdk()  # the SDK takes them as they are


# -- charge, callback, query -------------------------------------------------------------


def test_a_native_order_is_answered_signed_then_paid_and_called_back_encrypted(
    merchant: WechatMerchant, wx: CallbackReceiver, creds: Creds
) -> None:
    number, url = new_number(), wx.new_url()
    answer = merchant.native(number, 1999, url, "一杯茶 sim:pay_delay=0")
    assert (answer.status, answer.signed) == (200, True), answer
    assert answer.data["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")

    [callback] = wx.wait(url)
    opened = creds.sdk().callback(callback.headers, callback.body)
    assert opened is not None, "the SDK refused the callback's signature or could not decrypt it"
    assert opened["event_type"] == "TRANSACTION.SUCCESS" and opened["resource_type"] == "encrypt-resource"
    sealed = callback.envelope["resource"]
    assert (sealed["algorithm"], sealed["original_type"], len(sealed["nonce"])) == (
        "AEAD_AES_256_GCM",
        "transaction",
        12,
    )
    transaction = opened["resource"]
    assert transaction["out_trade_no"] == number and transaction["trade_state"] == "SUCCESS"
    assert (transaction["mchid"], transaction["appid"]) == (creds.mchid, creds.appid)
    assert transaction["amount"] == {
        "total": 1999,
        "payer_total": 1999,
        "currency": "CNY",
        "payer_currency": "CNY",
    }
    assert transaction["transaction_id"].startswith("4200") and len(transaction["transaction_id"]) == 28
    assert datetime.fromisoformat(transaction["success_time"]).utcoffset() == timedelta(hours=8)

    query = merchant.query(number)
    assert (query.status, query.signed) == (200, True)
    assert {k: query.data[k] for k in ("trade_state", "transaction_id", "success_time", "amount")} == {
        k: transaction[k] for k in ("trade_state", "transaction_id", "success_time", "amount")
    }


def test_a_callback_not_taken_is_sent_again_with_the_same_body_signed_afresh(
    merchant: WechatMerchant, wx: CallbackReceiver, creds: Creds, running_simulator: RunningSimulator
) -> None:
    number, url = new_number(), wx.new_url(500)
    assert merchant.native(number, 500, url, "sim:pay_delay=0").status == 200
    first, second = wx.wait(url, 2)[:2]
    assert first.body == second.body and first.envelope["id"] == second.envelope["id"]
    assert first.headers["Wechatpay-Nonce"] != second.headers["Wechatpay-Nonce"]
    assert creds.sdk().callback(second.headers, second.body) is not None
    admin = SimClient(running_simulator.base_url)
    trade = next(t for t in admin.trades(MERCHANT_A) if t["out_trade_no"] == number)
    assert (trade["protocol"], trade["notifications_acked"]) == ("wechatpay", 1)


def test_a_repeated_order_gets_its_code_url_while_unpaid_and_orderpaid_once_paid(
    merchant: WechatMerchant, wx: CallbackReceiver
) -> None:
    number, url = new_number(), wx.new_url()
    first = merchant.native(number, 300, url, "sim:no_pay")
    again = merchant.native(number, 300, url, "sim:no_pay")
    assert again.status == 200 and again.data == first.data
    assert_refused(merchant.native(number, 301, url, "sim:no_pay"), 403, "OUT_TRADE_NO_USED", signed=True)
    assert merchant.state(number) == "NOTPAY"

    paid_number, paid_url = paid(merchant, wx)
    assert_refused(merchant.native(paid_number, 10_000, paid_url), 400, "ORDERPAID", signed=True)


def test_a_decline_is_rule_limit_and_stores_nothing(merchant: WechatMerchant, wx: CallbackReceiver) -> None:
    number = new_number()
    assert_refused(merchant.native(number, 100, wx.new_url(), "sim:decline"), 403, "RULE_LIMIT", signed=True)
    assert_refused(merchant.query(number), 404, "ORDER_NOT_EXIST", signed=True)


def test_lost_answers_drop_the_connection_and_a_query_tells_what_happened(
    merchant: WechatMerchant, wx: CallbackReceiver, sim: SimClient
) -> None:
    sim.configure({"hang_s": 0.2}, MERCHANT_A)
    lost, late = new_number(), new_number()
    for number, directive in ((lost, "sim:timeout"), (late, "sim:success_after_timeout")):
        with pytest.raises(Exception) as dropped:
            merchant.native(number, 100, wx.new_url(), directive)
        assert "Disconnected" in type(dropped.value).__name__ or "Connection" in type(dropped.value).__name__
    assert_refused(merchant.query(lost), 404, "ORDER_NOT_EXIST", signed=True)
    merchant.wait_state(late, "SUCCESS")


def test_a_bad_directive_is_a_param_error(merchant: WechatMerchant, wx: CallbackReceiver) -> None:
    answer = merchant.native(new_number(), 100, wx.new_url(), "sim:nope")
    assert_refused(answer, 400, "PARAM_ERROR", signed=True)
    assert "INVALID_DIRECTIVE" in answer.data["message"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount": {"total": 12.5, "currency": "CNY"}}, 400, "PARAM_ERROR"),
        ({"amount": {"total": 100, "currency": "USD"}}, 400, "PARAM_ERROR"),
        ({"out_trade_no": "abc"}, 400, "PARAM_ERROR"),
        ({"appid": "wx_someone_else"}, 400, "APPID_MCHID_NOT_MATCH"),
        ({"mchid": "1234567890"}, 400, "PARAM_ERROR"),
        ({"notify_url": "not a url"}, 400, "PARAM_ERROR"),
    ],
)
def test_a_malformed_order_is_refused_signed_naming_the_field(
    merchant: WechatMerchant, wx: CallbackReceiver, change: dict[str, object], status: int, code: str
) -> None:
    assert_refused(
        merchant.native(new_number(), 100, wx.new_url(), changes=change), status, code, signed=True
    )


# -- who may call ------------------------------------------------------------------------


def test_a_request_not_signed_by_the_merchant_key_is_refused_unsigned(
    merchant: WechatMerchant, wx: CallbackReceiver, creds: Creds, running_simulator: RunningSimulator
) -> None:
    rogue = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    path = f"/wechatpay/v3/pay/transactions/out-trade-no/{new_number()}?mchid={creds.mchid}"
    good = merchant.authorization("GET", path, "")
    stale = good.replace(f'timestamp="{int(time.time())}', 'timestamp="1', 1)
    cases = {
        "no Authorization": "",
        "another key": merchant.authorization("GET", path, "", private_key_pem=rogue),
        "another serial": good.replace(creds.merchant_serial_no, "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"),
        "another scheme": good.replace("WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SHA256-RSA4096"),
        "signed for another path": merchant.authorization("GET", path + "0", ""),
    }
    if stale != good:  # the second may have ticked between the two calls
        cases["a stale timestamp"] = stale
    for why, authorization in cases.items():
        answer = merchant.call("GET", path, authorization=authorization)
        assert (answer.status, answer.code, answer.signed) == (401, "SIGN_ERROR", False), why

    # A body changed after signing: the signature covers it.
    number = new_number()
    order = {
        "appid": creds.appid,
        "mchid": creds.mchid,
        "description": "tea",
        "out_trade_no": number,
        "notify_url": wx.new_url(),
        "amount": {"total": 100, "currency": "CNY"},
    }
    tampered = merchant.call(
        "POST", "/v3/pay/transactions/native", order, sent_body=str(order).replace("100", "1")
    )
    assert_refused(tampered, 401, "SIGN_ERROR", signed=False)

    stranger = WechatMerchant(
        merchant.loop, running_simulator.base_url, Creds(**{**vars(creds), "mchid": "1234567890"})
    )
    assert_refused(stranger.query(number), 404, "MCH_NOT_EXISTS", signed=False)
    assert_refused(merchant.query(number), 404, "ORDER_NOT_EXIST", signed=True)


def test_an_outage_answers_503_unsigned_and_takes_nothing(
    merchant: WechatMerchant, wx: CallbackReceiver, sim: SimClient
) -> None:
    number = new_number()
    sim.configure({"unavailable": True}, MERCHANT_A)
    assert_refused(merchant.native(number, 100, wx.new_url()), 503, "SYSTEM_ERROR", signed=False)
    sim.configure({"unavailable": False}, MERCHANT_A)
    assert_refused(merchant.query(number), 404, "ORDER_NOT_EXIST", signed=True)


# -- close ---------------------------------------------------------------------------------


def test_close_answers_204_signed_and_a_closed_or_never_seen_number_is_never_charged(
    merchant: WechatMerchant, wx: CallbackReceiver
) -> None:
    number, url = new_number(), wx.new_url()
    assert merchant.native(number, 100, url, "sim:no_pay").status == 200
    closed = merchant.close(number)
    assert (closed.status, closed.text, closed.signed) == (204, "", True)
    assert merchant.state(number) == "CLOSED"
    assert merchant.close(number).status == 204
    assert_refused(merchant.native(number, 100, url), 400, "ORDER_CLOSED", signed=True)

    never = new_number()
    assert_refused(merchant.close(never), 404, "ORDER_NOT_EXIST", signed=True)
    assert_refused(merchant.native(never, 100, url), 400, "ORDER_CLOSED", signed=True)

    paid_number, _ = paid(merchant, wx)
    assert_refused(merchant.close(paid_number), 400, "ORDERPAID", signed=True)


# -- refunds -------------------------------------------------------------------------------


def test_a_refund_is_processing_then_success_with_an_encrypted_refund_callback(
    merchant: WechatMerchant, wx: CallbackReceiver, creds: Creds
) -> None:
    number, _ = paid(merchant, wx)
    refund_no, url = new_number("rfd"), wx.new_url()
    answer = merchant.refund(number, refund_no, 2500, 10_000, url)
    assert (answer.status, answer.signed, answer.data["status"]) == (200, True, "PROCESSING"), answer
    assert answer.data["amount"]["refund"] == 2500 and answer.data["amount"]["total"] == 10_000

    [callback] = wx.wait(url)
    opened = creds.sdk().callback(callback.headers, callback.body)
    assert opened is not None and opened["event_type"] == "REFUND.SUCCESS"
    resource = opened["resource"]
    assert (resource["out_refund_no"], resource["refund_status"], resource["mchid"]) == (
        refund_no,
        "SUCCESS",
        creds.mchid,
    )
    assert resource["amount"] == {
        "total": 10_000,
        "refund": 2500,
        "payer_total": 10_000,
        "payer_refund": 2500,
    }

    queried = merchant.query_refund(refund_no)
    assert (queried.status, queried.signed, queried.data["status"]) == (200, True, "SUCCESS")
    assert queried.data["refund_id"] == resource["refund_id"] and "success_time" in queried.data
    assert merchant.state(number) == "REFUND"
    # The same out_refund_no again: the same refund, nothing new.
    assert merchant.refund(number, refund_no, 2500, 10_000, url).data["refund_id"] == resource["refund_id"]


def test_refunds_refused_on_their_merits_come_in_wechat_codes(
    merchant: WechatMerchant, wx: CallbackReceiver
) -> None:
    number, _ = paid(merchant, wx, total=1000)
    url = wx.new_url()
    refund_no = new_number("rfd")
    assert merchant.refund(number, refund_no, 600, 1000, url).status == 200
    assert_refused(
        merchant.refund(number, new_number("rfd"), 500, 1000, url), 400, "INVALID_REQUEST", signed=True
    )
    assert_refused(
        merchant.refund(number, new_number("rfd"), 100, 999, url), 400, "INVALID_REQUEST", signed=True
    )
    assert_refused(
        merchant.refund(number, refund_no, 100, 1000, url), 400, "RESOURCE_ALREADY_EXISTS", signed=True
    )
    unknown = merchant.refund(new_number(), new_number("rfd"), 100, 1000, url)
    assert_refused(unknown, 404, "RESOURCE_NOT_EXISTS", signed=True)
    assert_refused(merchant.query_refund(new_number("rfd")), 404, "RESOURCE_NOT_EXISTS", signed=True)


def test_a_declined_refund_is_closed_and_called_back_refund_closed(
    merchant: WechatMerchant, wx: CallbackReceiver, creds: Creds, sim: SimClient
) -> None:
    number, _ = paid(merchant, wx)
    sim.configure({"refund_decline_rate": 1.0}, MERCHANT_A)
    refund_no, url = new_number("rfd"), wx.new_url()
    assert merchant.refund(number, refund_no, 100, 10_000, url).status == 200
    [callback] = wx.wait(url)
    opened = creds.sdk().callback(callback.headers, callback.body)
    assert opened is not None and opened["event_type"] == "REFUND.CLOSED"
    assert opened["resource"]["refund_status"] == "CLOSED" and "success_time" not in opened["resource"]
    assert merchant.query_refund(refund_no).data["status"] == "CLOSED"
    # No money moved: the trade is as refundable as before.
    assert merchant.refund(number, new_number("rfd"), 10_000, 10_000, url).status == 200


# -- the trade bill ------------------------------------------------------------------------


def test_the_trade_bill_lists_the_day_and_downloads_with_its_signed_hash(
    wx: CallbackReceiver, loop_thread: LoopThread
) -> None:
    # Fresh accounts of their own, so the day's bill holds exactly these trades.
    simulator = loop_thread.run(start_simulator(["BILL-1", "BILL-2"], b"bill-key", protocols=["wechatpay"]))
    try:
        mine = Creds.of(simulator.base_url, "BILL-1")
        client = WechatMerchant(loop_thread, simulator.base_url, mine)
        numbers = [new_number() for _ in range(2)]
        for number, total in zip(numbers, (10_000, 250), strict=True):
            assert client.native(number, total, wx.new_url(), "sim:pay_delay=0").status == 200
            client.wait_state(number, "SUCCESS")
        refund_no = new_number("rfd")
        assert client.refund(numbers[0], refund_no, 1000, 10_000, wx.new_url()).status == 200
        eventually(lambda: client.query_refund(refund_no).data.get("status") == "SUCCESS", "the refund")

        today = datetime.now(CHINA).date()
        link = client.call("GET", f"/v3/bill/tradebill?bill_date={today.isoformat()}&bill_type=ALL")
        assert (link.status, link.signed, link.data["hash_type"]) == (200, True, "SHA1"), link
        assert link.data["download_url"].startswith(simulator.base_url + DOWNLOAD_PATH + "?token=")
        path = link.data["download_url"][len(simulator.base_url) :]
        file = client.call("GET", path)
        assert file.status == 200 and "Wechatpay-Signature" not in file.headers
        content = file.text.encode()
        assert hashlib.sha1(content).hexdigest() == link.data["hash_value"]

        parsed = parse(content, "bill.csv", "wechatpay", today)
        c = parsed.columns
        assert parsed.account == mine.mchid
        assert c["kind"] == ["PAYMENT", "PAYMENT", "REFUND"] and c["our_id"] == [*numbers, refund_no]
        # 0.6 % half up: 100.00 -> 0.60, 2.50 -> 0.015 -> 0.02, a refund of 10.00 returns 0.06.
        assert c["amount_minor"] == [10_000, 250, 1000] and c["fee_minor"] == [60, 2, 6]
        assert content.decode("utf-8-sig").splitlines()[-1] == "`3,`102.50,`10.00,`0.00,`0.56,`102.50,`10.00"

        # The link is the account's, and signed for like any request.
        other = WechatMerchant(loop_thread, simulator.base_url, Creds.of(simulator.base_url, "BILL-2"))
        assert_refused(other.call("GET", path), 404, "RESOURCE_NOT_EXISTS", signed=True)
        assert_refused(client.call("GET", path, authorization=""), 401, "SIGN_ERROR", signed=False)
        tomorrow = (today + timedelta(days=1)).isoformat()
        future = client.call("GET", f"/v3/bill/tradebill?bill_date={tomorrow}&bill_type=ALL")
        assert_refused(future, 400, "NO_STATEMENT_EXIST", signed=True)
        bad_day = client.call("GET", "/v3/bill/tradebill?bill_date=2026-13-01&bill_type=ALL")
        assert_refused(bad_day, 400, "PARAM_ERROR", signed=True)
    finally:
        loop_thread.run(simulator.stop())


def test_a_quiet_day_has_an_empty_bill_that_still_parses(merchant: WechatMerchant) -> None:
    day = date(2020, 1, 1)
    link = merchant.call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL")
    file = merchant.call("GET", link.data["download_url"][len(merchant.base_url) :])
    parsed = parse(file.text.encode(), "bill.csv", "wechatpay", day)
    assert parsed.line_count == 0
