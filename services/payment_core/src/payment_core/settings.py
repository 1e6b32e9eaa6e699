from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from paykit.money import AmountError, CurrencyError
from paykit.settings import SettingsError, env_field

from payment_core.domain.health import HealthPolicy
from payment_core.domain.routing import DEFAULT_RULES, RouteRule, parse_rules
from payment_core.domain.schedule import parse_schedule
from payment_core.service_layer.context import Lifecycle


@dataclass(frozen=True)
class PaymentCoreSettings:
    database_url: str = env_field("PAYMENT_DATABASE_URL", help="payment-core's PostgreSQL URL", secret=True)
    kafka_bootstrap_servers: str = env_field("KAFKA_BOOTSTRAP_SERVERS", help="Kafka brokers, host:port,...")
    channel_gateway_target: str = env_field("CHANNEL_GATEWAY_TARGET", help="channel-gateway gRPC host:port")
    grpc_listen: str = env_field("PAYMENT_GRPC_LISTEN", default="127.0.0.1:50052")
    routing_rules: str = env_field(
        "PAYMENT_ROUTING_RULES",
        default=DEFAULT_RULES,
        help='JSON list of {"method", "currency"?, "min"?, "max"?, "channels": {name: weight}}',
    )
    query_schedule_s: tuple[str, ...] = env_field(
        "PAYMENT_QUERY_SCHEDULE_S",
        default=("5", "15", "60", "300", "900"),
        help="seconds between queries of an open payment; the last step repeats",
    )
    refund_retry_s: tuple[str, ...] = env_field(
        "PAYMENT_REFUND_RETRY_S",
        default=("2", "5", "15", "60", "300"),
        help="seconds between re-submits/queries of an open refund; the last step repeats",
    )
    default_expiry_s: int = env_field(
        "PAYMENT_DEFAULT_EXPIRY_S", default=1800, help="deadline of a payment whose order gave none"
    )
    scheduler_poll_s: float = env_field(
        "PAYMENT_SCHEDULER_POLL_S", default=0.5, help="how often due queries and refunds are looked for"
    )
    channel_error_threshold: int = env_field(
        "PAYMENT_CHANNEL_ERROR_THRESHOLD",
        default=3,
        help="consecutive unanswered charges that open a circuit",
    )
    channel_cool_down_s: float = env_field(
        "PAYMENT_CHANNEL_COOL_DOWN_S", default=30.0, help="how long an erroring channel is skipped"
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
    stuck_after_s: float = env_field(
        "PAYMENT_STUCK_AFTER_S",
        default=300.0,
        help="a payment PROCESSING or UNKNOWN for longer than this counts as stuck (the "
        "paykit_payments_stuck gauge and its alert)",
    )
    ready_file: Path | None = env_field("READY_FILE", default=None)
    log_level: str = env_field("LOG_LEVEL", default="INFO")
    # Off runs this process without publishing its outbox (a separate relay
    # process, or a drill); events wait, committed, until a relay runs.
    outbox_relay_enabled: bool = env_field("OUTBOX_RELAY_ENABLED", default=True)
    migrate_on_start: bool = env_field("MIGRATE_ON_START", default=True)

    def __post_init__(self) -> None:
        # Malformed policy is a configuration error at start-up, named by its variable.
        errors = []
        try:
            self.rules()
        except (ValueError, AmountError, CurrencyError) as exc:
            errors.append(f"PAYMENT_ROUTING_RULES {exc}")
        for name, values in (
            ("PAYMENT_QUERY_SCHEDULE_S", self.query_schedule_s),
            ("PAYMENT_REFUND_RETRY_S", self.refund_retry_s),
        ):
            try:
                parse_schedule(values)
            except ValueError as exc:
                errors.append(f"{name} {exc}")
        if self.stuck_after_s <= 0:
            errors.append(f"PAYMENT_STUCK_AFTER_S must be positive, got {self.stuck_after_s}")
        if errors:
            raise SettingsError(errors, type(self).__qualname__)

    def rules(self) -> tuple[RouteRule, ...]:
        return parse_rules(self.routing_rules)

    def lifecycle(self) -> Lifecycle:
        return Lifecycle(
            query_schedule=parse_schedule(self.query_schedule_s),
            refund_retry_schedule=parse_schedule(self.refund_retry_s),
            default_expiry=timedelta(seconds=self.default_expiry_s),
        )

    def health_policy(self) -> HealthPolicy:
        return HealthPolicy(self.channel_error_threshold, timedelta(seconds=self.channel_cool_down_s))
