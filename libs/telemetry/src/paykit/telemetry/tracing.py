"""Tracer provider set-up, with the exporter chosen by environment.

OTEL_EXPORTER_OTLP_ENDPOINT  -> OTLP/gRPC exporter (a collector)
PAYKIT_TRACE_FILE            -> one JSON line per finished span, appended to
                                that file; the e2e tests read it to prove one
                                trace crosses every process
neither                      -> spans are created (ids still propagate) but not exported
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

_setup_lock = threading.Lock()
_configured_service: str | None = None


class JsonLinesSpanExporter(SpanExporter):
    """Appends each span as one JSON object per line; safe across processes (O_APPEND)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:
                continue
            parent = span.parent
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "service": span.resource.attributes.get("service.name"),
                        "trace_id": format(ctx.trace_id, "032x"),
                        "span_id": format(ctx.span_id, "016x"),
                        "parent_span_id": format(parent.span_id, "016x") if parent else None,
                        "kind": span.kind.name,
                        "attributes": {k: str(v) for k, v in (span.attributes or {}).items()},
                    }
                )
            )
        if lines:
            with self._lock, self._path.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _processor_from_env() -> SpanProcessor | None:
    trace_file = os.environ.get("PAYKIT_TRACE_FILE")
    if trace_file:
        # Simple (synchronous) so a SIGKILLed process has already written its spans.
        return SimpleSpanProcessor(JsonLinesSpanExporter(Path(trace_file)))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return BatchSpanProcessor(OTLPSpanExporter())
    return None


def setup_tracing(service_name: str, extra: SpanProcessor | None = None) -> TracerProvider:
    """Install the global tracer provider once; later calls return the same provider."""
    global _configured_service
    with _setup_lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider) and _configured_service is not None:
            if extra is not None:
                current.add_span_processor(extra)
            return current
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        processor = _processor_from_env()
        if processor is not None:
            provider.add_span_processor(processor)
        if extra is not None:
            provider.add_span_processor(extra)
        trace.set_tracer_provider(provider)
        _configured_service = service_name
        return provider


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)
