"""Units of work whose events commit with their state change (the outbox pattern)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

from paykit.db import SqlUnitOfWork
from paykit.messaging.envelope import OutgoingEvent
from paykit.messaging.outbox import add_many_to_outbox, add_to_outbox
from sqlalchemy.orm import Session, sessionmaker


class OutboxUnitOfWork(SqlUnitOfWork):
    """A transaction that owns its session; `publish` stages events in it.

    After a commit that published, `after_commit` runs (the relay's wake-up),
    so events leave at once instead of at the relay's next poll.
    """

    def __init__(self, session_factory: sessionmaker[Session], after_commit: Callable[[], None]) -> None:
        super().__init__(session_factory)
        self._after_commit = after_commit
        self._published = False

    def __enter__(self) -> Self:
        super().__enter__()
        self._published = False
        self.attach(self.session)
        return self

    def attach(self, session: Session) -> None:
        """Subclasses bind their repositories to the session here."""

    def publish(self, event: OutgoingEvent) -> None:
        add_to_outbox(self.session, event)
        self._published = True

    def publish_many(self, events: Sequence[OutgoingEvent]) -> None:
        """Stage a batch in one statement (e.g. the entries of a batch of postings)."""
        add_many_to_outbox(self.session, events)
        self._published = self._published or bool(events)

    def commit(self) -> None:
        super().commit()
        if self._published:
            self._after_commit()


class JoinedTx:
    """The same `publish` inside a transaction owned by someone else (the consumer loop)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.attach(session)

    def attach(self, session: Session) -> None:
        """Subclasses bind their repositories to the session here."""

    def publish(self, event: OutgoingEvent) -> None:
        add_to_outbox(self.session, event)

    def publish_many(self, events: Sequence[OutgoingEvent]) -> None:
        add_many_to_outbox(self.session, events)
