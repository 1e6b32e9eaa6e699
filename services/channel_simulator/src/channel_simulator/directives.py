"""Per-request fault directives: magic tokens in a charge's subject.

Real sandboxes pick a test outcome from a magic value in the request (an
amount ending in .01, a special card number); this one reads whitespace-
separated tokens of the charge's `subject`:

    sim:timeout                 the request is lost: no trade, no answer (the connection hangs)
    sim:success_after_timeout   the trade is created and paid, but the answer never comes
    sim:decline                 answered DECLINED (RISK_DECLINED), no trade stored
    sim:delay_notify=<ms>       each notification is sent <ms> later
    sim:duplicate_notify=<n>    each notification is sent <n> times (1..10)
    sim:drop_notify             no notification is ever sent (only a query reveals the outcome)
    sim:out_of_order            paid at once; the notification is delivered before the answer,
                                which is the stale PENDING view (refunds: PROCESSING)
    sim:no_pay                  the payer never pays: the trade stays PENDING
    sim:pay_delay=<ms>          the payer pays <ms> after the charge

Any other token starting with `sim:` is an error (INVALID_DIRECTIVE), so a
typo never silently runs the happy path. The trade keeps its directives:
drop/delay/duplicate_notify and out_of_order apply to its refunds too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from channel_simulator.limits import MAX_DELAY_MS, MAX_NOTIFY_COPIES

PREFIX: Final[str] = "sim:"
_VALUE_SHAPE: Final = re.compile(r"[0-9]{1,9}")
# Modes without a value: directive name -> Directives field.
_FLAGS: Final[dict[str, str]] = {
    "timeout": "timeout",
    "success_after_timeout": "success_after_timeout",
    "decline": "decline",
    "drop_notify": "drop_notify",
    "out_of_order": "out_of_order",
    "no_pay": "no_pay",
}
# Modes with an integer value: directive name -> (field, smallest, largest).
_VALUED: Final[dict[str, tuple[str, int, int]]] = {
    "delay_notify": ("delay_notify_ms", 0, MAX_DELAY_MS),
    "duplicate_notify": ("duplicate_notify", 1, MAX_NOTIFY_COPIES),
    "pay_delay": ("pay_delay_ms", 0, MAX_DELAY_MS),
}
KNOWN: Final[tuple[str, ...]] = tuple(sorted([*_FLAGS, *_VALUED]))


class DirectiveError(ValueError):
    """A `sim:` token that is not a known directive or carries a bad value."""


@dataclass(frozen=True)
class Directives:
    """What one charge asked of the sandbox; unset fields fall back to the merchant's Behaviour."""

    timeout: bool = False
    success_after_timeout: bool = False
    decline: bool = False
    drop_notify: bool = False
    out_of_order: bool = False
    no_pay: bool = False
    delay_notify_ms: int | None = None
    duplicate_notify: int | None = None
    pay_delay_ms: int | None = None

    def tokens(self) -> list[str]:
        """The directives as they were written, for the admin view."""
        written = [name for name, attr in _FLAGS.items() if getattr(self, attr)]
        for name, (attr, _low, _high) in _VALUED.items():
            value = getattr(self, attr)
            if value is not None:
                written.append(f"{name}={value}")
        return written


NONE: Final[Directives] = Directives()


def _parse_token(token: str) -> tuple[str, int | None]:
    """(Directives field, value); the value is None for a flag."""
    name, has_value, raw = token[len(PREFIX) :].partition("=")
    if name in _FLAGS:
        if has_value:
            raise DirectiveError(f"directive {token!r} takes no value")
        return _FLAGS[name], None
    if name in _VALUED:
        attr, low, high = _VALUED[name]
        if not has_value or not _VALUE_SHAPE.fullmatch(raw):
            raise DirectiveError(f"directive {token!r} needs an integer value: {PREFIX}{name}=<int>")
        value = int(raw)
        if not low <= value <= high:
            raise DirectiveError(f"directive {token!r}: value must be within {low}..{high}")
        return attr, value
    raise DirectiveError(f"unknown directive {token!r}; known: {', '.join(KNOWN)}")


def parse_directives(subject: str) -> Directives:
    """The directives in a charge's subject; raises DirectiveError on an unknown or malformed one."""
    found: dict[str, int | None] = {}
    for token in subject.split():
        if not token.startswith(PREFIX):
            continue
        attr, value = _parse_token(token)
        if attr in found:
            raise DirectiveError(f"directive {token!r} is given twice")
        found[attr] = value
    if not found:
        return NONE
    return Directives(
        timeout="timeout" in found,
        success_after_timeout="success_after_timeout" in found,
        decline="decline" in found,
        drop_notify="drop_notify" in found,
        out_of_order="out_of_order" in found,
        no_pay="no_pay" in found,
        delay_notify_ms=found.get("delay_notify_ms"),
        duplicate_notify=found.get("duplicate_notify"),
        pay_delay_ms=found.get("pay_delay_ms"),
    )
