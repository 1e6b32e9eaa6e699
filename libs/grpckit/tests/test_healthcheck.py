"""The container probe against a real in-process gRPC server with the standard health servicer."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from paykit.grpckit.healthcheck import EXIT_SERVING, EXIT_UNHEALTHY, check, main

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
PAYMENT_SERVICE = "paykit.payment.v1.PaymentService"
PROBE_TIMEOUT_S = 5.0


@dataclass
class HealthServer:
    target: str
    servicer: health.HealthServicer


@pytest.fixture
def health_server() -> Iterator[HealthServer]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield HealthServer(f"127.0.0.1:{port}", servicer)
    finally:
        server.stop(grace=None)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serving_server_exits_0(health_server: HealthServer, capsys: pytest.CaptureFixture[str]) -> None:
    health_server.servicer.set("", SERVING)

    assert main(["--target", health_server.target]) == EXIT_SERVING
    assert "SERVING" in capsys.readouterr().out


def test_serving_named_service_exits_0(
    health_server: HealthServer, capsys: pytest.CaptureFixture[str]
) -> None:
    health_server.servicer.set(PAYMENT_SERVICE, SERVING)

    assert main(["--target", health_server.target, "--service", PAYMENT_SERVICE]) == EXIT_SERVING
    assert f"'{PAYMENT_SERVICE}' is SERVING" in capsys.readouterr().out


def test_not_serving_exits_1_and_says_so(
    health_server: HealthServer, capsys: pytest.CaptureFixture[str]
) -> None:
    health_server.servicer.set("", SERVING)
    health_server.servicer.set(PAYMENT_SERVICE, NOT_SERVING)

    assert main(["--target", health_server.target, "--service", PAYMENT_SERVICE]) == EXIT_UNHEALTHY
    err = capsys.readouterr().err
    assert "unhealthy" in err and "NOT_SERVING" in err and PAYMENT_SERVICE in err


def test_unknown_service_is_unhealthy(health_server: HealthServer) -> None:
    serving, message = check(health_server.target, "no.such.Service", PROBE_TIMEOUT_S)

    assert not serving
    assert "does not know service 'no.such.Service'" in message


def test_nothing_listening_is_unhealthy_with_the_reason() -> None:
    target = f"127.0.0.1:{_unused_port()}"

    serving, message = check(target, "", PROBE_TIMEOUT_S)

    assert not serving
    assert message.startswith(f"unhealthy: {target}") and "UNAVAILABLE" in message


def test_runs_as_a_module_the_way_a_healthcheck_calls_it(health_server: HealthServer) -> None:
    health_server.servicer.set("", SERVING)
    command = [sys.executable, "-m", "paykit.grpckit.healthcheck", "--target", health_server.target]

    serving = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    health_server.servicer.enter_graceful_shutdown()  # every status becomes NOT_SERVING
    stopping = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)

    assert (serving.returncode, stopping.returncode) == (EXIT_SERVING, EXIT_UNHEALTHY), stopping.stderr
    assert "NOT_SERVING" in stopping.stderr
