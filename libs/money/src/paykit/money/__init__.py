"""Exact money amounts in integer minor units.

Rules this module enforces everywhere:

* An amount is an ``int`` count of the currency's minor unit (fen, cent, ...)
  plus an ISO 4217 code. There is no float anywhere, and no implicit rounding.
* Amounts of different currencies never mix: ``+``, ``-`` and ordering
  comparisons across currencies raise :class:`CurrencyError` (there is no
  conversion). ``==`` across currencies is simply ``False``.
* Every :class:`Money` stays within ``±MAX_MINOR_UNITS`` (10**15 minor units),
  which keeps it comfortably inside a signed 64-bit column and turns garbage
  input or runaway arithmetic into an :class:`AmountError`.
* Decimal strings are parsed exactly (:meth:`Money.parse`) and formatted
  canonically (:meth:`Money.format`), and the two round-trip.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from ._currencies import CURRENCY_EXPONENTS

__all__ = [
    "BPS_PER_UNIT",
    "CURRENCY_EXPONENTS",
    "MAX_MINOR_UNITS",
    "AmountError",
    "CurrencyError",
    "Money",
    "Rounding",
    "allocate_fee",
    "exponent",
]

MAX_MINOR_UNITS: Final[int] = 10**15
"""Largest absolute value, in minor units, that a :class:`Money` may hold."""

BPS_PER_UNIT: Final[int] = 10_000
"""Basis points in a whole: a rate of 10_000 bps is 100 %."""

_CURRENCY_SHAPE: Final = re.compile(r"[A-Z]{3}")
# ASCII digits only ([0-9] never matches other Unicode digits, unlike \d).
# No exponent, no grouping, no "+" sign, no leading zeros, no bare "." forms.
_AMOUNT_SHAPE: Final = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?")
# Longer than any acceptable amount ("-" + 16 integer digits + "." + 4 decimals).
_MAX_AMOUNT_TEXT: Final[int] = 32
_SHOWN_TEXT: Final[int] = 40


class CurrencyError(ValueError):
    """An unknown or ill-formed currency code, or a mix of two currencies."""


class AmountError(ValueError):
    """An amount that is malformed, inexact for its currency, or out of range."""


def _show(value: object) -> str:
    """repr() of user input for error messages, truncated so garbage stays short."""
    if isinstance(value, str) and len(value) > _SHOWN_TEXT:
        return repr(value[:_SHOWN_TEXT]) + "..."
    return repr(value)


def exponent(currency: str) -> int:
    """Return the ISO 4217 minor-unit exponent of ``currency`` (``"CNY"`` -> 2).

    The code must be exactly three uppercase ASCII letters and appear in
    :data:`CURRENCY_EXPONENTS`; lowercase codes are *not* normalised, because a
    channel that sends ``"cny"`` is sending a wrong format.

    Raises:
        CurrencyError: for anything else.
    """
    if not isinstance(currency, str) or not _CURRENCY_SHAPE.fullmatch(currency):
        raise CurrencyError(f"currency {_show(currency)} is not a 3-letter uppercase ISO 4217 code")
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise CurrencyError(f"currency {currency!r} is not a known ISO 4217 code") from None


class Rounding(enum.Enum):
    """How a fractional number of minor units becomes a whole one.

    Every mode is defined on the exact rational result; for the non-negative
    values :func:`allocate_fee` works with:

    * ``HALF_UP``: to the nearest unit, exact halves go up (away from zero).
    * ``HALF_EVEN``: to the nearest unit, exact halves go to the even unit
      (banker's rounding).
    * ``DOWN``: towards zero (truncate).
    * ``UP``: away from zero (any remainder adds one unit).
    """

    HALF_UP = "half_up"
    HALF_EVEN = "half_even"
    DOWN = "down"
    UP = "up"


def _divide(numerator: int, denominator: int, rounding: Rounding) -> int:
    """Integer ``numerator / denominator`` rounded by ``rounding`` (both >= 0, d > 0)."""
    quotient, remainder = divmod(numerator, denominator)
    if remainder == 0 or rounding is Rounding.DOWN:
        return quotient
    if rounding is Rounding.UP:
        return quotient + 1
    twice = 2 * remainder
    if rounding is Rounding.HALF_UP:
        return quotient + 1 if twice >= denominator else quotient
    if rounding is Rounding.HALF_EVEN:
        if twice > denominator or (twice == denominator and quotient % 2 == 1):
            return quotient + 1
        return quotient
    raise TypeError(f"rounding must be a Rounding, got {rounding!r}")


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``minor`` units of ``currency`` (``Money(1999, "CNY")`` is 19.99).

    Raises (on construction):
        TypeError: ``minor`` is not an ``int`` (``bool`` is rejected too).
        CurrencyError: ``currency`` is not a known ISO 4217 code.
        AmountError: ``abs(minor)`` exceeds :data:`MAX_MINOR_UNITS`.
    """

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError(f"Money.minor must be an int, got {type(self.minor).__name__}")
        exponent(self.currency)
        if abs(self.minor) > MAX_MINOR_UNITS:
            raise AmountError(
                f"amount of {self.minor} minor units of {self.currency} exceeds the "
                f"maximum of {MAX_MINOR_UNITS}"
            )

    # -- construction -----------------------------------------------------------------

    @classmethod
    def zero(cls, currency: str) -> Money:
        """The zero amount of ``currency``."""
        return cls(0, currency)

    @classmethod
    def parse(
        cls,
        amount: str,
        currency: str,
        *,
        allow_negative: bool = False,
        allow_zero: bool = True,
    ) -> Money:
        """Parse a decimal string exactly, using the currency's exponent.

        Accepted: ASCII digits with an optional ``.`` and fractional part, e.g.
        ``"19.99"`` -> 1999, ``"19.9"`` -> 1990, ``"20"`` -> 2000 for CNY, and a
        leading ``-`` only when ``allow_negative`` is true.

        Rejected with :class:`AmountError` (never rounded, never "fixed up"):

        * more decimal places than the currency's exponent, **even when the extra
          digits are zeros**: ``"19.990"`` CNY and ``"100.0"`` JPY are rejected.
          A channel that sends more places than the currency has is sending a wrong
          format, and accepting it would hide that (and e.g. a JPY/CNY mix-up);
        * signs other than a permitted leading ``-`` (``"+1"``, ``"+-1"``, ``"--1"``),
          exponents (``"1e3"``), grouping (``"1,000"``, ``"1_000"``), whitespace
          (``" 1"``), ``"NaN"``/``"Infinity"``, non-ASCII digits (``"١٢"``),
          the empty string, bare-point forms (``".5"``, ``"5."``), and leading zeros
          in the integer part (``"007"``; ``"0.07"`` is fine);
        * zero when ``allow_zero`` is false (``"0"``, ``"0.00"``, ``"-0"``);
        * magnitudes above :data:`MAX_MINOR_UNITS` minor units.

        Raises:
            AmountError: see above; also when ``amount`` is not a ``str``.
            CurrencyError: ``currency`` is not a known ISO 4217 code.
        """
        exp = exponent(currency)
        if not isinstance(amount, str):
            raise AmountError(f"amount must be a str, got {type(amount).__name__}")
        if amount == "":
            raise AmountError("amount is empty")
        if len(amount) > _MAX_AMOUNT_TEXT:
            raise AmountError(f"amount {_show(amount)} is too long ({len(amount)} characters) to be valid")
        match = _AMOUNT_SHAPE.fullmatch(amount) if amount.isascii() else None
        if match is None:
            raise AmountError(
                f"amount {_show(amount)} is not a plain decimal number "
                "(ASCII digits with an optional '.', no sign other than '-', "
                "no exponent, grouping, whitespace or leading zeros)"
            )
        sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
        if sign and not allow_negative:
            raise AmountError(f"amount {amount!r} is negative, which is not allowed here")
        if len(fraction) > exp:
            raise AmountError(f"amount {amount!r} has more decimal places than {currency} allows ({exp})")
        magnitude = int(whole + fraction.ljust(exp, "0"))
        if magnitude > MAX_MINOR_UNITS:
            raise AmountError(f"amount {amount!r} exceeds the maximum of {MAX_MINOR_UNITS} minor units")
        if magnitude == 0 and not allow_zero:
            raise AmountError(f"amount {amount!r} is zero, which is not allowed here")
        return cls(-magnitude if sign else magnitude, currency)

    # -- rendering --------------------------------------------------------------------

    def format(self) -> str:
        """Canonical decimal string with exactly ``exponent`` decimals.

        ``"19.99"``, ``"-0.05"``, ``"0.00"`` for CNY; ``"100"`` for JPY. Always
        ``Money.parse(m.format(), m.currency, allow_negative=True) == m``.
        """
        exp = exponent(self.currency)
        sign = "-" if self.minor < 0 else ""
        digits = str(abs(self.minor))
        if exp == 0:
            return sign + digits
        digits = digits.rjust(exp + 1, "0")
        return f"{sign}{digits[:-exp]}.{digits[-exp:]}"

    def __str__(self) -> str:
        return f"{self.format()} {self.currency}"

    # -- predicates -------------------------------------------------------------------

    @property
    def is_zero(self) -> bool:
        """True when the amount is exactly zero."""
        return self.minor == 0

    @property
    def is_positive(self) -> bool:
        """True when the amount is strictly greater than zero."""
        return self.minor > 0

    @property
    def is_negative(self) -> bool:
        """True when the amount is strictly less than zero."""
        return self.minor < 0

    # -- arithmetic -------------------------------------------------------------------

    def negate(self) -> Money:
        """The same amount with the opposite sign."""
        return Money(-self.minor, self.currency)

    def __neg__(self) -> Money:
        return self.negate()

    def _same_currency(self, other: Money, operation: str) -> None:
        if other.currency != self.currency:
            raise CurrencyError(
                f"cannot {operation} {self.currency} and {other.currency} amounts "
                "(no currency conversion is done)"
            )

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        return Money(self.minor - other.minor, self.currency)

    def __mul__(self, factor: int) -> Money:
        if not isinstance(factor, int) or isinstance(factor, bool):
            return NotImplemented
        return Money(self.minor * factor, self.currency)

    def __rmul__(self, factor: int) -> Money:
        return self.__mul__(factor)

    # -- ordering (within one currency only) ----------------------------------------

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.minor >= other.minor


def allocate_fee(amount: Money, rate_bps: int, rounding: Rounding) -> Money:
    """Fee of ``rate_bps`` basis points on ``amount``, rounded to whole minor units.

    The exact fee ``amount.minor * rate_bps / 10_000`` is rounded with the named
    ``rounding`` rule using integer arithmetic only. The result is always within
    ``[0, amount]``.

    Raises:
        TypeError: ``rate_bps`` is not an ``int`` or ``rounding`` not a :class:`Rounding`.
        AmountError: ``amount`` is negative, or ``rate_bps`` is outside ``0..10_000``.
    """
    if not isinstance(amount, Money):
        raise TypeError(f"amount must be Money, got {type(amount).__name__}")
    if not isinstance(rate_bps, int) or isinstance(rate_bps, bool):
        raise TypeError(f"rate_bps must be an int, got {type(rate_bps).__name__}")
    if not isinstance(rounding, Rounding):
        raise TypeError(f"rounding must be a Rounding, got {rounding!r}")
    if not 0 <= rate_bps <= BPS_PER_UNIT:
        raise AmountError(f"fee rate {rate_bps} bps is outside 0..{BPS_PER_UNIT}")
    if amount.minor < 0:
        raise AmountError(f"cannot compute a fee on the negative amount {amount}")
    return Money(_divide(amount.minor * rate_bps, BPS_PER_UNIT, rounding), amount.currency)
