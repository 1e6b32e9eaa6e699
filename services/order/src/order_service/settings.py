from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paykit.settings import SettingsError, env_field


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
    payment_methods: tuple[str, ...] = env_field(
        "ORDER_PAYMENT_METHODS",
        default=("qr",),
        help="payment methods a payer may choose, comma-separated; keep in step with payment-core's "
        "routing rules (a payer may switch between them while paying)",
    )
    expiry_poll_s: float = env_field(
        "ORDER_EXPIRY_POLL_S",
        default=1.0,
        help="seconds between scans for expired unpaid orders to close (sooner while a backlog drains)",
    )
    close_retry_s: tuple[float, ...] = env_field(
        "ORDER_CLOSE_RETRY_S",
        default=(5.0, 15.0, 60.0, 300.0),
        help="seconds before closing an expired order is tried again after payment-core could not "
        "confirm, per attempt, comma-separated; the last one repeats",
    )
    close_force_after: int = env_field(
        "ORDER_CLOSE_FORCE_AFTER",
        default=8,
        help="unconfirmed closes of an expired order after which payment-core is asked to force the "
        "close (a payment landing later is refunded automatically); 0 never forces",
    )

    idempotency_ttl_s: float = env_field(
        "IDEMPOTENCY_TTL_S", default=86400.0, help="how long an idempotency key replays its first response"
    )
    idempotency_in_progress_timeout_s: float = env_field(
        "IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S",
        # Longer than any one call can take (deadlines are 10-30 s), short enough
        # that a retry after a crash is not held up for long.
        default=30.0,
        help="how long a claimed key waits for its request before another may take it over",
    )

    def __post_init__(self) -> None:
        # Fail at start, naming the variable, rather than on the first expired order.
        errors = []
        if not self.payment_methods:
            errors.append("ORDER_PAYMENT_METHODS must name at least one method")
        if self.expiry_poll_s <= 0:
            errors.append(f"ORDER_EXPIRY_POLL_S must be positive, got {self.expiry_poll_s}")
        if not self.close_retry_s or any(delay_s <= 0 for delay_s in self.close_retry_s):
            errors.append(f"ORDER_CLOSE_RETRY_S must list positive seconds, got {self.close_retry_s}")
        if self.close_force_after < 0:
            errors.append(f"ORDER_CLOSE_FORCE_AFTER must be 0 or more, got {self.close_force_after}")
        if errors:
            raise SettingsError(errors, type(self).__qualname__)
