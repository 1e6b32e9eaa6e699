"""Background work that runs inside a service's event loop: schedulers and pollers.

A `PeriodicTask` calls `tick()` again at once while it reports work done (so
a backlog drains at full speed) and sleeps `interval_s` when it reports none.
A failing tick is logged and retried after the interval: the state it works
from lives in the database, so nothing is lost by waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class PeriodicTask:
    def __init__(self, name: str, interval_s: float, tick: Callable[[], Awaitable[int]]) -> None:
        if interval_s <= 0:
            raise ValueError(f"{name}: interval_s must be positive, got {interval_s}")
        self.name = name
        self._interval_s = interval_s
        self._tick = tick
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> dict[str, Any]:
        """Start in the running loop; fits ServiceParts.extra_start (adds nothing to the ready file)."""
        self._task = asyncio.create_task(self._run(), name=self.name)
        return {}

    def wake(self) -> None:
        """Run the next tick now instead of after the interval (e.g. new work was just stored)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            # Cleared before the tick, not after: a wake-up that arrives while the tick
            # runs (work stored meanwhile) must start the next tick at once, not be lost
            # until the interval passes.
            self._wake.clear()
            try:
                done = await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic task failed; retrying after the interval", extra={"task": self.name})
                done = 0
            if done > 0:
                await asyncio.sleep(0)  # let requests in between batches
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
