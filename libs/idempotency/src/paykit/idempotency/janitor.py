"""Deleting expired idempotency keys in bounded batches."""

from __future__ import annotations

from paykit.db import run_blocking
from paykit.grpckit.periodic import PeriodicTask
from paykit.idempotency.store import Database, IdempotencyStore

# Rows per DELETE: one short transaction that never holds many row locks, so
# requests taking keys over never queue behind a large clean-up.
JANITOR_BATCH_SIZE = 1000
# Expired rows are harmless until deleted (an expired key is taken over by
# its next use), so the janitor only has to keep the table from growing.
JANITOR_INTERVAL_S = 60.0


class IdempotencyJanitor:
    """`tick()` deletes one batch and returns its size: the PeriodicTask contract,
    which calls again at once while batches come back non-empty."""

    def __init__(self, database: Database, *, batch_size: int = JANITOR_BATCH_SIZE) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._store = IdempotencyStore(database)
        self._batch_size = batch_size

    def delete_expired_batch(self) -> int:
        """Blocking: delete up to batch_size expired rows."""
        return self._store.delete_expired(self._batch_size)

    async def tick(self) -> int:
        return await run_blocking(self.delete_expired_batch)

    def periodic_task(self, interval_s: float = JANITOR_INTERVAL_S) -> PeriodicTask:
        """Wire into a service: ServiceParts(extra_start=[task.start], extra_stop=[task.stop])."""
        return PeriodicTask("idempotency-janitor", interval_s, self.tick)
