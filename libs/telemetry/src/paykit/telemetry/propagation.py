"""W3C trace-context propagation through string carriers (gRPC metadata, Kafka headers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate

KafkaHeaders = Sequence[tuple[str, bytes | str | None]]


def inject_carrier(context: otel_context.Context | None = None) -> dict[str, str]:
    """The current span's context (or `context`'s) as a small dict (`traceparent`, maybe
    `tracestate`)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def extract_context(carrier: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(carrier)


def headers_from_carrier(carrier: Mapping[str, str]) -> list[tuple[str, str | bytes | None]]:
    return [(k, v.encode()) for k, v in carrier.items()]


def carrier_from_headers(
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None,
) -> dict[str, str]:
    carrier: dict[str, str] = {}
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for key, value in pairs:
        if value is None:
            continue
        carrier[key] = value.decode() if isinstance(value, bytes) else value
    return carrier
