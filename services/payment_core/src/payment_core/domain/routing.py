"""Choosing channels for a payment: rules by method, currency and amount, with weights (no I/O).

A rule names the channels that may take a payment and their weights. The
first channel is drawn by weight (from a number fixed per payment, so a
retried request draws the same); the others follow by weight as failover
candidates. Unhealthy channels are skipped. Failover itself happens only
when a channel is known not to have taken the money (see services).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from paykit.errors import FailedPrecondition, InvalidArgument, Unavailable
from paykit.money import Money


@dataclass(frozen=True)
class RouteRule:
    method: str
    channels: tuple[tuple[str, int], ...]
    # None matches any currency / amount.
    currency: str | None = None
    min_amount: Money | None = None
    max_amount: Money | None = None

    def matches(self, method: str, amount: Money) -> bool:
        if method != self.method or (self.currency and amount.currency != self.currency):
            return False
        too_small = self.min_amount is not None and amount.minor < self.min_amount.minor
        too_large = self.max_amount is not None and amount.minor > self.max_amount.minor
        return not (too_small or too_large)


DEFAULT_RULES = '[{"method": "qr", "channels": {"simulator": 1}}]'


def parse_rules(text: str) -> tuple[RouteRule, ...]:
    """Rules from JSON: [{"method", "currency"?, "min"?, "max"?, "channels": {name: weight}}].

    min/max are decimal strings in the rule's currency ("0.01", "50000.00"),
    so a rule with an amount range must name its currency.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"routing rules are not JSON: {exc}") from exc
    if not isinstance(raw, list) or not raw:
        raise ValueError("routing rules must be a non-empty JSON list")
    return tuple(_rule(i, item) for i, item in enumerate(raw))


def _rule(index: int, item: Any) -> RouteRule:
    where = f"rule {index}"
    if not isinstance(item, dict) or not isinstance(item.get("method"), str):
        raise ValueError(f"{where}: needs a string 'method'")
    channels = item.get("channels")
    if not isinstance(channels, dict) or not channels:
        raise ValueError(f"{where}: needs 'channels' as {{name: weight}}")
    weighted = []
    for name, weight in channels.items():
        if not isinstance(weight, int) or weight < 0:
            raise ValueError(f"{where}: weight of {name!r} must be a non-negative integer")
        weighted.append((str(name), weight))
    if not any(w for _, w in weighted):
        raise ValueError(f"{where}: at least one channel needs a positive weight")
    currency = item.get("currency")
    bounds = {}
    for key in ("min", "max"):
        if key in item:
            if not currency:
                raise ValueError(f"{where}: '{key}' needs a 'currency'")
            bounds[key] = Money.parse(str(item[key]), currency)
    return RouteRule(
        method=item["method"],
        channels=tuple(weighted),
        currency=currency,
        min_amount=bounds.get("min"),
        max_amount=bounds.get("max"),
    )


def draw(payment_id: str) -> float:
    """A number in [0, 1) fixed by the payment id: the same payment always draws the same."""
    digest = hashlib.sha256(payment_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_channels(
    rules: Sequence[RouteRule],
    method: str,
    amount: Money,
    is_healthy: Callable[[str], bool],
    pick: float,
) -> list[str]:
    """The channels to try in order: a weighted draw first, then the rest by weight."""
    if not method:
        raise InvalidArgument("method", "is required")
    known_methods = sorted({r.method for r in rules})
    if method not in known_methods:
        raise InvalidArgument("method", f"no channel takes {method!r} payments; known: {known_methods}")
    rule = next((r for r in rules if r.matches(method, amount)), None)
    if rule is None:
        raise FailedPrecondition(f"no route takes a {method} payment of {amount}")
    weighted = [(name, w) for name, w in rule.channels if w > 0]
    healthy = [(name, w) for name, w in weighted if is_healthy(name)]
    if not healthy:
        raise Unavailable(
            f"every channel for {method} {amount.currency} is unhealthy: {[n for n, _ in weighted]}"
        )
    total = sum(w for _, w in healthy)
    target = pick * total
    first = healthy[-1][0]
    running = 0
    for name, weight in healthy:
        running += weight
        if target < running:
            first = name
            break
    rest = sorted((item for item in healthy if item[0] != first), key=lambda item: (-item[1], item[0]))
    return [first, *(name for name, _ in rest)]
