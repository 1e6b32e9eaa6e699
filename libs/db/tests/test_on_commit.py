"""on_commit: after the outermost commit only, never after a rollback, savepoints included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from paykit.db import on_commit
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    # No I/O beyond memory: the behaviour under test is the ORM session's, not a server's.
    engine = create_engine("sqlite://")
    try:
        yield sessionmaker(engine)
    finally:
        engine.dispose()


def test_runs_after_the_outer_commit_not_when_a_savepoint_is_released(
    sessions: sessionmaker[Session],
) -> None:
    ran: list[str] = []
    with sessions() as session, session.begin():
        on_commit(session, lambda: ran.append("outer"))
        savepoint = session.begin_nested()
        on_commit(session, lambda: ran.append("savepoint"))
        savepoint.commit()
        assert ran == [], "a released savepoint can still be rolled back with its transaction"
    assert ran == ["outer", "savepoint"]


def test_never_runs_when_the_transaction_rolls_back(sessions: sessionmaker[Session]) -> None:
    ran: list[str] = []
    with pytest.raises(ValueError), sessions() as session, session.begin():
        on_commit(session, lambda: ran.append("lost"))
        raise ValueError("the use case failed")
    assert ran == []


def test_a_rolled_back_savepoint_drops_only_its_own_callbacks(sessions: sessionmaker[Session]) -> None:
    """The consumer loop's slow path: one savepoint per message, a poison one rolled back."""
    ran: list[str] = []
    with sessions() as session, session.begin():
        for name, poison in (("first", False), ("poison", True), ("last", False)):
            savepoint = session.begin_nested()
            on_commit(session, lambda name=name: ran.append(name))  # type: ignore[misc]
            if poison:
                savepoint.rollback()
            else:
                savepoint.commit()
    assert ran == ["first", "last"]


def test_each_transaction_of_a_session_runs_its_own_callbacks_once(sessions: sessionmaker[Session]) -> None:
    ran: list[str] = []
    with sessions() as session:
        with session.begin():
            on_commit(session, lambda: ran.append("t1"))
        with session.begin():
            on_commit(session, lambda: ran.append("t2"))
    assert ran == ["t1", "t2"]


def test_a_failing_callback_neither_undoes_the_commit_nor_stops_the_others(
    sessions: sessionmaker[Session],
) -> None:
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("metric backend down")

    with sessions() as session, session.begin():
        on_commit(session, boom)
        on_commit(session, lambda: ran.append("after"))
    assert ran == ["after"]


def test_needs_a_transaction(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(RuntimeError, match="inside a transaction"):
        on_commit(session, lambda: None)
