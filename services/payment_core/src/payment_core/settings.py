from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paykit.settings import env_field


@dataclass(frozen=True)
class PaymentCoreSettings:
    database_url: str = env_field("PAYMENT_DATABASE_URL", help="payment-core's PostgreSQL URL", secret=True)
    kafka_bootstrap_servers: str = env_field("KAFKA_BOOTSTRAP_SERVERS", help="Kafka brokers, host:port,...")
    channel_gateway_target: str = env_field("CHANNEL_GATEWAY_TARGET", help="channel-gateway gRPC host:port")
    grpc_listen: str = env_field("PAYMENT_GRPC_LISTEN", default="127.0.0.1:50052")
    # method=channel pairs, e.g. "qr=simulator"; issue-4 routing replaces this.
    routes: tuple[str, ...] = env_field("PAYMENT_ROUTES", default=("qr=simulator",))
    ready_file: Path | None = env_field("READY_FILE", default=None)
    log_level: str = env_field("LOG_LEVEL", default="INFO")
    # Off runs this process without publishing its outbox (a separate relay
    # process, or a drill); events wait, committed, until a relay runs.
    outbox_relay_enabled: bool = env_field("OUTBOX_RELAY_ENABLED", default=True)
    migrate_on_start: bool = env_field("MIGRATE_ON_START", default=True)

    def route_table(self) -> dict[str, str]:
        table = {}
        for pair in self.routes:
            method, _, channel = pair.partition("=")
            table[method.strip()] = channel.strip()
        return table
