"""The only place that builds channel-gateway's real objects."""

from __future__ import annotations

from pathlib import Path

from paykit.channel.v1 import channel_pb2_grpc
from paykit.db import create_engine_for, run_migrations, session_factory
from paykit.grpckit.runner import ServiceParts
from paykit.messaging.publisher import AcknowledgedPublisher
from paykit.settings import SettingsError
from sqlalchemy.orm import Session, sessionmaker

from channel_gateway.adapters import channel_accounts
from channel_gateway.adapters.config_box import ConfigKeyError
from channel_gateway.adapters.connectors.base import ChannelConnector
from channel_gateway.adapters.connectors.registry import build_connector
from channel_gateway.adapters.connectors.simulator.connector import SimulatorConnector
from channel_gateway.adapters.notification_sink import KafkaNotificationSink
from channel_gateway.adapters.statements import KafkaStatementSink
from channel_gateway.entrypoints.grpc_server import SERVICE_NAME, ChannelGatewayServicer
from channel_gateway.entrypoints.webhook import WebhookServer
from channel_gateway.service_layer.services import Gateway
from channel_gateway.settings import GatewaySettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def migrate(database_url: str) -> None:
    run_migrations(MIGRATIONS, database_url)


def stored_connectors(
    sessions: sessionmaker[Session], settings: GatewaySettings
) -> dict[str, ChannelConnector]:
    """A connector per enabled channel account in the database (Alipay, WeChat Pay, card, ...).

    A stored account that cannot be opened or built stops the start with its channel named:
    serving without a configured channel would fail every payment routed to it.
    """
    try:
        with sessions() as session:
            accounts = channel_accounts.enabled_accounts(session, settings.config_box())
        return {a.channel: build_connector(a.channel, a.kind, a.config) for a in accounts}
    except (ConfigKeyError, ValueError) as exc:
        raise SettingsError([f"channel accounts: {exc}"], "GatewaySettings") from None


def build(settings: GatewaySettings) -> ServiceParts:
    if settings.migrate_on_start:
        migrate(settings.database_url)
    engine = create_engine_for(settings.database_url, application_name="channel-gateway")
    sessions = session_factory(engine)
    publisher = AcknowledgedPublisher(settings.kafka_bootstrap_servers, "channel-gateway")
    connectors: dict[str, ChannelConnector] = {
        channel: SimulatorConnector(
            settings.simulator_url, merchant_id, settings.simulator_secret.encode(), name=channel
        )
        for channel, merchant_id in settings.simulator_accounts().items()
    }
    connectors.update(stored_connectors(sessions, settings))
    webhook: WebhookServer | None = None

    def notify_url_for(channel: str) -> str:
        base = (
            settings.public_webhook_base
            or f"http://{settings.webhook_host}:{webhook.bound_port if webhook else 0}"
        )
        return f"{base.rstrip('/')}/webhooks/{channel}"

    gateway = Gateway(
        sessions, connectors, KafkaNotificationSink(publisher), notify_url_for, KafkaStatementSink(publisher)
    )
    webhook = WebhookServer(gateway, settings.webhook_host, settings.webhook_port)
    return ServiceParts(
        name="channel-gateway",
        grpc_services=[
            (
                channel_pb2_grpc.add_ChannelGatewayServicer_to_server,
                ChannelGatewayServicer(gateway),
                SERVICE_NAME,
            )
        ],
        extra_start=[webhook.start],
        extra_stop=[webhook.stop, *(connector.aclose for connector in connectors.values())],
        on_stop=[publisher.stop, engine.dispose],
    )
