"""Posting journal entries: each posted at most once for its event, balances moved in the
same transaction, refused as a whole when a balance that must not go negative would."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from paykit.errors import FailedPrecondition

from accounting.adapters import events
from accounting.adapters.repository import BalanceWouldGoNegative
from accounting.domain.entries import JournalEntry
from accounting.service_layer.unit_of_work import LedgerTx


class PostingRefused(FailedPrecondition):
    """The entry cannot be posted (a balance would go negative, its capture is unknown...)."""


def post(tx: LedgerTx, batch: Sequence[JournalEntry]) -> list[JournalEntry]:
    """Post the entries whose events were not posted yet; returns those posted now.

    One round trip per step for the whole batch: accounts, entries, balance
    moves (aggregated per account, in account order), lines, outbox events.
    """
    if not batch:
        return []
    tx.ledger.ensure_accounts(account for entry in batch for account in entry.accounts)
    inserted = tx.ledger.insert_entries(batch)
    posted = [entry for entry in batch if entry.entry_id in inserted]
    deltas: dict[str, int] = defaultdict(int)
    for entry in posted:
        for account_id, delta in entry.deltas().items():
            deltas[account_id] += delta
    try:
        tx.ledger.move_balances(deltas)
    except BalanceWouldGoNegative as exc:
        raise PostingRefused(str(exc)) from exc
    tx.ledger.insert_lines(posted)
    tx.publish_many([events.entry_posted(entry) for entry in posted])
    return posted
