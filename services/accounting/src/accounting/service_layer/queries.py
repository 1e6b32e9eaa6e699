"""Reading the ledger: balances, entries, account statements, the trial balance, failures."""

from __future__ import annotations

from dataclasses import dataclass

from paykit.errors import InvalidArgument, NotFound
from paykit.money import CurrencyError, Money, exponent

from accounting.adapters.repository import StoredAccount
from accounting.domain import accounts as chart
from accounting.domain.entries import JournalEntry
from accounting.service_layer.unit_of_work import UowFactory

MAX_PAGE = 500
DEFAULT_PAGE = 100


@dataclass(frozen=True)
class MerchantBalance:
    accounts: list[StoredAccount]
    pending: Money | None
    available: Money | None
    in_transit: Money | None


def balance(uow_factory: UowFactory, account_id: str, merchant_id: str, currency: str) -> MerchantBalance:
    if bool(account_id) == bool(merchant_id):
        raise InvalidArgument("account_id", "give an account_id, or a merchant_id with a currency")
    with uow_factory() as uow:
        if account_id:
            chart.parse_account_id(account_id)
            stored = uow.ledger.account(account_id)
            if stored is None:
                raise NotFound(f"account {account_id} has no postings")
            return MerchantBalance([stored], None, None, None)
        try:
            exponent(currency)
        except CurrencyError as exc:
            raise InvalidArgument("currency", str(exc)) from exc
        buckets = {
            name: fn(merchant_id, currency)
            for name, fn in (
                ("pending", chart.merchant_pending),
                ("available", chart.merchant_available),
                ("in_transit", chart.merchant_in_transit),
            )
        }
        found = {s.account.account_id: s for s in uow.ledger.accounts_of(merchant_id, currency)}

    def amount(name: str) -> Money:
        stored = found.get(buckets[name].account_id)
        return stored.balance if stored else Money.zero(currency)

    return MerchantBalance(list(found.values()), amount("pending"), amount("available"), amount("in_transit"))


def entry(uow_factory: UowFactory, entry_id: str, event_id: str) -> JournalEntry:
    if bool(entry_id) == bool(event_id):
        raise InvalidArgument("entry_id", "give exactly one of entry_id and event_id")
    with uow_factory() as uow:
        found = uow.ledger.entry(entry_id=entry_id, event_id=event_id)
    if found is None:
        raise NotFound(f"journal entry {entry_id or 'for event ' + event_id} not found")
    return found


def account_lines(
    uow_factory: UowFactory, account_id: str, page_size: int, page_token: str
) -> tuple[list, str]:  # type: ignore[type-arg]
    chart.parse_account_id(account_id)
    if not 0 <= page_size <= MAX_PAGE:
        raise InvalidArgument("page_size", f"must be 1..{MAX_PAGE} (0 means {DEFAULT_PAGE})")
    size = page_size or DEFAULT_PAGE
    try:
        after = int(page_token) if page_token else 0
    except ValueError as exc:
        raise InvalidArgument("page_token", "is not a token this service gave") from exc
    with uow_factory() as uow:
        rows = uow.ledger.account_lines(account_id, after, size)
    next_token = str(rows[-1].line_id) if len(rows) == size else ""
    return rows, next_token


@dataclass(frozen=True)
class Trial:
    totals: dict[str, tuple[int, int]]
    entries: int

    @property
    def balanced(self) -> bool:
        return all(debits == credits for debits, credits in self.totals.values())


def trial_balance(uow_factory: UowFactory) -> Trial:
    with uow_factory() as uow:
        totals, count = uow.ledger.trial_balance()
    return Trial(totals, count)
