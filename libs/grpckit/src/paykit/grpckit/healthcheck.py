"""`python -m paykit.grpckit.healthcheck --target HOST:PORT [--service NAME]`: a container probe.

Asks the server's grpc.health.v1 Health service once and exits 0 when it
answers SERVING, 1 otherwise (not serving, unknown service, unreachable, too
slow), printing one line that says which. Docker HEALTHCHECKs and compose
healthchecks call it; Kubernetes probes speak the same protocol natively.

Blocking grpc on purpose: one call, no event loop, and no service code is
imported, so a probe every few seconds stays cheap.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

EXIT_SERVING = 0
EXIT_UNHEALTHY = 1
# Below a container HEALTHCHECK's own timeout (5 s in our images), so the probe
# reports why it failed instead of being killed without a word.
DEFAULT_TIMEOUT_S = 3.0


def check(target: str, service: str = "", timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[bool, str]:
    """(serving, one-line description) for `service` ("" = the whole server) at `target`."""
    shown = repr(service) if service else "(server)"
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            if code == grpc.StatusCode.NOT_FOUND:
                return False, f"unhealthy: {target} does not know service {shown}"
            name = code.name if code is not None else "ERROR"
            return False, f"unhealthy: {target} health check failed: {name} {details}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status == health_pb2.HealthCheckResponse.SERVING:
        return True, f"healthy: {target} {shown} is {status}"
    return False, f"unhealthy: {target} {shown} is {status}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paykit.grpckit.healthcheck",
        description="Exit 0 when the gRPC health service reports SERVING, 1 otherwise.",
    )
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--service", default="", help="service name to ask about (default: the whole server)")
    parser.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, help="deadline of the call")
    args = parser.parse_args(argv)
    if args.timeout_s <= 0:
        parser.error(f"--timeout-s must be positive, got {args.timeout_s}")
    serving, message = check(args.target, args.service, args.timeout_s)
    print(message, file=sys.stdout if serving else sys.stderr)
    return EXIT_SERVING if serving else EXIT_UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
