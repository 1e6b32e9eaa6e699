"""Running the capture app: as its own worker process, or inside the service's event loop."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import faust
from paykit.db import create_engine_for, session_factory
from paykit.grpckit.runner import write_ready_file
from paykit.telemetry.metrics import MetricsSettings, start_from_settings

from reconciliation.capture.app import APP_ID, CONSUMER_NAME, CaptureAgent, faust_app
from reconciliation.service_layer.capture import CaptureWriter
from reconciliation.settings import ReconciliationSettings

log = logging.getLogger(__name__)

CAPTURE_POOL_SIZE = 4  # one batch at a time, plus the one-by-one retry and a spare


def build_capture(
    settings: ReconciliationSettings, sessions: Any | None = None
) -> tuple[faust.App, CaptureAgent]:
    """The faust app and its agent over the reconciliation database (its own small pool unless
    the service's sessions are given)."""
    if sessions is None:
        engine = create_engine_for(
            settings.database_url, application_name="reconciliation-capture", pool_size=CAPTURE_POOL_SIZE
        )
        sessions = session_factory(engine)
    app = faust_app(settings)
    writer = CaptureWriter(sessions, CONSUMER_NAME, settings.business_days())
    agent = CaptureAgent(
        app, writer, settings.capture_topics, settings.capture_batch_size, settings.capture_batch_wait_s
    )
    return app, agent


class CaptureWorker(faust.Worker):
    """faust's worker (signals, orderly stop: in-flight batch finished, acked offsets committed)
    that writes the suite's ready file once the app consumes, and serves /metrics."""

    def __init__(
        self, app: faust.App, ready_file: Path | None, metrics: MetricsSettings, **kwargs: Any
    ) -> None:
        # Logging is paykit.telemetry's JSON lines, configured before; faust must not replace it.
        super().__init__(
            app, loglevel=None, quiet=True, override_logging=False, redirect_stdouts=False, **kwargs
        )
        self._ready_file = ready_file
        self._metrics = metrics
        self._metrics_server: Any = None

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        info: dict[str, Any] = {"service": APP_ID, "group": self.app.conf.id, "pid": os.getpid()}
        self._metrics_server = start_from_settings(self._metrics)
        if self._metrics_server is not None:
            info["metrics_port"] = self._metrics_server.port
        if self._ready_file is not None:
            write_ready_file(self._ready_file, info)
        log.info("capture ready", extra={k: str(v) for k, v in info.items()})

    async def on_stop(self) -> None:
        await super().on_stop()
        if self._metrics_server is not None:
            self._metrics_server.stop()
