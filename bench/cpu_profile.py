"""Where the suite's CPU goes during a bench run: per process, and (optionally) per function.

`CpuMeter` sums user+system CPU seconds of each component (every service,
Postgres with its backends, the Kafka broker, the load driver) between
`start()` and `stop()`. `SpyRecorder` runs py-spy on the Python services for
the same window and reduces its folded stacks to the functions that hold the
most samples, so the bench can say where the time goes, not only how much.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import psutil
from paykit.devstack.suite import Suite

PYSPY_RATE_HZ = 50
TOP_FRAMES = 12


def component_pids(suite: Suite) -> dict[str, int]:
    pids = {name: proc.pid for name, proc in suite.services.items()}
    for infra in ("postgres", "kafka"):
        record = suite.run_dir / f"{infra}.json"
        if record.exists():
            pids[infra] = int(json.loads(record.read_text())["pid"])
    pids["load driver"] = os.getpid()
    return pids


def _cpu_s(pid: int, with_children: bool) -> float:
    """CPU seconds of a process, and of its live children when asked (Postgres backends)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)] if with_children else [root]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


class CpuMeter:
    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: _cpu_s(pid, name == "postgres") for name, pid in self._pids.items()}

    def stop(self, elapsed_s: float) -> dict[str, float]:
        """Cores used by each component over the window (1.0 = one core busy all the time)."""
        return {
            name: round((_cpu_s(pid, name == "postgres") - self._start[name]) / elapsed_s, 2)
            for name, pid in self._pids.items()
        }


class SpyRecorder:
    """py-spy on each Python service for `duration_s`; raw folded stacks under `out_dir`."""

    def __init__(self, pids: dict[str, int], out_dir: Path, duration_s: float) -> None:
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._files: dict[str, Path] = {}
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            if name in ("postgres", "kafka", "load driver"):
                continue
            path = out_dir / f"pyspy-{name}.folded"
            self._files[name] = path
            self._procs[name] = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--gil",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(duration_s)),
                    "--rate",
                    str(PYSPY_RATE_HZ),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def finish(self) -> dict[str, dict[str, object]]:
        """Per service: busy samples' self time by library, and the heaviest frames (inclusive)."""
        for proc in self._procs.values():
            proc.wait()
        return {
            name: {"self_by_library": self_time_by_library(path), "top_inclusive": top_frames(path)}
            for name, path in self._files.items()
            if path.exists()
        }


# Which library a leaf frame belongs to, by the path py-spy prints; first match wins.
LIBRARY_MARKERS: tuple[tuple[str, str], ...] = (
    ("sqlalchemy/", "sqlalchemy"),
    ("psycopg2", "psycopg2"),
    ("grpc/", "grpc"),
    ("google/protobuf", "protobuf"),
    ("opentelemetry/", "opentelemetry"),
    ("confluent_kafka", "confluent-kafka"),
    ("aiohttp/", "aiohttp"),
    ("asyncio/", "asyncio"),
    ("concurrent/futures", "thread pool"),
    ("threading.py", "threading"),
    ("paykit/", "paykit libs"),
    ("/services/", "service code"),
)


def self_time_by_library(folded: Path) -> dict[str, float]:
    """Share of busy samples whose innermost frame lies in each library."""
    by_library: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        count = int(count_text)
        total += count
        library = next((name for marker, name in LIBRARY_MARKERS if marker in leaf), "other")
        by_library[library] += count
    return {name: round(n / total, 3) for name, n in by_library.most_common()} if total else {}


def top_frames(folded: Path, limit: int = TOP_FRAMES) -> list[tuple[str, float]]:
    """Inclusive share of the sampled (non-idle: py-spy drops idle threads) stacks per frame."""
    inclusive: Counter[str] = Counter()
    busy_samples = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        count = int(count_text)
        busy_samples += count
        for frame in set(frames[1:]):  # frames[0] is the thread name
            inclusive[_short(frame)] += count
    if not busy_samples:
        return []
    return [(frame, round(n / busy_samples, 3)) for frame, n in inclusive.most_common(limit)]


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":")[0]
    return f"{name} ({module})"
