"""Storing downloaded statements and announcing them on channel.statements."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from paykit.contracts.convert import timestamp
from paykit.events.v1.channel_events_pb2 import StatementDownloaded
from paykit.ids import IdKind, deterministic_id
from paykit.messaging.envelope import pack
from paykit.messaging.publisher import AcknowledgedPublisher
from paykit.messaging.topics import CHANNEL_STATEMENTS
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from channel_gateway.adapters.tables import statement_files
from channel_gateway.domain.channel import StatementFile

STATEMENT_DOWNLOADED_EVENT = "channel.statement_downloaded"
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class StoredStatement:
    statement_id: str
    channel: str
    day: date
    format: str
    filename: str
    sha256: str
    size_bytes: int
    downloaded_at: datetime


def statement_id_of(channel: str, day: date, sha256: str) -> str:
    """The same bytes of the same channel and day are always the same statement."""
    return deterministic_id(IdKind.STATEMENT, channel, day.isoformat(), sha256)


def store(session: Session, channel: str, file: StatementFile) -> StoredStatement:
    sha256 = hashlib.sha256(file.content).hexdigest()
    statement_id = statement_id_of(channel, file.day, sha256)
    session.execute(
        insert(statement_files)
        .values(
            statement_id=statement_id,
            channel=channel,
            day=file.day,
            format=file.format,
            filename=file.filename or f"{channel}-{file.day.isoformat()}",
            sha256=sha256,
            size_bytes=len(file.content),
            content=file.content,
            downloaded_at=func.now(),
        )
        .on_conflict_do_nothing(constraint="statement_files_same_bytes")
    )
    found = get(session, statement_id)
    assert found is not None  # just inserted, or there before with the same bytes
    return found


_COLUMNS = [c for c in statement_files.c if c.name != "content"]


def get(session: Session, statement_id: str) -> StoredStatement | None:
    row = session.execute(select(*_COLUMNS).where(statement_files.c.statement_id == statement_id)).first()
    if row is None:
        return None
    return StoredStatement(
        row.statement_id, row.channel, row.day, row.format, row.filename, row.sha256, row.size_bytes,
        row.downloaded_at,
    )  # fmt: skip


def chunk(session: Session, statement_id: str, start: int) -> bytes:
    """CHUNK_BYTES of the content from byte `start`: a large file never sits in memory whole."""
    piece: bytes = session.execute(
        select(func.substring(statement_files.c.content, start + 1, CHUNK_BYTES)).where(
            statement_files.c.statement_id == statement_id
        )
    ).scalar_one()  # substring counts from 1
    return bytes(piece)


def announce(publisher: AcknowledgedPublisher, stored: StoredStatement) -> None:
    payload = StatementDownloaded(
        statement_id=stored.statement_id,
        channel=stored.channel,
        day=stored.day.isoformat(),
        format=stored.format,
        filename=stored.filename,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        downloaded_at=timestamp(stored.downloaded_at),
    )
    event = pack(
        topic=CHANNEL_STATEMENTS,
        key=stored.channel,
        event_type=STATEMENT_DOWNLOADED_EVENT,
        aggregate_type="statement",
        aggregate_id=stored.statement_id,
        payload=payload,
        producer="channel-gateway",
        # One event per statement: a second download of the same bytes repeats the same event.
        event_id=deterministic_id(IdKind.EVENT, "statement", stored.statement_id),
    )
    publisher.publish(event.topic, event.key, event.value, [])


class KafkaStatementSink:
    def __init__(self, publisher: AcknowledgedPublisher) -> None:
        self._publisher = publisher

    def announce(self, stored: StoredStatement) -> None:
        announce(self._publisher, stored)
