"""Running the sandbox inside another program, on loopback and any free port.

`python -m channel_simulator` uses start_simulator(); tests use it too, on a
LoopThread, so synchronous test code can drive the sandbox (and anything
else that needs a running loop, such as a connector) while it serves.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from channel_simulator.app import build_app
from channel_simulator.behaviour import Behaviour
from channel_simulator.edge import SANDBOX
from channel_simulator.protocols.base import ProtocolRegistry
from channel_simulator.sandbox import Sandbox

T = TypeVar("T")

# Held ("lost") requests are released at shutdown; this bounds what is left after that.
SHUTDOWN_TIMEOUT_S = 2.0
# Longest a LoopThread.run() waits for its coroutine.
RUN_TIMEOUT_S = 60.0
THREAD_JOIN_TIMEOUT_S = 10.0


@dataclass
class RunningSimulator:
    base_url: str
    port: int
    runner: web.AppRunner

    @property
    def sandbox(self) -> Sandbox:
        return self.runner.app[SANDBOX]

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_simulator(
    merchant_ids: Sequence[str],
    key: bytes,
    behaviour: Behaviour | None = None,
    *,
    seed: int | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    protocols: Iterable[str] | None = None,
    registry: ProtocolRegistry | None = None,
) -> RunningSimulator:
    """The sandbox serving on host:port (0: any free port); see app.build_app for the rest."""
    app = build_app(merchant_ids, key, behaviour, seed, protocols=protocols, registry=registry)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    return RunningSimulator(f"http://{host}:{bound_port}", bound_port, runner)


class LoopThread:
    """An asyncio loop on a thread of its own; run() hands it a coroutine and waits for the result."""

    def __init__(self, name: str = "sandbox-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout_s: float = RUN_TIMEOUT_S) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout_s)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(THREAD_JOIN_TIMEOUT_S)
        if not self._thread.is_alive():
            self.loop.close()
