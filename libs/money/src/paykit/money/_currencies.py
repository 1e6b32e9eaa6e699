"""ISO 4217 minor-unit exponents.

The table holds the active ISO 4217 currency codes (list one of the standard,
including the fund codes such as CLF and UYW) together with the number of
digits after the decimal separator that the standard assigns to each.
Precious metals and testing codes (XAU, XTS, XXX, ...) have no minor unit and
are deliberately absent: they can never be a payment currency here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD "
    "BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP "
    "ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR "
    "JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU "
    "MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR "
    "RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS "
    "TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
)


def _build() -> dict[str, int]:
    table: dict[str, int] = {}
    for codes, exp in ((_ZERO, 0), (_TWO, 2), (_THREE, 3), (_FOUR, 4)):
        for code in codes.split():
            if code in table:  # pragma: no cover - guards the literal above
                raise RuntimeError(f"duplicate currency code {code} in the ISO 4217 table")
            table[code] = exp
    return dict(sorted(table.items()))


CURRENCY_EXPONENTS: Mapping[str, int] = MappingProxyType(_build())
"""Read-only map from ISO 4217 alphabetic code to its minor-unit exponent."""
