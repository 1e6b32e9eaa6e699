"""Channel health rows: one per channel, created on first use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from payment_core.adapters.tables import channel_health
from payment_core.domain.health import ChannelHealth


def _to_domain(row: Any) -> ChannelHealth:
    return ChannelHealth(
        channel=row.channel,
        consecutive_errors=row.consecutive_errors,
        unhealthy_until=row.unhealthy_until,
        operator_disabled=row.operator_disabled,
        reason=row.reason,
        actor=row.actor,
    )


class HealthRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def all(self) -> list[ChannelHealth]:
        rows = self._session.execute(select(channel_health).order_by(channel_health.c.channel))
        return [_to_domain(row) for row in rows]

    def get_for_update(self, channel: str) -> ChannelHealth:
        # Insert-if-absent first so the row lock exists to be taken.
        self._session.execute(insert(channel_health).values(channel=channel).on_conflict_do_nothing())
        row = self._session.execute(
            select(channel_health).where(channel_health.c.channel == channel).with_for_update()
        ).one()
        return _to_domain(row)

    def save(self, health: ChannelHealth) -> None:
        self._session.execute(
            channel_health.update()
            .where(channel_health.c.channel == health.channel)
            .values(
                consecutive_errors=health.consecutive_errors,
                unhealthy_until=health.unhealthy_until,
                operator_disabled=health.operator_disabled,
                reason=health.reason,
                actor=health.actor,
                updated_at=func.now(),
            )
        )
