"""The sandbox Alipay's trade bill is the file reconciliation's parser reads: one line per payment
and refund that completed on the Beijing day, fees and totals that add up, merchant text made
safe for GBK, planted lines listed with the real ones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from channel_simulator.accounts import (
    MerchantAccount,
    Refund,
    RefundStatus,
    StatementExtra,
    StatementLineKind,
    Trade,
    TradeStatus,
)
from channel_simulator.behaviour import Behaviour
from channel_simulator.protocols.alipay import AlipayProtocol, statement
from channel_simulator.sandbox import Sandbox
from paykit.money import Money
from reconciliation.statements import StatementError
from reconciliation.statements import alipay as alipay_bill

BEIJING = timezone(timedelta(hours=8))
DAY = date(2026, 3, 1)
# 23:59:59 and the next 00:00:00 in Beijing.
LAST_SECOND = datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)
NEXT_DAY = datetime(2026, 3, 1, 16, 0, 0, tzinfo=UTC)
EXPORTED = datetime(2026, 3, 2, 1, 15, tzinfo=UTC)


def account() -> MerchantAccount:
    return MerchantAccount("M1", 1)


def trade(
    merchant: MerchantAccount, no: str, amount: str, paid_at: datetime | None, protocol: str = "alipay"
) -> Trade:
    made = Trade(
        protocol, merchant.merchant_id, merchant.next_trade_no(), no, Money.parse(amount, "CNY"), "",
        subject="goods", created_at=(paid_at or LAST_SECOND) - timedelta(minutes=1),
    )  # fmt: skip
    if paid_at is not None:
        made.status, made.paid_at = TradeStatus.SUCCESS, paid_at
    merchant.add_trade(made)
    return made


def refund(
    merchant: MerchantAccount, paid: Trade, no: str, amount: str, at: datetime, status: RefundStatus
) -> Refund:
    made = Refund(
        paid.protocol, merchant.merchant_id, merchant.next_refund_no(), no, paid.out_trade_no,
        Money.parse(amount, "CNY"), "", status=status, refunded_at=at,
    )  # fmt: skip
    merchant.add_refund(made)
    return made


def bill(merchant: MerchantAccount, day: date = DAY) -> bytes:
    return statement.trade_bill(
        "2088000000000001", day, statement.bill_lines(merchant, "alipay", day), EXPORTED
    )


def test_the_bill_lists_what_completed_on_the_beijing_day_and_nothing_else() -> None:
    merchant = account()
    late = trade(merchant, "pay_late", "100.00", LAST_SECOND)
    trade(merchant, "pay_next", "5.00", NEXT_DAY)
    trade(merchant, "pay_unpaid", "9.00", None)
    trade(merchant, "pay_simpay", "9.00", LAST_SECOND, protocol="simpay")
    refund(merchant, late, "rfd_same_day", "10.00", LAST_SECOND, RefundStatus.SUCCESS)
    refund(merchant, late, "rfd_next_day", "20.00", NEXT_DAY, RefundStatus.SUCCESS)
    refund(merchant, late, "rfd_failed", "1.00", LAST_SECOND, RefundStatus.FAILED)

    parsed = alipay_bill.parse(bill(merchant), "b.csv", "alipay", DAY)
    c = parsed.columns
    assert parsed.account == "2088000000000001"
    assert list(zip(c["kind"], c["our_id"], c["amount_minor"], c["fee_minor"], strict=True)) == [
        ("PAYMENT", "pay_late", 10000, 60),
        ("REFUND", "rfd_same_day", 1000, 6),
    ]
    assert c["reference"] == ["pay_late", "pay_late"] and c["channel_txn_id"] == [late.trade_no, ""]
    assert c["occurred_at"] == [LAST_SECOND, LAST_SECOND]

    following = alipay_bill.parse(
        bill(merchant, DAY + timedelta(days=1)), "b.csv", "alipay", DAY + timedelta(days=1)
    )
    assert sorted(following.columns["our_id"]) == ["pay_next", "rfd_next_day"]


def test_the_summary_and_the_frame_are_alipays() -> None:
    merchant = account()
    paid = trade(merchant, "pay_1", "0.84", LAST_SECOND - timedelta(hours=1))
    trade(merchant, "pay_2", "0.83", LAST_SECOND)
    refund(merchant, paid, "rfd_1", "0.84", LAST_SECOND, RefundStatus.SUCCESS)
    content = bill(merchant)
    text = content.decode("gbk")
    lines = text.splitlines()
    assert lines[0] == "#支付宝业务明细查询" and lines[1] == "#账号：[2088000000000001]"
    assert lines[2] == "#起始日期：[2026年03月01日 00:00:00]   终止日期：[2026年03月02日 00:00:00]"
    assert lines[4].split(",") == list(alipay_bill.HEADER)
    # 0.6 % to the fen, halves up: 0.84 -> 0.00504 -> 0.01; 0.83 -> 0.00498 -> 0.00.
    assert (
        lines[-2]
        == "#交易合计：2笔，退款合计：1笔，订单金额（元）：0.83，商家实收（元）：0.83，服务费（元）：0.00"
    )
    assert lines[-1] == "#导出时间：[2026年03月02日 09:15:00]"
    assert lines[5].startswith(
        f"{paid.trade_no}\t,pay_1\t,交易,goods,2026-03-01 22:58:59,2026-03-01 22:59:59,"
    )
    alipay_bill.parse(content, "b.csv", "alipay", DAY)
    with pytest.raises(StatementError, match="UTF-8"):
        alipay_bill.parse(text.encode("utf-8"), "b.csv", "alipay", DAY)


def test_an_empty_day_is_a_bill_with_no_lines() -> None:
    parsed = alipay_bill.parse(bill(account()), "b.csv", "alipay", DAY)
    assert parsed.line_count == 0


def test_merchant_text_is_made_safe_for_one_gbk_csv_line() -> None:
    merchant = account()
    paid = trade(merchant, 'pay,"quoted"', "1.00", LAST_SECOND)
    paid.subject = '咖啡, "cake"\nline two 🍰'
    parsed = alipay_bill.parse(bill(merchant), "b.csv", "alipay", DAY)
    assert parsed.columns["our_id"] == ['pay,"quoted"']
    row = bill(merchant).decode("gbk").splitlines()[5]
    assert '"咖啡, ""cake"" line two ?"' in row


def test_planted_lines_are_listed_with_the_real_ones() -> None:
    merchant = account()
    real = trade(merchant, "pay_real", "50.00", LAST_SECOND - timedelta(hours=12))
    merchant.add_statement_extra(
        StatementExtra("alipay", DAY, StatementLineKind.PAYMENT, "pay_invented", "SIMX1", Money(1234, "USD"))
    )
    merchant.add_statement_extra(
        StatementExtra(
            "alipay", DAY, StatementLineKind.REFUND, "pay_real", real.trade_no, Money(500, "CNY"),
            out_refund_no="rfd_phantom", refund_no="SIMRX1", occurred_at=LAST_SECOND,
        )
    )  # fmt: skip
    merchant.add_statement_extra(
        StatementExtra("simpay", DAY, StatementLineKind.PAYMENT, "pay_other", "SIMX2", Money(1, "CNY"))
    )
    merchant.add_statement_extra(
        StatementExtra(
            "alipay", DAY + timedelta(days=1), StatementLineKind.PAYMENT, "p", "SIMX3", Money(1, "CNY")
        )
    )
    c = alipay_bill.parse(bill(merchant), "b.csv", "alipay", DAY).columns
    assert list(zip(c["kind"], c["our_id"], c["amount_minor"], strict=True)) == [
        ("PAYMENT", "pay_real", 5000),
        # Without a time, a planted line is listed at noon, Beijing.
        ("PAYMENT", "pay_invented", 1234),
        ("REFUND", "rfd_phantom", 500),
    ]
    assert c["occurred_at"][1] == datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
    assert c["channel_txn_id"][1] == "SIMX1" and c["reference"][2] == "pay_real"


def test_the_protocol_serves_the_bill_under_the_accounts_seller_id() -> None:
    sandbox = Sandbox.create(["M1"], b"k", Behaviour())
    protocol = AlipayProtocol(sandbox)
    merchant = sandbox.merchants["M1"]
    trade(merchant, "pay_1", "3.00", LAST_SECOND)
    parsed = alipay_bill.parse(protocol.statement(merchant, DAY), "b.csv", "alipay", DAY)
    assert parsed.account == protocol.credentials([merchant])["M1"]["seller_id"]
    assert parsed.columns["our_id"] == ["pay_1"]
