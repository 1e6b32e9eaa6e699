"""One trace per payment, from CreateOrder to the merchant's webhook, exported over OTLP.

The services are restarted with nothing but the standard OpenTelemetry environment
(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_BSP_SCHEDULE_DELAY) pointing at a real OTLP/gRPC
trace collector that this test runs on loopback; the merchant's receiver is a real
HTTP server. Afterwards the suite gets its own environment back.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
from aiohttp import web
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from paykit.devstack.suite import Suite
from paykit.notification.v1 import notification_pb2 as pb
from paykit.notification.v1 import notification_pb2_grpc
from paykit.telemetry import inject_carrier

from tests.e2e.helpers import eventually, new_order, pay, wait_order_status

WAIT_S = 60.0
# The services a payment crosses before its webhook; restarted to export over OTLP.
TRACED = ("channel_gateway", "notification", "payment_core", "order")
# The BatchSpanProcessor's export interval (ms): spans reach the collector in a blink.
BSP_SCHEDULE_DELAY_MS = "200"
COLLECTOR_WORKERS = 4


@dataclass(frozen=True)
class CollectedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start_ns: int
    attributes: dict[str, object]


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace collector that keeps every span it is sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[CollectedSpan] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        got = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                got += [_collected(resource.get("service.name", "?"), s) for s in scope_spans.spans]
        with self._lock:
            self._spans += got
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace_id: str) -> list[CollectedSpan]:
        with self._lock:
            return [s for s in self._spans if s.trace_id == trace_id]


def _collected(service: str, span: trace_pb2.Span) -> CollectedSpan:
    attributes: dict[str, object] = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        attributes[a.key] = getattr(a.value, kind) if kind else None
    return CollectedSpan(
        service=service,
        name=span.name,
        kind=trace_pb2.Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex() or None,
        start_ns=span.start_time_unix_nano,
        attributes=attributes,
    )


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    collected = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=COLLECTOR_WORKERS))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collected, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield collected, port
    finally:
        server.stop(grace=1).wait()


@pytest.fixture
def otlp_suite(suite: Suite, collector: tuple[Collector, int]) -> Iterator[Suite]:
    """The payment's services exporting to the collector, configured by the environment
    only; restarted with the suite's own environment afterwards (before the collector
    stops, so their last spans still have somewhere to go)."""
    otlp = {
        "PAYKIT_TRACE_FILE": "",  # it would take precedence over OTLP
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector[1]}",
        "OTEL_BSP_SCHEDULE_DELAY": BSP_SCHEDULE_DELAY_MS,
    }
    try:
        for name in TRACED:
            suite.start_service(name, otlp)
        yield suite
    finally:
        for name in TRACED:
            suite.start_service(name, {})  # the suite's base env again, as it was started


@dataclass
class Merchant:
    """A merchant's webhook endpoint: answers 503 to the first request, then 200."""

    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (event type, traceparent, status)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        status = 503 if not self.requests else 200
        event_type = request.headers.get("Paykit-Event-Type", "")
        self.requests.append((event_type, request.headers.get("traceparent", ""), status))
        return web.Response(status=status, text="ok" if status == 200 else "not yet")


@pytest.fixture
def merchant() -> Iterator[Merchant]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receiver = Merchant()
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, access_log=None)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        receiver.url = f"http://127.0.0.1:{port}/hooks"

    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def register(suite: Suite, merchant_id: str, url: str) -> None:
    stub = notification_pb2_grpc.NotificationServiceStub(
        grpc.insecure_channel(suite.grpc_target("notification"))
    )
    stub.RegisterEndpoint(
        pb.RegisterEndpointRequest(
            idempotency_key=f"reg-{uuid.uuid4().hex}",
            merchant_id=merchant_id,
            url=url,
            event_types=["order.paid"],
        ),
        timeout=10,
    )


def tree(spans: list[CollectedSpan]) -> str:
    """The trace as an indented tree of `service: span name`, children in start order."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[CollectedSpan]] = {}
    for s in sorted(spans, key=lambda s: s.start_ns):
        children.setdefault(s.parent_id if s.parent_id in ids else None, []).append(s)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in children.get(parent, []):
            extra = ""
            if s.name == "POST webhook":
                attempt, status = (
                    s.attributes["webhook.attempt"],
                    s.attributes.get("http.response.status_code"),
                )
                extra = f" (attempt {attempt}, HTTP {status})"
            lines.append(f"{'  ' * depth}{s.service}: {s.name}{extra}")
            walk(s.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


def ancestors(span: CollectedSpan, spans: list[CollectedSpan]) -> list[CollectedSpan]:
    """From the span's parent up to the root; stops short where a parent was not collected."""
    by_id = {s.span_id: s for s in spans}
    chain = []
    parent = by_id.get(span.parent_id or "")
    while parent is not None:
        chain.append(parent)
        parent = by_id.get(parent.parent_id or "")
    return chain


def test_one_trace_from_create_order_to_the_merchant_webhook_over_otlp(
    otlp_suite: Suite, collector: tuple[Collector, int], merchant: Merchant
) -> None:
    suite, (collected, port) = otlp_suite, collector
    merchant_id = f"m-trace-{uuid.uuid4().hex[:6]}"
    register(suite, merchant_id, merchant.url)

    # The caller's own span, exported to the same collector: the root of the payment's trace.
    client = TracerProvider(resource=Resource.create({"service.name": "e2e-client"}))
    client.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True))
    )
    try:
        with client.get_tracer("e2e").start_as_current_span("checkout", kind=SpanKind.CLIENT) as checkout:
            metadata = tuple(inject_carrier().items())
            order = new_order(suite, merchant_id=merchant_id, metadata=metadata)
            pay(suite, order.order_id, metadata=metadata)
    finally:
        client.shutdown()
    trace_id = format(checkout.get_span_context().trace_id, "032x")
    wait_order_status(suite, order.order_id, "PAID")

    # The merchant got order.paid (after one 503, retried), each POST in the checkout's trace.
    eventually(
        lambda: [s for _, _, s in merchant.requests] == [503, 200],
        "order.paid retried, then delivered",
        WAIT_S,
    )
    assert [t for t, _, _ in merchant.requests] == ["order.paid", "order.paid"]
    assert all(tp.split("-")[1] == trace_id for _, tp, _ in merchant.requests), merchant.requests

    wanted = {
        ("e2e-client", "checkout"),
        ("order", "/paykit.order.v1.OrderService/CreateOrder"),
        ("order", "/paykit.order.v1.OrderService/PayOrder"),
        ("payment-core", "/paykit.payment.v1.PaymentService/CreatePayment"),
        ("channel-gateway", "/paykit.channel.v1.ChannelGateway/Charge"),
        ("payment-core", "consume channel.notification_received"),
        ("order", "consume payment.succeeded"),
        ("notification", "consume order.paid"),
        ("notification", "POST webhook"),
    }

    def complete() -> list[CollectedSpan] | None:
        """Every hop's span, and both POSTs linked to the checkout with no span missing between."""
        spans = collected.of_trace(trace_id)
        posts = [s for s in spans if s.name == "POST webhook"]
        linked = all((chain := ancestors(p, spans)) and chain[-1].name == "checkout" for p in posts)
        return (
            spans if wanted <= {(s.service, s.name) for s in spans} and len(posts) == 2 and linked else None
        )

    try:
        spans = eventually(complete, "the whole payment's trace at the collector", WAIT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; collected:\n{tree(collected.of_trace(trace_id))}") from exc
    print(f"\ntrace {trace_id}, {len(spans)} spans at the OTLP collector:\n{tree(spans)}")

    posts = sorted((s for s in spans if s.name == "POST webhook"), key=lambda s: s.start_ns)
    assert [
        (p.kind, p.attributes["webhook.attempt"], p.attributes["http.response.status_code"]) for p in posts
    ] == [
        ("CLIENT", 1, 503),
        ("CLIENT", 2, 200),
    ]
    # The merchant saw the very spans the collector got: its tracing can join this trace.
    assert [tp.split("-")[2] for _, tp, _ in merchant.requests] == [p.span_id for p in posts]
    create = next(s for s in spans if s.name.endswith("/CreateOrder"))
    for post in posts:
        chain = ancestors(post, spans)
        assert (chain[0].service, chain[0].name, chain[0].kind) == (
            "notification",
            "consume order.paid",
            "CONSUMER",
        )
        assert [(s.service, s.name) for s in chain if s.service == "order"][-1] == (
            "order",
            "/paykit.order.v1.OrderService/PayOrder",
        )
        assert create.parent_id == chain[-1].span_id  # CreateOrder hangs from the same checkout
