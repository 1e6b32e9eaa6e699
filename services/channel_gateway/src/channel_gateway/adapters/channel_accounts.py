"""Storing channel accounts: kind, sealed config, enabled; the config leaves only opened."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from channel_gateway.adapters.config_box import ConfigBox, ConfigKeyError
from channel_gateway.adapters.tables import channel_accounts


@dataclass(frozen=True)
class ChannelAccount:
    channel: str
    kind: str
    enabled: bool
    config: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class ListedAccount:
    """What may be shown: never the config."""

    channel: str
    kind: str
    enabled: bool
    key_id: str
    updated_at: datetime


def put(session: Session, box: ConfigBox, channel: str, kind: str, config: Mapping[str, Any]) -> bool:
    """Store (or replace) the account; True when it is new."""
    now = func.now()
    sealed = box.seal(channel, config)
    existed = session.execute(
        select(channel_accounts.c.channel).where(channel_accounts.c.channel == channel).with_for_update()
    ).first()
    session.execute(
        insert(channel_accounts)
        .values(
            channel=channel,
            kind=kind,
            config_sealed=sealed,
            key_id=box.key_id,
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_update(
            index_elements=[channel_accounts.c.channel],
            set_={
                "kind": kind,
                "config_sealed": sealed,
                "key_id": box.key_id,
                "enabled": True,
                "updated_at": now,
            },
        )
    )
    return existed is None


def set_enabled(session: Session, channel: str, enabled: bool) -> bool:
    """False when there is no such account."""
    done = session.execute(
        update(channel_accounts)
        .where(channel_accounts.c.channel == channel)
        .values(enabled=enabled, updated_at=func.now())
        .returning(channel_accounts.c.channel)
    ).first()
    return done is not None


def listing(session: Session) -> list[ListedAccount]:
    rows = session.execute(
        select(
            channel_accounts.c.channel,
            channel_accounts.c.kind,
            channel_accounts.c.enabled,
            channel_accounts.c.key_id,
            channel_accounts.c.updated_at,
        ).order_by(channel_accounts.c.channel)
    )
    return [ListedAccount(r.channel, r.kind, r.enabled, r.key_id, r.updated_at) for r in rows]


def enabled_accounts(session: Session, box: ConfigBox | None) -> list[ChannelAccount]:
    """Every enabled account, opened. ConfigKeyError when there are accounts and no key or
    the wrong one."""
    rows = session.execute(
        select(channel_accounts).where(channel_accounts.c.enabled).order_by(channel_accounts.c.channel)
    ).all()
    if rows and box is None:
        raise ConfigKeyError(
            f"{len(rows)} channel account(s) are stored ({', '.join(r.channel for r in rows)}) "
            "but GATEWAY_CONFIG_KEY is not set"
        )
    return [
        ChannelAccount(r.channel, r.kind, r.enabled, box.open(r.channel, r.key_id, bytes(r.config_sealed)))
        for r in rows
        if box is not None
    ]
