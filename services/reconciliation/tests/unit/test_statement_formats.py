"""The three statement formats: what a good file gives, and every bad file refused with its line
and field, nothing half-read."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from reconciliation.statements import StatementError, parse_statement

DAY = date(2026, 11, 24)
A_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)


def alipay_line(
    trade: str, order: str, kind: str, amount: str, fee: str, refund: str = "", at: str = "10:00:05"
) -> str:
    return (
        f"{trade}\t,{order}\t,{kind},商品,2026-11-24 10:00:00,2026-11-24 {at},,,,,buyer,{amount},{amount},"
        f"0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{refund},{fee},0.00,"
    )


def alipay_bill(lines: list[str], summary: str | None = None, end: bool = True) -> bytes:
    text = [
        "#支付宝业务明细查询",
        "#账号：[2088000000000001]",
        "#起始日期：[2026年11月24日 00:00:00]   终止日期：[2026年11月25日 00:00:00]",
        "#-----------------------------------------业务明细列表----------------------------------------",
        A_HEADER,
        *lines,
    ]
    if end:
        text.append(
            "#-----------------------------------------业务明细列表结束------------------------------------"
        )
        text.append(
            summary
            or "#交易合计：2笔，退款合计：1笔，订单金额（元）：139.99，商家实收（元）：139.99，服务费（元）：-0.84"
        )
        text.append("#导出时间：[2026年11月25日 09:15:00]")
    return "\n".join(text).encode("gbk")


GOOD_ALIPAY = [
    alipay_line("2026112422001", "pay_1", "交易", "100.00", "-0.60"),
    alipay_line("2026112422002", "pay_2", "交易", "49.99", "-0.30"),
    alipay_line("2026112422001", "pay_1", "退款", "-10.00", "0.06", refund="rfd_1", at="12:00:00"),
]


def test_an_alipay_bill_gives_one_line_per_payment_and_refund() -> None:
    parsed = parse_statement("alipay-trade-bill", alipay_bill(GOOD_ALIPAY), "a.csv", "alipay", DAY)
    c = parsed.columns
    assert parsed.account == "2088000000000001" and parsed.line_count == 3
    assert c["kind"] == ["PAYMENT", "PAYMENT", "REFUND"]
    assert c["our_id"] == ["pay_1", "pay_2", "rfd_1"] and c["reference"] == ["pay_1", "pay_2", "pay_1"]
    assert c["channel_txn_id"] == ["2026112422001", "2026112422002", ""]
    assert c["amount_minor"] == [10000, 4999, 1000] and c["fee_minor"] == [60, 30, 6]
    assert c["line_no"] == [6, 7, 8]
    assert c["occurred_at"][0] == datetime(2026, 11, 24, 2, 0, 5, tzinfo=UTC)  # China time -> UTC
    assert parsed.to_arrow().num_rows == 3


@pytest.mark.parametrize(
    ("content", "where", "reason"),
    [
        (alipay_bill(GOOD_ALIPAY).decode("gbk").encode("utf-8"), "line 1", "is UTF-8"),
        (alipay_bill(GOOD_ALIPAY, end=False), "line 8", "truncated"),
        (alipay_bill(GOOD_ALIPAY)[:-60], "line", "truncated"),
        (alipay_bill(GOOD_ALIPAY).replace("备注".encode("gbk"), "附言".encode("gbk")), "line 5", "unknown column(s) 附言"),
        (alipay_bill([*GOOD_ALIPAY[:2], GOOD_ALIPAY[2].replace("-10.00", "-10.005")]), "line 8, field 订单金额", "decimal places"),
        (alipay_bill([GOOD_ALIPAY[0].replace("交易", "转账"), *GOOD_ALIPAY[1:]]), "line 6, field 业务类型", "'转账'"),
        (alipay_bill([GOOD_ALIPAY[0].replace("2026-11-24 10:00:05", "2026-11-24 25:00:05"), *GOOD_ALIPAY[1:]]),
         "line 6, field 完成时间", "not a date"),
        (alipay_bill(GOOD_ALIPAY, summary="#交易合计：2笔，退款合计：1笔，订单金额（元）：140.00，商家实收（元）：139.99，服务费（元）：-0.84"),
         "line 10", "订单金额 is 140.00, the lines add up to 139.99"),
        (alipay_bill(GOOD_ALIPAY, summary="#交易合计：3笔，退款合计：1笔，订单金额（元）：139.99，商家实收（元）：139.99，服务费（元）：-0.84"),
         "line 10", "交易合计 is 3"),
        (b"\xff\xfe" + alipay_bill(GOOD_ALIPAY), "line 1", "not gbk"),
    ],
)  # fmt: skip
def test_a_bad_alipay_bill_is_refused_naming_line_and_field(content: bytes, where: str, reason: str) -> None:
    with pytest.raises(StatementError) as caught:
        parse_statement("alipay-trade-bill", content, "a.csv", "alipay", DAY)
    message = str(caught.value)
    assert message.startswith("a.csv") and where in message and reason in message, message


def test_an_alipay_bill_of_another_day_is_refused() -> None:
    with pytest.raises(StatementError, match=r"bill of 2026-11-24, not of 2026-11-25"):
        parse_statement("alipay-trade-bill", alipay_bill(GOOD_ALIPAY), "a.csv", "alipay", date(2026, 11, 25))


W_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
)
W_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def wechat_line(txn: str, order: str, state: str, amount: str, fee: str, refund_no: str = "", refund_id: str = "",
                refund: str = "0.00") -> str:  # fmt: skip
    values = [
        "2026-11-24 10:00:00", "wx0000", "1900000109", "0", "", txn, order, "openid", "NATIVE", state, "CMC", "CNY",
        amount, "0.00", refund_no, refund_id, refund, "0.00", "ORIGINAL" if refund_id else "",
        "SUCCESS" if refund_id else "", "商品", "", fee, "0.60%", amount if not refund_id else "0.00",
        refund, "",
    ]  # fmt: skip
    return ",".join("`" + v for v in values)


def wechat_bill(lines: list[str], summary: str = "`3,`149.99,`10.00,`0.00,`0.84,`149.99,`10.00") -> bytes:
    return "\n".join([W_HEADER, *lines, W_SUMMARY, summary]).encode("utf-8")


GOOD_WECHAT = [
    wechat_line("4200000001", "pay_1", "SUCCESS", "100.00", "0.60"),
    wechat_line("4200000002", "pay_2", "SUCCESS", "49.99", "0.30"),
    wechat_line("4200000001", "pay_1", "REFUND", "100.00", "-0.06", "5030000001", "rfd_1", "10.00"),
]


def test_a_wechat_bill_gives_one_line_per_payment_and_refund() -> None:
    parsed = parse_statement("wechatpay-trade-bill", wechat_bill(GOOD_WECHAT), "w.csv", "wechatpay", DAY)
    c = parsed.columns
    assert parsed.account == "1900000109"
    assert c["kind"] == ["PAYMENT", "PAYMENT", "REFUND"]
    assert c["channel_txn_id"] == ["4200000001", "4200000002", "5030000001"]
    assert c["our_id"] == ["pay_1", "pay_2", "rfd_1"] and c["amount_minor"] == [10000, 4999, 1000]
    assert c["fee_minor"] == [60, 30, 6]


@pytest.mark.parametrize(
    ("content", "where", "reason"),
    [
        (wechat_bill(GOOD_WECHAT).replace(b"`4200000002", b"4200000002"), "line 3", "field 6 does not start with a backtick"),
        (wechat_bill(GOOD_WECHAT).split(W_SUMMARY.encode())[0], "line", "truncated: no summary header"),
        (wechat_bill(GOOD_WECHAT, summary="`3,`149.99,`9.00,`0.00,`0.84,`149.99,`10.00"), "line 6", "退款总金额 is 9.00, the lines add up to 10.00"),
        (wechat_bill(GOOD_WECHAT, summary="`4,`149.99,`10.00,`0.00,`0.84,`149.99,`10.00"), "line 6", "总交易单数 is 4"),
        (wechat_bill(GOOD_WECHAT).decode().encode("gbk"), "line 1", "not utf-8"),
        (wechat_bill([GOOD_WECHAT[0].replace("`CNY", "`USD"), *GOOD_WECHAT[1:]]), "line 2, field 货币种类", "'USD'"),
        (wechat_bill([GOOD_WECHAT[0].replace("`100.00", "`1e2", 1), *GOOD_WECHAT[1:]]), "line 2, field 应结订单金额", "not a plain decimal"),
    ],
)  # fmt: skip
def test_a_bad_wechat_bill_is_refused_naming_line_and_field(content: bytes, where: str, reason: str) -> None:
    with pytest.raises(StatementError) as caught:
        parse_statement("wechatpay-trade-bill", content, "w.csv", "wechatpay", DAY)
    message = str(caught.value)
    assert where in message and reason in message, message


C_HEADER = "record_type,batch_id,line_ref,type,count,gross,fees,net,currency,settled_at"


def card_statement(lines: list[str], trailer: str | None = "TRAILER,,,,5,350.00,9.00,241.00,USD,") -> bytes:
    rows = ["# settlement,merchant=ACQ-M-1,date=2026-11-24", C_HEADER, *lines]
    if trailer is not None:
        rows.append(trailer)
    return "\n".join(rows).encode()


GOOD_CARD = [
    "BATCH,B1,1,SALE,3,200.00,6.00,194.00,USD,2026-11-24T23:30:00Z",
    "BATCH,B1,2,REFUND,1,50.00,0.00,-50.00,USD,2026-11-24T23:30:00Z",
    "BATCH,B2,1,SALE,1,100.00,3.00,97.00,USD,2026-11-24T23:45:00Z",
]


def test_a_card_statement_gives_batch_lines() -> None:
    parsed = parse_statement("card-settlement-csv", card_statement(GOOD_CARD), "c.csv", "card", DAY)
    c = parsed.columns
    assert c["batch_id"] == ["B1", "B1", "B2"] and c["kind"] == ["PAYMENT", "REFUND", "PAYMENT"]
    assert c["amount_minor"] == [20000, 5000, 10000] and c["fee_minor"] == [600, 0, 300]
    assert c["currency"] == ["USD"] * 3 and c["channel_txn_id"] == ["", "", ""]


@pytest.mark.parametrize(
    ("content", "where", "reason"),
    [
        (card_statement(GOOD_CARD, trailer=None), "line 5", "truncated: no TRAILER"),
        (card_statement(GOOD_CARD, trailer="TRAILER,,,,5,350.00,9.00,240.00,USD,"), "line 6", "net is 240.00, the lines add up to 241.00"),
        (card_statement([GOOD_CARD[0].replace("194.00", "195.00"), *GOOD_CARD[1:]]), "line 3, field net", "is not 194.00"),
        (card_statement([*GOOD_CARD, GOOD_CARD[0]]), "line 6, field line_ref", "appears twice"),
        (card_statement([GOOD_CARD[0].replace("USD", "EUR"), *GOOD_CARD[1:]]), "line 4, field currency", "USD in a EUR"),
        (card_statement(GOOD_CARD).replace(b"date=2026-11-24", b"date=2026-11-23"), "line 1", "not of 2026-11-24"),
        (card_statement(GOOD_CARD).replace(b",fees,", b",fee,"), "line 2", "missing column(s) fees"),
        (card_statement([GOOD_CARD[0].replace(",3,", ",0,"), *GOOD_CARD[1:]]), "line 3, field count", "not a positive"),
    ],
)  # fmt: skip
def test_a_bad_card_statement_is_refused_naming_line_and_field(
    content: bytes, where: str, reason: str
) -> None:
    with pytest.raises(StatementError) as caught:
        parse_statement("card-settlement-csv", content, "c.csv", "card", DAY)
    message = str(caught.value)
    assert where in message and reason in message, message


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(StatementError, match="unknown statement format 'paypal-csv'"):
        parse_statement("paypal-csv", b"", "p.csv", "paypal", DAY)
