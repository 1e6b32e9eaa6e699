from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paykit.settings import env_field


@dataclass(frozen=True)
class GatewaySettings:
    database_url: str = env_field(
        "GATEWAY_DATABASE_URL", help="channel-gateway's PostgreSQL URL", secret=True
    )
    kafka_bootstrap_servers: str = env_field("KAFKA_BOOTSTRAP_SERVERS", help="Kafka brokers, host:port,...")
    grpc_listen: str = env_field("GATEWAY_GRPC_LISTEN", default="127.0.0.1:50053")
    webhook_host: str = env_field("GATEWAY_WEBHOOK_HOST", default="127.0.0.1")
    webhook_port: int = env_field("GATEWAY_WEBHOOK_PORT", default=8080)
    # What channels must call; defaults to this process's own webhook address.
    public_webhook_base: str | None = env_field("GATEWAY_PUBLIC_WEBHOOK_BASE", default=None)
    simulator_url: str = env_field("SIMULATOR_URL", help="base URL of the sandbox channel")
    simulator_merchant_id: str = env_field("SIMULATOR_MERCHANT_ID", default="SIM-MERCHANT-1")
    simulator_secret: str = env_field(
        "SIMULATOR_SECRET", help="HMAC key shared with the sandbox", secret=True
    )
    ready_file: Path | None = env_field("READY_FILE", default=None)
    log_level: str = env_field("LOG_LEVEL", default="INFO")
    migrate_on_start: bool = env_field("MIGRATE_ON_START", default=True)
