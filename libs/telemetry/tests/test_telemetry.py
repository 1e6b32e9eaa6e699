import io
import json
import logging

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from paykit.telemetry import (
    carrier_from_headers,
    extract_context,
    headers_from_carrier,
    inject_carrier,
    setup_tracing,
    tracer,
)
from paykit.telemetry.logs import JsonFormatter

exporter = InMemorySpanExporter()
setup_tracing("telemetry-test", extra=SimpleSpanProcessor(exporter))


def test_context_survives_a_round_trip_through_kafka_style_headers() -> None:
    t = tracer("test")
    with t.start_as_current_span("producer") as producer_span:
        headers = headers_from_carrier(inject_carrier())
    assert all(isinstance(v, bytes) for _, v in headers)
    ctx = extract_context(carrier_from_headers(headers))
    with t.start_as_current_span("consumer", context=ctx) as consumer_span:
        pass
    assert consumer_span.get_span_context().trace_id == producer_span.get_span_context().trace_id
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer_span.get_span_context().span_id


def test_json_log_lines_carry_the_current_trace_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("svc"))
    log = logging.getLogger("paykit.test.json")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    with tracer("test").start_as_current_span("work") as span:
        log.info("payment stored", extra={"payment_id": "pay_1"})
    line = json.loads(stream.getvalue())
    assert line["msg"] == "payment stored"
    assert line["payment_id"] == "pay_1"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
