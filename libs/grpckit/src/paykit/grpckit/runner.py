"""Running a service process: gRPC server, background workers, ready file, clean stop.

Every service's `__main__` builds its objects (bootstrap) and hands them to
`serve`, so start-up and shutdown behave the same everywhere: SIGTERM stops
taking requests, drains, stops the workers, then exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from paykit.grpckit.server import Registrar, create_server, mark_serving
from paykit.telemetry.metrics import MetricsSettings, start_from_settings

log = logging.getLogger(__name__)

GRACEFUL_STOP_S = 5.0


class Worker(Protocol):
    """A background thread such as the outbox relay or a consumer loop."""

    def start(self) -> None: ...

    def stop(self, timeout_s: float = ...) -> None: ...


@dataclass
class ServiceParts:
    name: str
    grpc_services: Sequence[tuple[Registrar, Any, str]]
    workers: Sequence[Worker] = ()
    # Extra async servers (e.g. an HTTP webhook listener): start returns info for the ready file.
    extra_start: Sequence[Callable[[], Awaitable[dict[str, Any]]]] = ()
    extra_stop: Sequence[Callable[[], Awaitable[None]]] = ()
    on_stop: Sequence[Callable[[], None]] = field(default_factory=list)
    # Extra server interceptors (e.g. idempotency keys), inside the error-mapping one.
    interceptors: Sequence[Any] = ()


def write_ready_file(path: Path, info: dict[str, Any]) -> None:
    # Written atomically so a launcher polling for it never reads half a file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)


async def serve(
    build: Callable[[], ServiceParts],
    listen_address: str,
    ready_file: Path | None,
    metrics: MetricsSettings | None = None,
) -> None:
    # Built inside the running loop: grpc.aio channels bind to the loop that exists when created.
    parts = build()
    server, port = create_server(listen_address, parts.grpc_services, parts.interceptors)
    for worker in parts.workers:
        worker.start()
    info: dict[str, Any] = {"service": parts.name, "pid": os.getpid(), "grpc_port": port}
    # The bound port goes into the ready file: with METRICS_PORT=0 nothing else tells it.
    metrics_server = start_from_settings(metrics) if metrics is not None else None
    if metrics_server is not None:
        info["metrics_port"] = metrics_server.port
    for start in parts.extra_start:
        info.update(await start())
    await server.start()
    await mark_serving(server)
    if ready_file is not None:
        write_ready_file(ready_file, info)
    log.info("service ready", extra={k: str(v) for k, v in info.items()})

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("stopping", extra={"service": parts.name})
    await server.stop(GRACEFUL_STOP_S)
    for stop in parts.extra_stop:
        await stop()
    for worker in parts.workers:
        worker.stop()
    for hook in parts.on_stop:
        hook()
    if metrics_server is not None:
        metrics_server.stop()


class _ServiceSettings(Protocol):
    database_url: str
    grpc_listen: str
    ready_file: Path | None
    log_level: str


def run_service_main(
    name: str,
    settings_type: type[Any],
    build: Callable[[Any], ServiceParts],
    migrate: Callable[[str], None],
    argv: Sequence[str],
) -> int:
    """The whole `python -m <service> [serve|migrate]` for a database-backed service.

    A configuration error exits 2 with the variable's name, never a traceback.
    """
    from paykit.settings import SettingsError, load_settings
    from paykit.telemetry import configure_logging, setup_tracing

    command = argv[1] if len(argv) > 1 else "serve"
    if command not in ("serve", "migrate"):
        print(f"{name}: unknown command {command!r}; use serve or migrate", file=sys.stderr)
        return 2
    try:
        settings: _ServiceSettings = load_settings(settings_type)
        metrics = load_settings(MetricsSettings)
    except SettingsError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(name, settings.log_level)
    if command == "migrate":
        migrate(settings.database_url)
        return 0
    setup_tracing(name)
    try:
        asyncio.run(serve(lambda: build(settings), settings.grpc_listen, settings.ready_file, metrics))
    except SettingsError as exc:
        # Configuration only the build can check (e.g. stored channel accounts and their key).
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0
