"""The running sandbox: its merchant accounts, the shared key, background tasks and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

from channel_simulator.accounts import MerchantAccount
from channel_simulator.behaviour import Behaviour
from channel_simulator.limits import MAX_BACKGROUND_TASKS


class SandboxBusy(Exception):
    """Too many background tasks alive: the sandbox refuses new work rather than grow."""


@dataclass
class Sandbox:
    key: bytes
    merchants: dict[str, MerchantAccount]
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Set on shutdown: requests that hold their connection ("lost" answers) let go.
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    http: ClientSession | None = None

    @classmethod
    def create(
        cls, merchant_ids: Iterable[str], key: bytes, behaviour: Behaviour, seed: int | None = None
    ) -> Sandbox:
        # One seeded stream per merchant: one account's traffic never shifts another's draws.
        seeds = random.Random(seed)
        merchants = {
            merchant_id: MerchantAccount(
                merchant_id,
                number,
                behaviour,
                random.Random(seeds.getrandbits(64) if seed is not None else None),
            )
            for number, merchant_id in enumerate(merchant_ids, start=1)
        }
        if not merchants:
            raise ValueError("the sandbox needs at least one merchant account")
        return cls(key, merchants)

    def session(self) -> ClientSession:
        if self.http is None:
            raise RuntimeError("the sandbox's HTTP client is not started")
        return self.http

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` in the background, tracked so shutdown can cancel it."""
        if len(self.tasks) >= MAX_BACKGROUND_TASKS:
            work.close()
            raise SandboxBusy(f"{MAX_BACKGROUND_TASKS} background tasks already running")
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def hang(self, hang_s: float, request: web.Request) -> None:
        """Hold the connection without answering, then drop it: the answer is lost."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), hang_s)
        if request.transport is not None:
            request.transport.close()

    async def shutdown(self) -> None:
        self.closing.set()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
