"""`python -m paykit.devstack up|down|demo`: the local suite for people.

up    start Postgres, Kafka, topics, every service and the simulator; leave them running
down  stop what `up` started (by the pids it recorded)
demo  up, pay 100 orders end to end, then 10 on each real channel protocol (Alipay,
      WeChat Pay v3, card) chosen by routing, print what happened, down
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

from paykit.devstack.ledger_report import ledger_lines
from paykit.devstack.load import EventWatcher, run_orders
from paykit.devstack.suite import CHANNEL_METHODS, Suite, stop_recorded

DEMO_ORDERS = 100
DEMO_CONCURRENCY = 10
# Orders paid on each real channel protocol (Alipay, WeChat Pay, card) after the main run.
CHANNEL_ORDERS = 10


def repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "Makefile").exists() and (parent / "services").is_dir():
            return parent
    return Path.cwd()


def run_dir() -> Path:
    return repo_root() / ".run" / "suite"


def up() -> int:
    stop_recorded(run_dir())
    suite = Suite(run_dir())
    suite.start()
    print("suite is up:")
    for name, proc in suite.services.items():
        ports = {k: v for k, v in proc.info.items() if k.endswith("_port")}
        print(f"  {name:<18} pid {proc.pid:<8} {ports}")
    print(f"  kafka              {suite.kafka_bootstrap}")
    print(f"  logs               {run_dir() / 'logs'}")
    print("stop it with `make down`")
    return 0


def down() -> int:
    stopped = stop_recorded(run_dir())
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def demo(count: int, concurrency: int) -> int:
    stop_recorded(run_dir())
    suite = Suite(run_dir())
    started = time.monotonic()
    try:
        # Fresh databases: what the demo prints (balances, entries) is this run's alone.
        suite.start(fresh_databases=True)
        print(
            f"suite up in {time.monotonic() - started:.1f}s "
            f"(postgres, kafka {suite.kafka_bootstrap}, {len(suite.services)} services)"
        )
        watcher = EventWatcher(suite.kafka_bootstrap, f"demo-{uuid.uuid4().hex[:8]}")
        watcher.start()
        run = run_orders(
            suite.grpc_target("order"), watcher, count=count, concurrency=concurrency, merchant="demo"
        )
        watcher.stop()
        print(f"orders created:        {run.orders}")
        print(f"orders paid:           {run.paid} / {count}")
        print(f"rpc errors:            {run.errors or 'none'}")
        print("events seen on Kafka:  " + ", ".join(f"{k}={v}" for k, v in sorted(watcher.counts.items())))
        print(f"PayOrder latency:      p50 {run.pay_ms(50):.1f} ms, p99 {run.pay_ms(99):.1f} ms")
        print(f"create -> PAID:        p50 {run.to_paid_ms(50):.1f} ms, p99 {run.to_paid_ms(99):.1f} ms")
        for line in ledger_lines(suite.grpc_target("accounting"), "demo", "CNY", run.paid):
            print(line)
        channels_ok = True
        for channel, method in CHANNEL_METHODS.items():
            # The same flow on each real channel protocol the simulator plays, chosen by routing.
            merchant = f"demo-{channel}"
            watcher = EventWatcher(suite.kafka_bootstrap, f"demo-{channel}-{uuid.uuid4().hex[:8]}")
            watcher.start()
            round_ = run_orders(
                suite.grpc_target("order"), watcher, count=CHANNEL_ORDERS, concurrency=5, merchant=merchant,
                method=method,
            )  # fmt: skip
            watcher.stop()
            print(
                f"{channel + ' (' + method + ')':<26} paid {round_.paid} / {CHANNEL_ORDERS}, "
                f"rpc errors {round_.errors or 'none'}, create -> PAID p50 {round_.to_paid_ms(50):.0f} ms"
            )
            for line in ledger_lines(suite.grpc_target("accounting"), merchant, "CNY", round_.paid):
                print("  " + line.strip())
            channels_ok = channels_ok and round_.paid == CHANNEL_ORDERS and not round_.errors
        return 0 if run.paid == count and not run.errors and channels_ok else 1
    finally:
        suite.stop()
        print("suite stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paykit.devstack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "demo"])
    parser.add_argument("--orders", type=int, default=DEMO_ORDERS)
    parser.add_argument("--concurrency", type=int, default=DEMO_CONCURRENCY)
    args = parser.parse_args(argv)
    if args.orders <= 0 or args.concurrency <= 0:
        parser.error("--orders and --concurrency must be positive")
    try:
        if args.command == "up":
            return up()
        if args.command == "down":
            return down()
        return demo(args.orders, args.concurrency)
    except (RuntimeError, TimeoutError) as exc:
        # A process that would not start: its log's tail is in the message; no traceback.
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
