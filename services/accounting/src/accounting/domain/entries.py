"""Journal entries (no I/O): at least two lines, positive amounts, debits equal credits
per currency. An entry is immutable once built; a mistake is corrected by its reversal."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from paykit.errors import InvalidArgument
from paykit.money import Money

from accounting.domain.accounts import Account, Side


class EntryKind(enum.Enum):
    CAPTURE = "capture"
    DUPLICATE_CAPTURE = "duplicate_capture"
    REFUND = "refund"
    DUPLICATE_REFUND = "duplicate_refund"
    RELEASE = "release"
    SETTLEMENT = "settlement"
    PAYOUT = "payout"
    PAYOUT_FAILED = "payout_failed"
    ADJUSTMENT = "adjustment"
    REVERSAL = "reversal"


@dataclass(frozen=True)
class Line:
    account: Account
    side: Side
    amount: Money

    def signed_for_account(self) -> int:
        """This line's effect on the account's balance in its normal direction."""
        return self.amount.minor if self.side is self.account.normal_side else -self.amount.minor


@dataclass(frozen=True)
class JournalEntry:
    entry_id: str
    event_id: str
    kind: EntryKind
    reference: str
    lines: tuple[Line, ...]
    created_at: datetime
    description: str = ""
    actor: str = ""
    reason: str = ""
    reverses_entry_id: str = ""
    # Accounts the entry touches, in a fixed order, so every posting locks them alike.
    accounts: tuple[Account, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        check_balanced(self.lines)
        ordered = sorted({line.account.account_id: line.account for line in self.lines}.items())
        object.__setattr__(self, "accounts", tuple(account for _, account in ordered))

    def deltas(self) -> dict[str, int]:
        """Per account, the change of its balance (normal direction)."""
        changes: dict[str, int] = defaultdict(int)
        for line in self.lines:
            changes[line.account.account_id] += line.signed_for_account()
        return dict(changes)


class UnbalancedEntry(InvalidArgument):
    """Refused: the lines would not keep debits equal to credits."""


def check_balanced(lines: Sequence[Line]) -> None:
    if len(lines) < 2:
        raise UnbalancedEntry("lines", f"an entry needs at least 2 lines, got {len(lines)}")
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for index, line in enumerate(lines):
        if not line.amount.is_positive:
            raise UnbalancedEntry(f"lines[{index}].amount", f"must be positive, got {line.amount}")
        if line.amount.currency != line.account.currency:
            raise UnbalancedEntry(
                f"lines[{index}].amount.currency",
                f"{line.account.account_id} is kept in {line.account.currency}, not {line.amount.currency}",
            )
        totals[line.amount.currency][0 if line.side is Side.DEBIT else 1] += line.amount.minor
    for currency, (debits, credits) in sorted(totals.items()):
        if debits != credits:
            raise UnbalancedEntry(
                "lines",
                f"{currency} debits {Money(debits, currency)} "
                f"do not equal credits {Money(credits, currency)}",
            )


def reversal_lines(entry: JournalEntry) -> tuple[Line, ...]:
    return tuple(Line(line.account, line.side.opposite, line.amount) for line in entry.lines)
