"""One sandbox and one merchant-side receiver per session, on a loop thread, on loopback.

Each test starts with every merchant account back at the default Behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from channel_simulator.behaviour import Behaviour
from channel_simulator.harness import LoopThread, RunningSimulator, start_simulator

from services.channel_simulator.tests.integration.support import KEY, MERCHANTS, Receiver, SimClient


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="session")
def running_simulator(loop_thread: LoopThread) -> Iterator[RunningSimulator]:
    simulator = loop_thread.run(start_simulator(MERCHANTS, KEY, Behaviour(), seed=7))
    try:
        yield simulator
    finally:
        loop_thread.run(simulator.stop())


@pytest.fixture(scope="session")
def receiver(loop_thread: LoopThread) -> Iterator[Receiver]:
    found = Receiver()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(found.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop_thread.run(start())
    found.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield found
    finally:
        loop_thread.run(runner.cleanup())


@pytest.fixture(scope="session")
def session_sim(running_simulator: RunningSimulator) -> SimClient:
    return SimClient(running_simulator.base_url)


@pytest.fixture
def sim(session_sim: SimClient) -> Iterator[SimClient]:
    session_sim.configure(Behaviour().as_dict())
    session_sim.settle()
    yield session_sim
    session_sim.configure(Behaviour().as_dict())
