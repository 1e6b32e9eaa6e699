"""The gateway wired to real servers for tests: the sandbox on loopback, PostgreSQL, Kafka,
its own webhook listener and gRPC server, all serving on one loop thread."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
from channel_gateway.adapters.connectors.base import ChannelConnector
from channel_gateway.adapters.connectors.simulator.connector import SimulatorConnector
from channel_gateway.adapters.connectors.simulator.transformers import auth_headers
from channel_gateway.adapters.notification_sink import KafkaNotificationSink
from channel_gateway.domain.channel import ChargeCommand, ChargeState, RefundCommand
from channel_gateway.entrypoints.grpc_server import SERVICE_NAME, ChannelGatewayServicer
from channel_gateway.entrypoints.webhook import WebhookServer
from channel_gateway.service_layer.services import Gateway
from channel_simulator.harness import LoopThread, RunningSimulator, start_simulator
from confluent_kafka import Message
from google.protobuf.message import Message as ProtoMessage
from paykit.channel.v1 import channel_pb2_grpc
from paykit.db import session_factory
from paykit.devstack.fixtures import read_topic
from paykit.grpckit.server import create_server
from paykit.ids import IdKind, new_id
from paykit.messaging.envelope import decode_envelope, unpack
from paykit.messaging.publisher import AcknowledgedPublisher
from paykit.messaging.topics import CHANNEL_NOTIFICATIONS
from paykit.money import Money
from sqlalchemy import Engine, text

KEY = b"gateway-test-sandbox-key"
MERCHANT_A, MERCHANT_B = "SIM-MERCHANT-1", "SIM-MERCHANT-2"
CHANNEL_A, CHANNEL_B = "simulator", "simulator_b"
ACCOUNTS = {CHANNEL_A: MERCHANT_A, CHANNEL_B: MERCHANT_B}
WAIT_S = 20.0
POLL_S = 0.05


def eventually(condition: Any, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(POLL_S)


@dataclass
class Stack:
    loop: LoopThread
    gateway: Gateway
    simulator: RunningSimulator
    webhook: WebhookServer
    grpc_server: grpc.aio.Server
    grpc_port: int
    engine: Engine
    kafka_bootstrap: str
    publisher: AcknowledgedPublisher

    # -- database ---------------------------------------------------------------------
    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    # -- the sandbox, as its operator ---------------------------------------------------
    def sandbox(self, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.simulator.base_url + path,
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    def sandbox_trade(self, merchant: str, out_trade_no: str) -> dict[str, Any] | None:
        trades = self.sandbox(f"/v1/admin/trades?merchant={merchant}")
        return next((t for t in trades if t["out_trade_no"] == out_trade_no), None)

    # -- the webhook, as a channel ------------------------------------------------------
    def post_notification(
        self, channel: str, merchant: str, body: bytes, key: bytes = KEY
    ) -> tuple[int, str]:
        path = f"/webhooks/{channel}"
        headers = auth_headers(merchant, key, "POST", path, body, int(time.time()))
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.webhook.bound_port}{path}", data=body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    # -- Kafka --------------------------------------------------------------------------
    def events(self, order_id: str, event_type: str, count: int = 1) -> list[tuple[Message, Any]]:
        """The first `count` events of `event_type` keyed by `order_id` on channel.notifications."""

        def matching(messages: list[Message]) -> list[Message]:
            return [
                m
                for m in messages
                if m.key() == order_id.encode() and decode_envelope(m.value()).event_type == event_type
            ]

        messages = read_topic(
            self.kafka_bootstrap,
            CHANNEL_NOTIFICATIONS,
            until=lambda msgs: len(matching(msgs)) >= count,
            timeout_s=WAIT_S,
        )
        return [(m, decode_envelope(m.value())) for m in matching(messages)]


def unpack_payload(envelope: Any, message_type: type[ProtoMessage]) -> Any:
    return unpack(envelope, message_type)


def new_ids() -> tuple[str, str]:
    """(payment id, order id) as payment-core would make them."""
    return new_id(IdKind.PAYMENT), new_id(IdKind.ORDER)


def charge_command(stack: Stack, channel: str, amount: Money, subject: str = "") -> ChargeCommand:
    payment_id, order_id = new_ids()
    return ChargeCommand(
        payment_id=payment_id,
        order_id=order_id,
        amount=amount,
        method="qr",
        subject=subject,
        notify_url=stack.gateway.notify_url_for(channel),
    )


def refund_command(
    stack: Stack, charge: ChargeCommand, channel: str, amount: Money, refund_id: str = ""
) -> RefundCommand:
    return RefundCommand(
        refund_id=refund_id or new_id(IdKind.REFUND),
        payment_id=charge.payment_id,
        order_id=charge.order_id,
        amount=amount,
        payment_amount=charge.amount,
        reason="customer returned the goods",
        notify_url=stack.gateway.notify_url_for(channel),
    )


async def start_stack(loop: LoopThread, engine: Engine, kafka_bootstrap: str) -> Stack:
    """Everything the gateway process builds in bootstrap.py, but on loopback ports chosen by the OS."""
    simulator = await start_simulator(list(ACCOUNTS.values()), KEY, seed=11)
    connectors: dict[str, ChannelConnector] = {
        channel: SimulatorConnector(simulator.base_url, merchant, KEY, name=channel)
        for channel, merchant in ACCOUNTS.items()
    }
    holder: dict[str, WebhookServer] = {}

    def notify_url_for(channel: str) -> str:
        return f"http://127.0.0.1:{holder['webhook'].bound_port}/webhooks/{channel}"

    publisher = AcknowledgedPublisher(kafka_bootstrap, "channel-gateway-test")
    gateway = Gateway(session_factory(engine), connectors, KafkaNotificationSink(publisher), notify_url_for)
    webhook = WebhookServer(gateway, "127.0.0.1", 0)
    holder["webhook"] = webhook
    await webhook.start()
    server, port = create_server(
        "127.0.0.1:0",
        [
            (
                channel_pb2_grpc.add_ChannelGatewayServicer_to_server,
                ChannelGatewayServicer(gateway),
                SERVICE_NAME,
            )
        ],
    )
    await server.start()
    return Stack(loop, gateway, simulator, webhook, server, port, engine, kafka_bootstrap, publisher)


async def stop_stack(stack: Stack) -> None:
    await stack.grpc_server.stop(0)
    await stack.webhook.stop()
    for connector in stack.gateway.connectors.values():
        await connector.aclose()
    await stack.simulator.stop()


def wait_paid(stack: Stack, payment_id: str, channel: str) -> None:
    def paid() -> bool:
        return stack.loop.run(stack.gateway.query(payment_id, channel)).state is ChargeState.SUCCEEDED

    eventually(paid, f"payment {payment_id} to be paid at {channel}")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
