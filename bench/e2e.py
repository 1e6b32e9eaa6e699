"""make bench-e2e: sustained paid orders per second through the whole suite.

Brings the suite up as processes (as `make demo` does), warms it with a few
orders, then keeps CONCURRENCY orders in flight for DURATION_S seconds, and
counts the orders that reached PAID (order.paid read from Kafka). Writes
bench/results/e2e.json.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import uuid
from pathlib import Path

from paykit.devstack.load import EventWatcher, run_orders
from paykit.devstack.suite import Suite

from bench.cpu_profile import CpuMeter, SpyRecorder, component_pids

DURATION_S = float(os.environ.get("DURATION_S", "60"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))
# PYSPY=1 also samples every service with py-spy (costs some CPU itself,
# so compare paid_per_s only between runs with the same setting).
PYSPY = os.environ.get("PYSPY", "0") == "1"
WARMUP_ORDERS = 50
ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    suite = Suite(ROOT / ".run" / "bench-e2e")
    try:
        suite.start(fresh_databases=True)
        watcher = EventWatcher(suite.kafka_bootstrap, f"bench-{uuid.uuid4().hex[:8]}")
        watcher.start()
        target = suite.grpc_target("order")
        run_orders(target, watcher, count=WARMUP_ORDERS, concurrency=8, merchant="warmup")
        pids = component_pids(suite)
        meter = CpuMeter(pids)
        spy = SpyRecorder(pids, ROOT / "bench" / "results", DURATION_S) if PYSPY else None
        meter.start()
        run = run_orders(target, watcher, duration_s=DURATION_S, concurrency=CONCURRENCY, merchant="bench")
        cores_used = meter.stop(run.elapsed_s)
        hot_frames = spy.finish() if spy else {}
        watcher.stop()
        figures = {
            "orders": run.orders,
            "paid": run.paid,
            "duration_s": round(DURATION_S, 1),
            "elapsed_until_all_paid_s": round(run.elapsed_s, 2),
            "paid_per_s": round(run.paid / run.elapsed_s, 1),
            "concurrency": CONCURRENCY,
            "payorder_p50_ms": round(run.pay_ms(50), 1),
            "payorder_p99_ms": round(run.pay_ms(99), 1),
            "create_to_paid_p50_ms": round(run.to_paid_ms(50), 1),
            "create_to_paid_p99_ms": round(run.to_paid_ms(99), 1),
            "rpc_errors": run.errors,
            "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cores_used_by_component": cores_used,
            "cores_used_total": round(sum(cores_used.values()), 2),
            "pyspy_enabled": PYSPY,
            "pyspy_hot_frames": hot_frames,
        }
    finally:
        suite.stop()
    out = ROOT / "bench" / "results" / "e2e.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        if key == "pyspy_hot_frames":
            for service, profile in value.items():
                libraries = profile["self_by_library"].items()
                print(f"py-spy {service} self time: " + ", ".join(f"{k} {v:.0%}" for k, v in libraries))
            continue
        print(f"{key:<26} {value}")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
