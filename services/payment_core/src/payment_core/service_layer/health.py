"""Channel health as routing sees it: a snapshot refreshed every second, written only on change."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from paykit.db import run_blocking
from paykit.errors import InvalidArgument

from payment_core.adapters.gateway_client import ChargeAnswer, ChargeOutcome
from payment_core.domain import health as model
from payment_core.domain.health import ChannelHealth, HealthPolicy
from payment_core.service_layer.context import UowFactory, now_utc

SNAPSHOT_TTL_S = 1.0
ACTOR_MAX_CHARS = 128


class HealthBook:
    def __init__(self, uow_factory: UowFactory, policy: HealthPolicy, known_channels: Sequence[str]) -> None:
        self._uow_factory = uow_factory
        self._policy = policy
        self._known = tuple(sorted(set(known_channels)))
        self._snapshot: dict[str, ChannelHealth] = {}
        self._loaded_at = float("-inf")

    # -- routing's view --------------------------------------------------------
    def is_healthy(self, channel: str) -> bool:
        health = self._snapshot.get(channel)
        return health is None or health.is_healthy(now_utc())

    async def refresh_if_stale(self) -> None:
        if time.monotonic() - self._loaded_at >= SNAPSHOT_TTL_S:
            await run_blocking(self._load)

    def _load(self) -> list[ChannelHealth]:
        with self._uow_factory() as uow:
            rows = uow.health.all()
        self._snapshot = {h.channel: h for h in rows}
        self._loaded_at = time.monotonic()
        return rows

    # -- what charges teach us ------------------------------------------------
    async def record_charge(self, channel: str, answer: ChargeAnswer) -> None:
        if answer.outcome is ChargeOutcome.NO_ANSWER:
            await run_blocking(
                self._update, channel, lambda h: model.record_error(h, self._policy, now_utc(), answer.code)
            )
            return
        known = self._snapshot.get(channel)
        # Most answers find a healthy channel: write only when there is something to reset.
        if known is not None and (known.consecutive_errors or known.unhealthy_until):
            await run_blocking(self._update, channel, model.record_answer)

    def _update(self, channel: str, change: Callable[[ChannelHealth], ChannelHealth]) -> ChannelHealth:
        with self._uow_factory() as uow:
            health = uow.health.get_for_update(channel)
            updated = change(health)
            if updated != health:
                uow.health.save(updated)
                uow.commit()
        self._snapshot[channel] = updated
        return updated

    # -- operator ----------------------------------------------------------------
    def set_operator(self, channel: str, disabled: bool, reason: str, actor: str) -> ChannelHealth:
        if not channel:
            raise InvalidArgument("channel", "is required")
        if channel not in self._known:
            raise InvalidArgument(
                "channel", f"unknown channel {channel!r}; routed channels: {list(self._known)}"
            )
        if not actor or len(actor) > ACTOR_MAX_CHARS:
            raise InvalidArgument("actor", f"is required (who decided), at most {ACTOR_MAX_CHARS} characters")
        if disabled and not reason:
            raise InvalidArgument("reason", "is required when disabling a channel")
        return self._update(channel, lambda h: model.set_operator_disabled(h, disabled, reason, actor))

    def list(self) -> list[ChannelHealth]:
        rows = {h.channel: h for h in self._load()}
        return [rows.get(name, ChannelHealth(name)) for name in sorted({*self._known, *rows})]
