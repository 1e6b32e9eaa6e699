from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paykit.money import (
    BPS_PER_UNIT,
    CURRENCY_EXPONENTS,
    MAX_MINOR_UNITS,
    AmountError,
    CurrencyError,
    Money,
    Rounding,
    allocate_fee,
    exponent,
)

CURRENCIES = sorted(CURRENCY_EXPONENTS)
currencies = st.sampled_from(CURRENCIES)
minors = st.integers(min_value=-MAX_MINOR_UNITS, max_value=MAX_MINOR_UNITS)


def money_in(currency: str, *, min_value: int = -MAX_MINOR_UNITS) -> st.SearchStrategy[Money]:
    return st.integers(min_value=min_value, max_value=MAX_MINOR_UNITS).map(
        lambda minor: Money(minor, currency)
    )


# -- currency table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("CNY", 2), ("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("KRW", 0),
        ("HKD", 2), ("SGD", 2), ("AUD", 2), ("CAD", 2), ("CHF", 2), ("INR", 2),
        ("BHD", 3), ("KWD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3), ("CLF", 4),
        ("VND", 0), ("CLP", 0), ("ISK", 0), ("IQD", 3), ("LYD", 3), ("UYW", 4),
    ],
)  # fmt: skip
def test_exponent_matches_iso_4217(currency: str, expected: int) -> None:
    assert exponent(currency) == expected
    assert CURRENCY_EXPONENTS[currency] == expected


def test_currency_table_is_large_and_read_only() -> None:
    assert len(CURRENCY_EXPONENTS) >= 40
    assert set(CURRENCY_EXPONENTS.values()) <= {0, 2, 3, 4}
    with pytest.raises(TypeError):
        CURRENCY_EXPONENTS["XYZ"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    "code", ["cny", "Cny", "CN", "CNYY", "", " CNY", "C1Y", "\uff23\uff2e\uff39", "XAU", "ZZZ"]
)
def test_exponent_rejects_unknown_or_ill_formed_codes(code: str) -> None:
    with pytest.raises(CurrencyError, match="currency"):
        exponent(code)


def test_exponent_rejects_non_str_codes() -> None:
    with pytest.raises(CurrencyError):
        exponent(156)  # type: ignore[arg-type]


# -- construction --------------------------------------------------------------------


def test_money_rejects_bool_and_non_int_minor() -> None:
    with pytest.raises(TypeError, match="int"):
        Money(True, "CNY")
    with pytest.raises(TypeError, match="int"):
        Money(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        Money(Decimal("1"), "CNY")  # type: ignore[arg-type]


def test_money_rejects_unknown_currency() -> None:
    with pytest.raises(CurrencyError):
        Money(100, "cny")
    with pytest.raises(CurrencyError):
        Money(100, "ABC")


def test_money_rejects_magnitude_beyond_max_minor_units() -> None:
    Money(MAX_MINOR_UNITS, "CNY")
    Money(-MAX_MINOR_UNITS, "CNY")
    with pytest.raises(AmountError, match="maximum"):
        Money(MAX_MINOR_UNITS + 1, "CNY")
    with pytest.raises(AmountError, match="maximum"):
        Money(-MAX_MINOR_UNITS - 1, "CNY")


def test_money_is_immutable_and_hashable() -> None:
    m = Money(1999, "CNY")
    with pytest.raises(AttributeError):
        m.minor = 1  # type: ignore[misc]
    assert {m, Money(1999, "CNY")} == {m}


def test_zero_and_predicates() -> None:
    zero = Money.zero("JPY")
    assert zero == Money(0, "JPY")
    assert zero.is_zero and not zero.is_positive and not zero.is_negative
    assert Money(1, "JPY").is_positive and not Money(1, "JPY").is_zero
    assert Money(-1, "JPY").is_negative and not Money(-1, "JPY").is_positive


def test_negate_flips_sign_and_keeps_currency() -> None:
    assert Money(1999, "CNY").negate() == Money(-1999, "CNY")
    assert -Money(-5, "USD") == Money(5, "USD")
    assert Money.zero("EUR").negate() == Money.zero("EUR")


# -- arithmetic and comparison ------------------------------------------------------


def test_add_and_subtract_within_a_currency() -> None:
    assert Money(1999, "CNY") + Money(1, "CNY") == Money(2000, "CNY")
    assert Money(1999, "CNY") - Money(2000, "CNY") == Money(-1, "CNY")


def test_add_subtract_across_currencies_raise_currency_error_never_convert() -> None:
    with pytest.raises(CurrencyError, match="CNY and USD"):
        _ = Money(1, "CNY") + Money(1, "USD")
    with pytest.raises(CurrencyError, match="CNY and USD"):
        _ = Money(1, "CNY") - Money(1, "USD")


def test_arithmetic_with_non_money_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = Money(1, "CNY") + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = sum([Money(1, "CNY")])


def test_multiplication_accepts_int_only() -> None:
    assert Money(250, "CNY") * 3 == Money(750, "CNY")
    assert 3 * Money(250, "CNY") == Money(750, "CNY")
    assert Money(250, "CNY") * -1 == Money(-250, "CNY")
    for factor in (1.5, Decimal("2"), True, Money(1, "CNY"), "2"):
        with pytest.raises(TypeError):
            _ = Money(250, "CNY") * factor  # type: ignore[operator]
        with pytest.raises(TypeError):
            _ = factor * Money(250, "CNY")  # type: ignore[operator]


def test_arithmetic_overflow_beyond_max_is_an_amount_error() -> None:
    with pytest.raises(AmountError):
        _ = Money(MAX_MINOR_UNITS, "CNY") + Money(1, "CNY")
    with pytest.raises(AmountError):
        _ = Money(MAX_MINOR_UNITS, "CNY") * 2


def test_comparisons_within_a_currency() -> None:
    a, b = Money(100, "CNY"), Money(200, "CNY")
    assert a < b and a <= b and b > a and b >= a and a <= a and a >= a
    assert not (b < a) and not (a > b)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_ordering_across_currencies_raises_currency_error(op: str) -> None:
    a, b = Money(100, "CNY"), Money(100, "USD")
    with pytest.raises(CurrencyError):
        eval(f"a {op} b", {}, {"a": a, "b": b})


def test_equality_across_currencies_is_false_not_an_error() -> None:
    assert Money(100, "CNY") != Money(100, "USD")
    assert Money(100, "CNY") != 100  # type: ignore[comparison-overlap]


# Operands bounded so that every partial sum of three stays within MAX_MINOR_UNITS.
thirds = st.integers(min_value=-(MAX_MINOR_UNITS // 3), max_value=MAX_MINOR_UNITS // 3)


@given(currency=currencies, a=thirds, b=thirds, c=thirds)
def test_addition_is_commutative_and_associative_within_a_currency(
    currency: str, a: int, b: int, c: int
) -> None:
    x, y, z = Money(a, currency), Money(b, currency), Money(c, currency)
    assert x + y == y + x
    assert (x + y) + z == x + (y + z)
    assert (x + y) - y == x
    assert x + Money.zero(currency) == x


@given(pair=st.lists(currencies, min_size=2, max_size=2, unique=True), a=minors, b=minors)
def test_mixed_currency_arithmetic_and_ordering_always_raise(pair: list[str], a: int, b: int) -> None:
    x, y = Money(a, pair[0]), Money(b, pair[1])
    with pytest.raises(CurrencyError):
        _ = x + y
    with pytest.raises(CurrencyError):
        _ = x - y
    with pytest.raises(CurrencyError):
        _ = x < y
    assert x != y


# -- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("19.99", "CNY", 1999),
        ("19.9", "CNY", 1990),
        ("20", "CNY", 2000),
        ("0", "CNY", 0),
        ("0.00", "CNY", 0),
        ("0.05", "CNY", 5),
        ("100", "JPY", 100),
        ("1.234", "BHD", 1234),
        ("1.2345", "CLF", 12345),
        ("10000000000000.00", "CNY", MAX_MINOR_UNITS),
        ("1000000000000000", "JPY", MAX_MINOR_UNITS),
    ],
)
def test_parse_reads_exact_minor_units(text: str, currency: str, minor: int) -> None:
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [("0.001", "CNY"), ("19.999", "CNY"), ("19.990", "CNY"), ("100.0", "JPY"), ("100.00", "JPY"),
     ("1.0000", "BHD"), ("1.23450", "CLF")],
)  # fmt: skip
def test_parse_rejects_more_decimals_than_currency_allows(text: str, currency: str) -> None:
    with pytest.raises(AmountError, match=rf"more decimal places than {currency} allows"):
        Money.parse(text, currency)


def test_parse_error_message_names_the_amount_currency_and_exponent() -> None:
    with pytest.raises(AmountError) as caught:
        Money.parse("19.999", "CNY")
    assert str(caught.value) == "amount '19.999' has more decimal places than CNY allows (2)"


@pytest.mark.parametrize(
    "text",
    [
        "", "1e3", "1E3", " 1", "1 ", "1\n", "\t1", "1,000", "1_000", "NaN", "nan", "Infinity",
        "inf", "-inf", "+1", "+-1", "-+1", "--1", "\u0661\u0662", "\uff11\uff12", "1.2.3",
        ".5", "5.", "-.5", "-", ".", "007", "00.5", "0x10", "1/2", "19.99CNY", "¥19.99", "\u200b1",
    ],
)  # fmt: skip
def test_parse_rejects_malformed_amounts(text: str) -> None:
    with pytest.raises(AmountError):
        Money.parse(text, "CNY", allow_negative=True)


def test_parse_rejects_non_str_amounts_such_as_json_floats() -> None:
    with pytest.raises(AmountError, match="must be a str"):
        Money.parse(19.99, "CNY")  # type: ignore[arg-type]
    with pytest.raises(AmountError, match="must be a str"):
        Money.parse(1999, "CNY")  # type: ignore[arg-type]


def test_parse_accepts_leading_minus_only_when_allow_negative() -> None:
    with pytest.raises(AmountError, match="negative"):
        Money.parse("-0.05", "CNY")
    assert Money.parse("-0.05", "CNY", allow_negative=True) == Money(-5, "CNY")
    with pytest.raises(AmountError, match="negative"):
        Money.parse("-0", "CNY")


def test_parse_rejects_zero_when_not_allowed() -> None:
    for text in ("0", "0.00", "0.0"):
        with pytest.raises(AmountError, match="zero"):
            Money.parse(text, "CNY", allow_zero=False)
    with pytest.raises(AmountError, match="zero"):
        Money.parse("-0.00", "CNY", allow_zero=False, allow_negative=True)
    assert Money.parse("0.01", "CNY", allow_zero=False) == Money(1, "CNY")


def test_parse_rejects_amounts_above_max_minor_units() -> None:
    with pytest.raises(AmountError, match="maximum"):
        Money.parse("10000000000000.01", "CNY")
    with pytest.raises(AmountError, match="maximum"):
        Money.parse("1000000000000001", "JPY")
    with pytest.raises(AmountError, match="maximum"):
        Money.parse("-99999999999999999", "CNY", allow_negative=True)
    with pytest.raises(AmountError, match="too long"):
        Money.parse("9" * 5000, "CNY")


def test_parse_rejects_unknown_currency_with_currency_error() -> None:
    with pytest.raises(CurrencyError):
        Money.parse("1.00", "RMB")


@given(
    currency=currencies,
    whole=st.integers(min_value=0, max_value=10**9),
    extra=st.integers(min_value=1, max_value=5),
    digits=st.data(),
)
def test_parse_never_accepts_more_decimals_than_the_exponent(
    currency: str, whole: int, extra: int, digits: st.DataObject
) -> None:
    places = exponent(currency) + extra
    fraction = digits.draw(st.text(alphabet="0123456789", min_size=places, max_size=places))
    with pytest.raises(AmountError, match="more decimal places"):
        Money.parse(f"{whole}.{fraction}", currency, allow_negative=True)


@given(text=st.text(max_size=30))
def test_parse_either_returns_exact_value_or_raises_amount_error(text: str) -> None:
    try:
        m = Money.parse(text, "CNY", allow_negative=True)
    except AmountError:
        return
    # Anything accepted is a plain decimal whose exact value equals the result.
    assert Decimal(text) == Decimal(m.minor).scaleb(-2)


# -- formatting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1999, "CNY"), "19.99"),
        (Money(-5, "CNY"), "-0.05"),
        (Money(0, "CNY"), "0.00"),
        (Money(100, "JPY"), "100"),
        (Money(-100, "JPY"), "-100"),
        (Money(0, "JPY"), "0"),
        (Money(1, "BHD"), "0.001"),
        (Money(12345, "CLF"), "1.2345"),
        (Money(MAX_MINOR_UNITS, "CNY"), "10000000000000.00"),
    ],
)
def test_format_gives_canonical_string_with_exactly_exponent_decimals(money: Money, text: str) -> None:
    assert money.format() == text


def test_str_includes_the_currency() -> None:
    assert str(Money(1999, "CNY")) == "19.99 CNY"


@given(currency=currencies, minor=minors)
def test_parse_of_format_round_trips_for_all_currencies(currency: str, minor: int) -> None:
    m = Money(minor, currency)
    assert Money.parse(m.format(), currency, allow_negative=True) == m


@st.composite
def canonical_amounts(draw: st.DrawFn) -> tuple[str, str]:
    currency = draw(currencies)
    exp = exponent(currency)
    whole = draw(st.integers(min_value=0, max_value=MAX_MINOR_UNITS // 10**exp - 1))
    fraction = draw(st.text(alphabet="0123456789", min_size=exp, max_size=exp))
    negative = draw(st.booleans()) and (whole > 0 or fraction.strip("0") != "")
    text = ("-" if negative else "") + str(whole) + ("." + fraction if exp else "")
    return text, currency


@given(amount=canonical_amounts())
def test_format_of_parse_round_trips_canonical_strings(amount: tuple[str, str]) -> None:
    text, currency = amount
    assert Money.parse(text, currency, allow_negative=True).format() == text


# -- fees -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "bps", "rounding", "fee"),
    [
        # 1005 * 60 / 10000 = 6.03
        (1005, 60, Rounding.DOWN, 6),
        (1005, 60, Rounding.UP, 7),
        (1005, 60, Rounding.HALF_UP, 6),
        (1005, 60, Rounding.HALF_EVEN, 6),
        # 250 * 100 / 10000 = 2.5 (exact half)
        (250, 100, Rounding.HALF_UP, 3),
        (250, 100, Rounding.HALF_EVEN, 2),
        (250, 100, Rounding.DOWN, 2),
        (250, 100, Rounding.UP, 3),
        # 350 * 100 / 10000 = 3.5 (exact half, odd quotient)
        (350, 100, Rounding.HALF_EVEN, 4),
        # 1999 * 38 / 10000 = 7.5962
        (1999, 38, Rounding.HALF_UP, 8),
        (1999, 38, Rounding.DOWN, 7),
        # exact
        (10000, 60, Rounding.UP, 60),
        (0, 60, Rounding.UP, 0),
        (1999, 0, Rounding.UP, 0),
        (1999, 10000, Rounding.DOWN, 1999),
    ],
)
def test_allocate_fee_applies_the_named_rounding_rule(
    minor: int, bps: int, rounding: Rounding, fee: int
) -> None:
    assert allocate_fee(Money(minor, "CNY"), bps, rounding) == Money(fee, "CNY")


def test_allocate_fee_rejects_negative_amounts_and_rates_out_of_range() -> None:
    with pytest.raises(AmountError, match="negative"):
        allocate_fee(Money(-1, "CNY"), 60, Rounding.UP)
    with pytest.raises(AmountError, match="bps"):
        allocate_fee(Money(100, "CNY"), -1, Rounding.UP)
    with pytest.raises(AmountError, match="bps"):
        allocate_fee(Money(100, "CNY"), 10_001, Rounding.UP)
    with pytest.raises(TypeError):
        allocate_fee(Money(100, "CNY"), 0.6, Rounding.UP)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        allocate_fee(Money(100, "CNY"), True, Rounding.UP)
    with pytest.raises(TypeError):
        allocate_fee(Money(100, "CNY"), 60, "half_up")  # type: ignore[arg-type]


_DECIMAL_MODES = {
    Rounding.HALF_UP: decimal.ROUND_HALF_UP,
    Rounding.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    Rounding.DOWN: decimal.ROUND_DOWN,
    Rounding.UP: decimal.ROUND_UP,
}


@given(
    currency=currencies,
    minor=st.integers(min_value=0, max_value=MAX_MINOR_UNITS),
    bps=st.integers(min_value=0, max_value=BPS_PER_UNIT),
    rounding=st.sampled_from(list(Rounding)),
)
def test_allocate_fee_is_within_zero_and_amount_and_matches_decimal_rounding(
    currency: str, minor: int, bps: int, rounding: Rounding
) -> None:
    amount = Money(minor, currency)
    fee = allocate_fee(amount, bps, rounding)
    assert fee.currency == currency
    assert Money.zero(currency) <= fee <= amount
    # Independent computation: exact Decimal product, quantized with the stdlib mode.
    context = decimal.Context(prec=60, rounding=_DECIMAL_MODES[rounding], traps=[decimal.Inexact])
    exact = context.divide(Decimal(minor * bps), Decimal(BPS_PER_UNIT))
    expected = int(exact.quantize(Decimal(1), rounding=_DECIMAL_MODES[rounding]))
    assert fee.minor == expected


@given(
    minor=st.integers(min_value=0, max_value=MAX_MINOR_UNITS),
    bps=st.integers(min_value=0, max_value=BPS_PER_UNIT),
)
def test_allocate_fee_rounding_modes_are_ordered(minor: int, bps: int) -> None:
    amount = Money(minor, "CNY")
    down = allocate_fee(amount, bps, Rounding.DOWN)
    up = allocate_fee(amount, bps, Rounding.UP)
    half_up = allocate_fee(amount, bps, Rounding.HALF_UP)
    half_even = allocate_fee(amount, bps, Rounding.HALF_EVEN)
    assert down <= half_even <= half_up <= up
    assert up.minor - down.minor in (0, 1)
    assert (up.minor == down.minor) == (minor * bps % BPS_PER_UNIT == 0)
