"""Money leaves and enters WeChat Pay as integer fen of CNY, exactly or not at all."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from channel_gateway.adapters.connectors.wechatpay import transformers
from hypothesis import given
from hypothesis import strategies as st
from paykit.money import MAX_MINOR_UNITS, AmountError, CurrencyError, Money

FEN = st.integers(min_value=1, max_value=MAX_MINOR_UNITS)


@given(FEN)
def test_money_to_fen_and_back_is_the_identity(fen: int) -> None:
    money = Money(fen, "CNY")
    assert transformers.money_of_fen(transformers.fen_of(money)) == money
    assert transformers.fen_of(transformers.money_of_fen(fen, "CNY")) == fen


@given(FEN)
def test_fen_survive_the_json_wire_unchanged(fen: int) -> None:
    wire = json.loads(
        json.dumps({"amount": {"total": transformers.fen_of(Money(fen, "CNY")), "currency": "CNY"}})
    )
    assert transformers.money_of_fen(wire["amount"]["total"], wire["amount"]["currency"]) == Money(fen, "CNY")


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.integers(min_value=1).map(str),
        st.integers(min_value=1).map(lambda n: f"{n / 100:.2f}"),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    )
)
def test_anything_but_an_integer_of_fen_is_refused(value: object) -> None:
    with pytest.raises(AmountError, match="not an integer count of fen"):
        transformers.money_of_fen(value)


@given(st.integers(min_value=-MAX_MINOR_UNITS, max_value=0))
def test_zero_and_negative_fen_are_refused(fen: int) -> None:
    with pytest.raises(AmountError, match="not a positive count of fen"):
        transformers.money_of_fen(fen)
    with pytest.raises(AmountError, match="not positive"):
        transformers.fen_of(Money(fen, "CNY"))


@given(FEN, st.sampled_from(["USD", "JPY", "HKD", "cny", "", None, 156]))
def test_another_currency_is_refused_both_ways(fen: int, currency: object) -> None:
    with pytest.raises(CurrencyError):
        transformers.money_of_fen(fen, currency)
    if isinstance(currency, str) and currency in ("USD", "JPY", "HKD"):
        with pytest.raises(CurrencyError, match="CNY only"):
            transformers.fen_of(Money(fen, currency))


def test_fen_beyond_what_money_holds_are_refused() -> None:
    with pytest.raises(AmountError):
        transformers.money_of_fen(MAX_MINOR_UNITS + 1)
    assert transformers.money_of_fen(1999) == Money.parse("19.99", "CNY")
    assert Decimal(transformers.fen_of(Money.parse("19.99", "CNY"))) == Decimal(1999)
