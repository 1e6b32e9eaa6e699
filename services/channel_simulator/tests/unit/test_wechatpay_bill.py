"""The sandbox's WeChat Pay trade bill, read by reconciliation's own parser: the day is China's,
only what succeeded is listed, fees are 0.6 % rounded half up (returned on refunds), planted
lines sit among the real ones, and the summary adds up."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from channel_simulator.accounts import (
    MerchantAccount,
    Refund,
    StatementExtra,
    StatementLineKind,
    Trade,
)
from channel_simulator.protocols.wechatpay.bills import fee_of, trade_bill
from channel_simulator.protocols.wechatpay.keys import MerchantKeys
from channel_simulator.protocols.wechatpay.views import transaction_id
from paykit.money import Money
from reconciliation.statements.wechatpay import parse

NAME = "wechatpay"
DAY = date(2026, 11, 25)


def cny(minor: int) -> Money:
    return Money(minor, "CNY")


def paid_trade(
    account: MerchantAccount,
    out_trade_no: str,
    minor: int,
    paid_at: datetime,
    *,
    protocol: str = NAME,
    subject: str = "茶",
) -> Trade:
    trade = Trade(
        protocol, account.merchant_id, account.next_trade_no(), out_trade_no, cny(minor), "", subject
    )
    trade.pay()
    trade.paid_at = paid_at
    account.add_trade(trade)
    return trade


def refund_of(
    account: MerchantAccount,
    trade: Trade,
    out_refund_no: str,
    minor: int,
    done_at: datetime,
    *,
    succeeded: bool = True,
) -> Refund:
    number = account.next_refund_no()
    refund = Refund(NAME, account.merchant_id, number, out_refund_no, trade.out_trade_no, cny(minor), "")
    refund.finish(succeeded)
    refund.refunded_at = done_at
    account.add_refund(refund)
    return refund


@pytest.fixture(scope="module")
def keys() -> MerchantKeys:
    return MerchantKeys.generate(MerchantAccount("BILL", 1))


@pytest.mark.parametrize(("minor", "fee"), [(10_000, 60), (4_999, 30), (250, 2), (249, 1), (84, 1), (83, 0)])
def test_the_fee_is_sixty_basis_points_rounded_half_up_to_the_fen(minor: int, fee: int) -> None:
    assert fee_of(cny(minor)) == cny(fee)


def test_the_bill_lists_the_china_day_s_successes_with_fees_and_totals(keys: MerchantKeys) -> None:
    account = MerchantAccount("BILL", 1)
    # 00:30 on the 25th in China (16:30 UTC on the 24th): on the bill of the 25th.
    early = paid_trade(account, "pay_early_001", 10_000, datetime(2026, 11, 24, 16, 30, tzinfo=UTC))
    late_at = datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)
    late = paid_trade(account, "pay_late_0001", 250, late_at, subject="tea, with `milk`\nand sugar")
    # 23:59:59 on the 24th in China: not on the 25th's bill.
    paid_trade(account, "pay_before_01", 777, datetime(2026, 11, 24, 15, 59, 59, tzinfo=UTC))
    # Another protocol's trade at the same account, and a trade never paid.
    paid_trade(account, "pay_simpay_01", 555, datetime(2026, 11, 25, 3, 0, tzinfo=UTC), protocol="simpay")
    account.add_trade(Trade(NAME, "BILL", account.next_trade_no(), "pay_unpaid_01", cny(999), ""))
    refund_of(account, early, "rfd_ok_00001", 1_000, datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    refund_of(account, early, "rfd_declined1", 500, datetime(2026, 11, 25, 5, 0, tzinfo=UTC), succeeded=False)

    content = trade_bill(keys, account, DAY)
    parsed = parse(content, "bill.csv", NAME, DAY)
    c = parsed.columns
    assert parsed.account == keys.mchid
    assert c["kind"] == ["PAYMENT", "REFUND", "PAYMENT"]
    assert c["our_id"] == ["pay_early_001", "rfd_ok_00001", "pay_late_0001"]
    assert c["reference"] == ["pay_early_001", "pay_early_001", "pay_late_0001"]
    assert c["channel_txn_id"][0] == transaction_id(early.trade_no)
    assert c["amount_minor"] == [10_000, 1_000, 250] and c["fee_minor"] == [60, 6, 2]
    assert c["occurred_at"][0] == datetime(2026, 11, 24, 16, 30, tzinfo=UTC)
    text = content.decode("utf-8-sig")
    assert text.splitlines()[-1] == "`3,`102.50,`10.00,`0.00,`0.56,`102.50,`10.00"
    assert "`-0.06," in text and "`0.60%" in text and late.subject not in text


def test_planted_lines_are_listed_on_their_day_and_counted(keys: MerchantKeys) -> None:
    account = MerchantAccount("BILL", 1)
    real = paid_trade(account, "pay_real_0001", 2_000, datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    refund = refund_of(account, real, "rfd_real_0001", 500, datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    payment, refund_kind = StatementLineKind.PAYMENT, StatementLineKind.REFUND
    invented = StatementExtra(NAME, DAY, payment, "pay_invented1", account.next_trade_no(), cny(4_999))
    # The same refund listed twice: the copy at noon of its day.
    twice = StatementExtra(
        NAME, DAY, refund_kind, "pay_real_0001", real.trade_no, cny(500), "rfd_real_0001", refund.refund_no
    )
    elsewhere = StatementExtra("simpay", DAY, payment, "pay_simpay_1", "SIM1", cny(1))
    other_day = StatementExtra(NAME, date(2026, 11, 26), payment, "pay_later_01", "SIM2", cny(1))
    for extra in (invented, twice, elsewhere, other_day):
        assert account.add_statement_extra(extra)

    parsed = parse(trade_bill(keys, account, DAY), "bill.csv", NAME, DAY)
    c = parsed.columns
    # Both planted lines at noon China time (04:00 UTC), in the order they were planted.
    assert c["our_id"] == ["pay_real_0001", "rfd_real_0001", "pay_invented1", "rfd_real_0001"]
    assert c["channel_txn_id"][1] == c["channel_txn_id"][3]
    assert c["occurred_at"][2:] == [datetime(2026, 11, 25, 4, 0, tzinfo=UTC)] * 2
    assert c["amount_minor"] == [2_000, 500, 4_999, 500] and c["fee_minor"] == [12, 3, 30, 3]


def test_a_quiet_day_is_an_empty_bill_with_a_zero_summary(keys: MerchantKeys) -> None:
    content = trade_bill(keys, MerchantAccount("BILL", 1), DAY)
    assert parse(content, "bill.csv", NAME, DAY).line_count == 0
    assert content.decode("utf-8-sig").splitlines()[-1] == "`0,`0.00,`0.00,`0.00,`0.00,`0.00,`0.00"
