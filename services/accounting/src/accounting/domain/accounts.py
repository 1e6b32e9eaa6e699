"""The chart of accounts (no I/O). An account id says what the account is:
`<type>:<purpose>[:<owner>]:<currency>[:<bucket>]`, e.g.
`liability:merchant_payable:m-1:CNY:pending`.

A balance is kept in the account's normal direction: an asset's debits, a
liability's or income's credits, count positive.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from paykit.errors import InvalidArgument


class AccountType(enum.Enum):
    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"


class Side(enum.Enum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"

    @property
    def opposite(self) -> Side:
        return Side.CREDIT if self is Side.DEBIT else Side.DEBIT


NORMAL_SIDE = {
    AccountType.ASSET: Side.DEBIT,
    AccountType.EXPENSE: Side.DEBIT,
    AccountType.LIABILITY: Side.CREDIT,
    AccountType.INCOME: Side.CREDIT,
}


@dataclass(frozen=True)
class Account:
    account_id: str
    type: AccountType
    currency: str
    owner: str = ""
    must_not_go_negative: bool = False

    @property
    def normal_side(self) -> Side:
        return NORMAL_SIDE[self.type]


# Owners (merchant and channel ids) are free text from events: keep them to a safe alphabet.
_OWNER = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _owner(value: str, field: str) -> str:
    if not _OWNER.fullmatch(value):
        raise InvalidArgument(field, f"must be 1-64 of A-Z a-z 0-9 . _ -, got {value!r}")
    return value


def channel_clearing(channel: str, currency: str) -> Account:
    """What the channel holds for us: it took the payer's money and owes it to us."""
    return Account(
        f"asset:channel_clearing:{_owner(channel, 'channel')}:{currency}",
        AccountType.ASSET,
        currency,
        channel,
    )


def merchant_pending(merchant: str, currency: str) -> Account:
    """Owed to the merchant, not yet settleable (awaiting reconciliation or T+N)."""
    owner = _owner(merchant, "merchant_id")
    return Account(
        f"liability:merchant_payable:{owner}:{currency}:pending", AccountType.LIABILITY, currency, owner, True
    )


def merchant_available(merchant: str, currency: str) -> Account:
    owner = _owner(merchant, "merchant_id")
    return Account(
        f"liability:merchant_payable:{owner}:{currency}:available",
        AccountType.LIABILITY,
        currency,
        owner,
        True,
    )


def merchant_in_transit(merchant: str, currency: str) -> Account:
    """Settled and being paid out to the merchant's bank."""
    owner = _owner(merchant, "merchant_id")
    return Account(
        f"liability:merchant_payable:{owner}:{currency}:in_transit",
        AccountType.LIABILITY,
        currency,
        owner,
        True,
    )


def fee_revenue(currency: str) -> Account:
    return Account(f"income:fee_revenue:{currency}", AccountType.INCOME, currency)


def channel_fee_expense(channel: str, currency: str) -> Account:
    owner = _owner(channel, "channel")
    return Account(f"expense:channel_fees:{owner}:{currency}", AccountType.EXPENSE, currency, owner)


def refunds_payable(currency: str) -> Account:
    """Owed back to payers: duplicate payments on their way back."""
    return Account(f"liability:refunds_payable:{currency}", AccountType.LIABILITY, currency, "", True)


def suspense(currency: str) -> Account:
    """Reconciliation differences until they are explained; may go either way."""
    return Account(f"liability:suspense:{currency}", AccountType.LIABILITY, currency)


def settlement_bank(currency: str) -> Account:
    """Our bank account that merchant payouts leave from."""
    return Account(f"asset:settlement_bank:{currency}", AccountType.ASSET, currency)


_PARSERS = {
    ("asset", "channel_clearing"): lambda parts: channel_clearing(parts[2], parts[3]),
    ("expense", "channel_fees"): lambda parts: channel_fee_expense(parts[2], parts[3]),
    ("income", "fee_revenue"): lambda parts: fee_revenue(parts[2]),
    ("liability", "refunds_payable"): lambda parts: refunds_payable(parts[2]),
    ("liability", "suspense"): lambda parts: suspense(parts[2]),
    ("asset", "settlement_bank"): lambda parts: settlement_bank(parts[2]),
}
_MERCHANT_BUCKETS = {
    "pending": merchant_pending,
    "available": merchant_available,
    "in_transit": merchant_in_transit,
}


def parse_account_id(account_id: str, field: str = "account_id") -> Account:
    """The chart's account for an id, or InvalidArgument: unknown accounts are never invented."""
    from paykit.money import CurrencyError, exponent

    parts = account_id.split(":")
    try:
        if (
            parts[:2] == ["liability", "merchant_payable"]
            and len(parts) == 5
            and parts[4] in _MERCHANT_BUCKETS
        ):
            exponent(parts[3])
            return _MERCHANT_BUCKETS[parts[4]](parts[2], parts[3])
        parser = _PARSERS.get((parts[0], parts[1])) if len(parts) >= 3 else None
        expected = 4 if (parts[:2] in (["asset", "channel_clearing"], ["expense", "channel_fees"])) else 3
        if parser is None or len(parts) != expected:
            raise InvalidArgument(field, f"unknown account {account_id!r}")
        exponent(parts[-1])
        return parser(parts)
    except CurrencyError as exc:
        raise InvalidArgument(field, f"unknown account {account_id!r}: {exc}") from exc
