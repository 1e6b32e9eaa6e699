"""Work that must happen only once a transaction has committed (a metric, a wake-up).

`on_commit(session, callback)` runs `callback` after the session's outermost
transaction commits, and never when the transaction it was registered in
rolls back, savepoints included. The point is to count what really happened:
a state change registered inside a consumer batch that is rolled back and
applied again one savepoint per message must be counted once, not twice.
SQLAlchemy's own `after_commit` event also fires when a savepoint is
released, before the outer transaction is safe, hence this small layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

_PENDING = "paykit.db.on_commit"

Pending = list[tuple[SessionTransaction, Callable[[], None]]]


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        raise RuntimeError("on_commit needs a session inside a transaction")
    pending: Pending | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _run_pending)
        event.listen(session, "after_soft_rollback", _drop_rolled_back)
    pending.append((transaction, callback))


def _run_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the outer transaction can still roll back
    pending: Pending = session.info.get(_PENDING, [])
    callbacks = [callback for _, callback in pending]
    pending.clear()
    for callback in callbacks:
        try:
            callback()
        except Exception:
            # The transaction has committed: a failing follow-up must not look like its failure.
            log.exception("on_commit callback failed")


def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending: Pending = session.info.get(_PENDING, [])
    pending[:] = [(t, c) for t, c in pending if not _inside(t, previous_transaction)]


def _inside(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
