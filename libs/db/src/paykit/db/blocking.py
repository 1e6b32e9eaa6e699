"""Running blocking database work from asyncio code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from opentelemetry import context as otel_context

# Handlers run their blocking database work on this many threads per process;
# the engine's pool holds a connection for each (paykit.db.engine).
BLOCKING_POOL_THREADS = 30
T = TypeVar("T")

_blocking_pool = ThreadPoolExecutor(max_workers=BLOCKING_POOL_THREADS, thread_name_prefix="blocking")


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` on the blocking pool, inside the caller's trace context."""
    ctx = otel_context.get_current()

    def call() -> T:
        token = otel_context.attach(ctx)
        try:
            return fn(*args)
        finally:
            otel_context.detach(token)

    return await asyncio.get_running_loop().run_in_executor(_blocking_pool, call)
