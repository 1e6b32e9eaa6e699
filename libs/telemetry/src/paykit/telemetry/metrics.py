"""Prometheus metrics: the process's /metrics endpoint.

Metrics themselves are declared where they are measured (grpckit's
interceptor, the messaging loops, each service), on prometheus_client's
default registry, with names that start with `paykit_` and end in their base
unit (`_seconds`, `_total`, ...). This module only serves that registry:

METRICS_PORT  unset or empty: no endpoint; 0: a free port (the bound one is
              reported, e.g. in the service's ready file); else that port
METRICS_HOST  the address to bind, 127.0.0.1 by default so a developer's
              machine exposes nothing; containers set 0.0.0.0 (compose and
              the Helm charts do) so Prometheus can reach them
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from paykit.settings import SettingsError, env_field
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.registry import CollectorRegistry

METRICS_PATH = "/metrics"
MAX_PORT = 65_535
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class MetricsSettings:
    port: int | None = env_field(
        "METRICS_PORT",
        default=None,
        help="port of the Prometheus /metrics endpoint; unset: none, 0: any free port",
    )
    host: str = env_field(
        "METRICS_HOST",
        default="127.0.0.1",
        help="address the /metrics endpoint binds; 0.0.0.0 in containers",
    )

    def __post_init__(self) -> None:
        if self.port is not None and not 0 <= self.port <= MAX_PORT:
            raise SettingsError([f"METRICS_PORT must be 0..{MAX_PORT}, got {self.port}"], "MetricsSettings")


class MetricsServer:
    """An HTTP server on its own daemon thread answering /metrics from a registry."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT_S)


def start_metrics_server(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> MetricsServer:
    """Serve `registry` on http://host:port/metrics (port 0: any free port; see `.port`)."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)


def start_from_settings(settings: MetricsSettings) -> MetricsServer | None:
    if settings.port is None:
        return None
    return start_metrics_server(settings.host, settings.port)
