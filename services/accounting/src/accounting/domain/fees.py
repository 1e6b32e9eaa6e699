"""Fee rates per merchant and channel (no I/O), computed in minor units with a named rounding rule.

Configured as JSON, e.g.
    {"merchant_bps": 60, "channel_bps": 38, "rounding": "half_up", "refund_fee": "return",
     "merchants": {"m-1": {"merchant_bps": 50, "refund_fee": "keep"}},
     "channels": {"simulator_b": {"channel_bps": 30}}}
`merchant_bps` is what we charge the merchant, `channel_bps` what the channel
charges us; `refund_fee` says whether a refund returns the merchant fee on the
refunded amount ("return") or we keep it ("keep").
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from paykit.money import BPS_PER_UNIT, Money, Rounding, allocate_fee

E = TypeVar("E", bound=enum.Enum)


class RefundFee(enum.Enum):
    RETURN = "return"
    KEEP = "keep"


@dataclass(frozen=True)
class MerchantTerms:
    merchant_bps: int
    refund_fee: RefundFee


@dataclass(frozen=True)
class FeeSchedule:
    merchant_bps: int = 60
    channel_bps: int = 38
    rounding: Rounding = Rounding.HALF_UP
    refund_fee: RefundFee = RefundFee.RETURN
    merchants: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)

    def terms(self, merchant: str) -> MerchantTerms:
        own = self.merchants.get(merchant, {})
        return MerchantTerms(
            int(own.get("merchant_bps", self.merchant_bps)),
            RefundFee(own.get("refund_fee", self.refund_fee.value)),
        )

    def merchant_fee(self, merchant: str, amount: Money) -> Money:
        return allocate_fee(amount, self.terms(merchant).merchant_bps, self.rounding)

    def channel_fee(self, channel: str, amount: Money) -> Money:
        bps = int(self.channels.get(channel, {}).get("channel_bps", self.channel_bps))
        return allocate_fee(amount, bps, self.rounding)


def _bps(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= BPS_PER_UNIT:
        raise ValueError(
            f"{where} must be an integer number of basis points 0..{BPS_PER_UNIT}, got {value!r}"
        )
    return value


def _choice(kind: type[E], value: Any, where: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValueError(f"fee schedule: {where} must be one of {allowed}, got {value!r}") from None


def parse_fee_schedule(text: str) -> FeeSchedule:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"fee schedule is not JSON: {exc}") from exc
    except RecursionError:
        raise ValueError("fee schedule is not JSON this parser can read: nested too deeply") from None
    if not isinstance(raw, dict):
        raise ValueError("fee schedule must be a JSON object")
    unknown = set(raw) - {"merchant_bps", "channel_bps", "rounding", "refund_fee", "merchants", "channels"}
    if unknown:
        raise ValueError(f"unknown fee schedule keys: {sorted(unknown)}")
    rounding = _choice(Rounding, raw.get("rounding", "half_up"), "rounding")
    refund_fee = _choice(RefundFee, raw.get("refund_fee", "return"), "refund_fee")
    merchants = raw.get("merchants", {})
    channels = raw.get("channels", {})
    if not isinstance(merchants, dict) or not isinstance(channels, dict):
        raise ValueError("fee schedule: 'merchants' and 'channels' must be objects")
    for name, terms in merchants.items():
        if not isinstance(terms, dict) or set(terms) - {"merchant_bps", "refund_fee"}:
            raise ValueError(f"fee schedule: merchants.{name} takes merchant_bps and refund_fee")
        if "merchant_bps" in terms:
            _bps(terms["merchant_bps"], f"merchants.{name}.merchant_bps")
        if "refund_fee" in terms:
            _choice(RefundFee, terms["refund_fee"], f"merchants.{name}.refund_fee")
    for name, terms in channels.items():
        if not isinstance(terms, dict) or set(terms) != {"channel_bps"}:
            raise ValueError(f"fee schedule: channels.{name} takes channel_bps")
        _bps(terms["channel_bps"], f"channels.{name}.channel_bps")
    return FeeSchedule(
        merchant_bps=_bps(raw.get("merchant_bps", 60), "merchant_bps"),
        channel_bps=_bps(raw.get("channel_bps", 38), "channel_bps"),
        rounding=rounding,
        refund_fee=refund_fee,
        merchants=merchants,
        channels=channels,
    )
