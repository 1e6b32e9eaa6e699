"""make bench-e2e: sustained paid orders per second through the whole suite.

Brings the suite up as processes (as `make demo` does), warms it with a few
orders, then keeps CONCURRENCY orders in flight for DURATION_S seconds, and
counts the orders that reached PAID (order.paid read from Kafka). Writes
bench/results/e2e.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path

from paykit.devstack.load import EventWatcher, create_to_paid_s, pay_orders, percentile, wait_paid
from paykit.devstack.suite import Suite

DURATION_S = float(os.environ.get("DURATION_S", "60"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))
WARMUP_ORDERS = 50
ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    suite = Suite(ROOT / ".run" / "bench-e2e")
    try:
        suite.start(fresh_databases=True)
        watcher = EventWatcher(suite.kafka_bootstrap, f"bench-{uuid.uuid4().hex[:8]}")
        watcher.start()
        target = suite.grpc_target("order")
        warm = asyncio.run(
            pay_orders(
                target,
                watcher,
                count=WARMUP_ORDERS,
                duration_s=None,
                concurrency=8,
                merchant="bench",
                run_tag=f"warm-{uuid.uuid4().hex[:6]}",
            )
        )
        wait_paid(watcher, warm)
        started = time.monotonic()
        result = asyncio.run(
            pay_orders(
                target,
                watcher,
                count=None,
                duration_s=DURATION_S,
                concurrency=CONCURRENCY,
                merchant="bench",
                run_tag=f"run-{uuid.uuid4().hex[:6]}",
            )
        )
        paid = wait_paid(watcher, result)
        elapsed_s = max(time.monotonic() - started, 1e-9)
        to_paid = create_to_paid_s(watcher, result)
        watcher.stop()
        figures = {
            "orders": len(result.created),
            "paid": paid,
            "duration_s": round(DURATION_S, 1),
            "elapsed_until_all_paid_s": round(elapsed_s, 2),
            "paid_per_s": round(paid / elapsed_s, 1),
            "concurrency": CONCURRENCY,
            "payorder_p50_ms": round(percentile(result.pay_latency_s, 50) * 1000, 1),
            "payorder_p99_ms": round(percentile(result.pay_latency_s, 99) * 1000, 1),
            "create_to_paid_p50_ms": round(percentile(to_paid, 50) * 1000, 1),
            "create_to_paid_p99_ms": round(percentile(to_paid, 99) * 1000, 1),
            "rpc_errors": dict(result.errors),
            "driver_peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
        }
    finally:
        suite.stop()
    out = ROOT / "bench" / "results" / "e2e.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:<26} {value}")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
