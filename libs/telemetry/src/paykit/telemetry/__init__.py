"""Traces and logs, set up once per process.

Trace context crosses process boundaries in W3C `traceparent` form: in gRPC
metadata (paykit.grpckit) and in Kafka headers (paykit.messaging), both
through `inject_carrier` / `extract_context` here so there is one propagator.
"""

from paykit.telemetry.logs import configure_logging
from paykit.telemetry.propagation import (
    carrier_from_headers,
    extract_context,
    headers_from_carrier,
    inject_carrier,
)
from paykit.telemetry.tracing import JsonLinesSpanExporter, setup_tracing, tracer

__all__ = [
    "JsonLinesSpanExporter",
    "carrier_from_headers",
    "configure_logging",
    "extract_context",
    "headers_from_carrier",
    "inject_carrier",
    "setup_tracing",
    "tracer",
]
