"""What the card protocol keeps per sandbox account, beside the shared core's trades and refunds.

The keys (made at start-up), the idempotent answers kept under Idempotency-Key, the declined
PaymentIntents (the core stores no trade for a decline, Stripe keeps the intent), the search
index on metadata, the one webhook endpoint, and the settlement batches. Pure state, no I/O.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from channel_simulator.accounts import Refund, Trade

# Answers kept under Idempotency-Key per account; Stripe prunes keys after 24 hours, the
# sandbox forgets the oldest beyond this many.
MAX_IDEMPOTENT_ANSWERS: Final = 100_000
# Declined intents kept per account for retrieve and search; the oldest are forgotten first.
MAX_DECLINED_INTENTS: Final = 10_000
# Intents listed under one metadata value (a payment id names one or two; a shared value many).
MAX_INTENTS_PER_METADATA_VALUE: Final = 1_000
# Captures per settlement batch (a batch is per account, day and currency).
BATCH_MAX_CAPTURES: Final = 100
# Random bytes in a generated key or object id.
KEY_BYTES: Final = 24
ID_BYTES: Final = 12


def new_id(prefix: str) -> str:
    """A Stripe-looking object id ("pi_...", "re_..."): random, so ids never repeat across restarts."""
    return f"{prefix}_{secrets.token_hex(ID_BYTES)}"


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given under an Idempotency-Key, replayed byte for byte."""

    fingerprint: tuple[object, ...]
    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    url: str
    # Event types sent there; "*" is every type.
    enabled_events: tuple[str, ...]
    created_s: int

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


@dataclass
class Batches:
    """Settlement batch ids, B<yyyymmdd>-<account>-<nnn>: per account, day and currency, a new
    batch every `max_captures` captures; a refund joins its day's open batch in its currency."""

    account_number: int
    max_captures: int = BATCH_MAX_CAPTURES
    # (day, currency) -> (the open batch, captures in it).
    _open: dict[tuple[date, str], tuple[str, int]] = field(default_factory=dict)
    # Batches opened per day, whatever the currency: numbers are unique per account and day.
    _opened: dict[date, int] = field(default_factory=dict)

    def _new(self, day: date, currency: str) -> str:
        number = self._opened.get(day, 0) + 1
        self._opened[day] = number
        batch_id = f"B{day:%Y%m%d}-{self.account_number:02d}-{number:03d}"
        self._open[(day, currency)] = (batch_id, 0)
        return batch_id

    def for_capture(self, day: date, currency: str) -> str:
        batch_id, captures = self._open.get((day, currency), ("", self.max_captures))
        if captures >= self.max_captures:
            batch_id = self._new(day, currency)
            captures = 0
        self._open[(day, currency)] = (batch_id, captures + 1)
        return batch_id

    def for_refund(self, day: date, currency: str) -> str:
        found = self._open.get((day, currency))
        return found[0] if found is not None else self._new(day, currency)


def card_account_id(account_id: str) -> str:
    """The account's id at the acquirer ("acct_..."), readable from the sandbox account id."""
    return "acct_" + (re.sub(r"[^0-9a-z]", "", account_id.lower()) or "sandbox")


@dataclass
class CardAccount:
    account_id: str
    card_id: str
    secret_key: str
    webhook_secret: str
    batches: Batches
    answers: OrderedDict[str, StoredAnswer] = field(default_factory=OrderedDict)
    # Idempotency keys whose first request is still running.
    running: set[str] = field(default_factory=set)
    in_flight: int = 0
    declined: OrderedDict[str, Trade] = field(default_factory=OrderedDict)
    # (metadata key, value) -> intent ids, oldest first.
    _index: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    endpoint: WebhookEndpoint | None = None

    @classmethod
    def generate(cls, account_id: str, number: int, batch_max_captures: int) -> CardAccount:
        """Fresh sandbox keys, Stripe-shaped; for local use only."""
        return cls(
            account_id=account_id,
            card_id=card_account_id(account_id),
            secret_key="sk_test_" + secrets.token_hex(KEY_BYTES),
            webhook_secret="whsec_" + secrets.token_hex(KEY_BYTES),
            batches=Batches(number, batch_max_captures),
        )

    # -- idempotency --------------------------------------------------------------------
    def remember(self, key: str, answer: StoredAnswer) -> None:
        self.answers[key] = answer
        while len(self.answers) > MAX_IDEMPOTENT_ANSWERS:
            self.answers.popitem(last=False)

    # -- intents the core does not keep, and the search index ------------------------------
    def keep_declined(self, trade: Trade) -> None:
        self.declined[trade.out_trade_no] = trade
        self.index(trade.out_trade_no, trade.extra.get("metadata", {}))
        while len(self.declined) > MAX_DECLINED_INTENTS:
            _, old = self.declined.popitem(last=False)
            self._unindex(old.out_trade_no, old.extra.get("metadata", {}))

    def index(self, intent_id: str, metadata: dict[str, str]) -> None:
        for pair in metadata.items():
            listed = self._index.setdefault(pair, [])
            listed.append(intent_id)
            del listed[:-MAX_INTENTS_PER_METADATA_VALUE]

    def _unindex(self, intent_id: str, metadata: dict[str, str]) -> None:
        for pair in metadata.items():
            listed = self._index.get(pair, [])
            if intent_id in listed:
                listed.remove(intent_id)
            if not listed:
                self._index.pop(pair, None)

    def search(self, key: str, value: str) -> list[str]:
        """Intent ids whose metadata[key] is value, newest first."""
        return list(reversed(self._index.get((key, value), [])))


def batch_of(record: Trade | Refund) -> str | None:
    found = record.extra.get("batch_id")
    return found if isinstance(found, str) else None
