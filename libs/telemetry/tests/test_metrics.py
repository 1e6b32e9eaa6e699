"""The /metrics endpoint: a real HTTP server on loopback serving a registry."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from paykit.settings import SettingsError, load_settings
from paykit.telemetry.metrics import (
    METRICS_PATH,
    MetricsServer,
    MetricsSettings,
    start_from_settings,
    start_metrics_server,
)
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.parser import text_string_to_metric_families

HTTP_TIMEOUT_S = 5.0


def scrape(port: int, path: str = METRICS_PATH) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=HTTP_TIMEOUT_S) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return str(resp.read().decode())


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def server(registry: CollectorRegistry) -> Iterator[MetricsServer]:
    running = start_metrics_server("127.0.0.1", 0, registry)
    try:
        yield running
    finally:
        running.stop()


def test_port_0_binds_a_free_port_and_serves_the_registry_over_http(
    server: MetricsServer, registry: CollectorRegistry
) -> None:
    payments = Counter("paykit_test_payments_total", "test", ["outcome"], registry=registry)
    backlog = Gauge("paykit_test_backlog_events", "test", registry=registry)
    payments.labels("succeeded").inc(3)
    backlog.set(7)

    assert server.port > 0
    families = {f.name: f for f in text_string_to_metric_families(scrape(server.port))}

    (sample,) = [s for s in families["paykit_test_payments"].samples if s.name.endswith("_total")]
    assert sample.labels == {"outcome": "succeeded"} and sample.value == 3.0
    assert families["paykit_test_backlog_events"].samples[0].value == 7.0
    print(f"\nmetrics: GET http://127.0.0.1:{server.port}/metrics served the registry (counter 3, gauge 7)")


def test_values_change_between_scrapes(server: MetricsServer, registry: CollectorRegistry) -> None:
    gauge = Gauge("paykit_test_age_seconds", "test", registry=registry)
    gauge.set(1.5)
    assert "paykit_test_age_seconds 1.5" in scrape(server.port)
    gauge.set(0)
    assert "paykit_test_age_seconds 0.0" in scrape(server.port)


def test_a_stopped_server_no_longer_answers(registry: CollectorRegistry) -> None:
    running = start_metrics_server("127.0.0.1", 0, registry)
    port = running.port
    scrape(port)
    running.stop()
    with pytest.raises(urllib.error.URLError):
        scrape(port)


def test_unset_or_empty_port_means_no_server_and_loopback_is_the_default_host() -> None:
    assert load_settings(MetricsSettings, {}) == MetricsSettings(port=None, host="127.0.0.1")
    assert load_settings(MetricsSettings, {"METRICS_PORT": ""}).port is None
    assert start_from_settings(MetricsSettings(port=None)) is None
    configured = load_settings(MetricsSettings, {"METRICS_PORT": "9464", "METRICS_HOST": "0.0.0.0"})
    assert (configured.port, configured.host) == (9464, "0.0.0.0")


@pytest.mark.parametrize("value", ["70000", "-1", "http"])
def test_a_bad_port_fails_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="METRICS_PORT"):
        load_settings(MetricsSettings, {"METRICS_PORT": value})


def test_settings_start_the_server_on_the_process_registry() -> None:
    running = start_from_settings(MetricsSettings(port=0, host="127.0.0.1"))
    assert running is not None
    try:
        # The default registry carries the process collector: proof it is the one served.
        assert "process_cpu_seconds_total" in scrape(running.port)
    finally:
        running.stop()
