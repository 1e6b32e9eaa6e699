from __future__ import annotations

import asyncio

from paykit.grpckit.periodic import PeriodicTask


def test_drains_backlog_then_sleeps_and_survives_a_failing_tick() -> None:
    async def scenario() -> list[str]:
        calls: list[str] = []
        backlog = [3]

        async def tick() -> int:
            calls.append("tick")
            if len(calls) == 2:
                raise RuntimeError("database went away")
            if backlog[0] > 0:
                backlog[0] -= 1
                return 1
            return 0

        task = PeriodicTask("test", 0.05, tick)
        await task.start()
        await asyncio.sleep(0.4)
        await task.stop()
        return calls

    calls = asyncio.run(scenario())
    # 1 work, 1 failure (then a pause), 2 more work, then idle ticks every 50 ms.
    assert 5 <= len(calls) <= 12


def test_wake_runs_the_next_tick_before_the_interval() -> None:
    async def scenario() -> int:
        count = 0

        async def tick() -> int:
            nonlocal count
            count += 1
            return 0

        task = PeriodicTask("test", 60.0, tick)
        await task.start()
        await asyncio.sleep(0.05)
        task.wake()
        await asyncio.sleep(0.05)
        await task.stop()
        return count

    assert asyncio.run(scenario()) == 2


def test_a_wake_during_a_tick_that_found_nothing_is_not_lost() -> None:
    """Work stored while a tick runs (its wake-up arriving mid-tick) starts the next tick at
    once, not after the interval."""

    async def scenario() -> int:
        count = 0
        task: PeriodicTask

        async def tick() -> int:
            nonlocal count
            count += 1
            if count == 1:
                task.wake()  # arrives while this tick is still running
                await asyncio.sleep(0.01)
            return 0

        task = PeriodicTask("test", 60.0, tick)
        await task.start()
        await asyncio.sleep(0.1)
        await task.stop()
        return count

    assert asyncio.run(scenario()) == 2
