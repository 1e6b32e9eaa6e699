from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paykit.settings import env_field


@dataclass(frozen=True)
class OrderSettings:
    database_url: str = env_field(
        "ORDER_DATABASE_URL", help="the order service's PostgreSQL URL", secret=True
    )
    kafka_bootstrap_servers: str = env_field("KAFKA_BOOTSTRAP_SERVERS", help="Kafka brokers, host:port,...")
    payment_core_target: str = env_field("PAYMENT_CORE_TARGET", help="payment-core gRPC host:port")
    grpc_listen: str = env_field("ORDER_GRPC_LISTEN", default="127.0.0.1:50051")
    ready_file: Path | None = env_field(
        "READY_FILE", default=None, help="written with the bound ports when serving"
    )
    log_level: str = env_field("LOG_LEVEL", default="INFO")
    migrate_on_start: bool = env_field("MIGRATE_ON_START", default=True)
