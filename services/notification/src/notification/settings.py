from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paykit.settings import SettingsError, env_field

from notification.domain.breaker import DEFAULT_COOL_DOWN_S, DEFAULT_FAILURE_THRESHOLD, BreakerPolicy
from notification.domain.delivery import (
    DEFAULT_JITTER_RATIO,
    DEFAULT_RETRY_SCHEDULE_S,
    MAX_SCHEDULE_STEPS,
    RetrySchedule,
)
from notification.service_layer.dispatch import (
    DEFAULT_ENDPOINT_CONCURRENCY,
    DEFAULT_GLOBAL_CONCURRENCY,
    DEFAULT_LEASE_S,
    DispatchPolicy,
)


@dataclass(frozen=True)
class NotificationSettings:
    database_url: str = env_field(
        "NOTIFICATION_DATABASE_URL", help="notification's PostgreSQL URL", secret=True
    )
    kafka_bootstrap_servers: str = env_field("KAFKA_BOOTSTRAP_SERVERS", help="Kafka brokers, host:port,...")
    grpc_listen: str = env_field("NOTIFICATION_GRPC_LISTEN", default="127.0.0.1:50055")
    retry_schedule_s: tuple[float, ...] = env_field(
        "NOTIFICATION_RETRY_SCHEDULE_S",
        default=DEFAULT_RETRY_SCHEDULE_S,
        help="seconds to wait after the 1st, 2nd, ... failed attempt; DEAD after the last",
    )
    retry_jitter_ratio: float = env_field("NOTIFICATION_RETRY_JITTER", default=DEFAULT_JITTER_RATIO)
    allow_insecure_urls: bool = env_field(
        "NOTIFICATION_ALLOW_INSECURE_URLS",
        default=False,
        help="development only: accept http:// and hosts on private or loopback addresses",
    )
    endpoint_concurrency: int = env_field(
        "NOTIFICATION_ENDPOINT_CONCURRENCY", default=DEFAULT_ENDPOINT_CONCURRENCY
    )
    global_concurrency: int = env_field("NOTIFICATION_GLOBAL_CONCURRENCY", default=DEFAULT_GLOBAL_CONCURRENCY)
    breaker_failures: int = env_field("NOTIFICATION_BREAKER_FAILURES", default=DEFAULT_FAILURE_THRESHOLD)
    breaker_cool_down_s: float = env_field("NOTIFICATION_BREAKER_COOL_DOWN_S", default=DEFAULT_COOL_DOWN_S)
    lease_s: float = env_field("NOTIFICATION_LEASE_S", default=DEFAULT_LEASE_S)
    poll_s: float = env_field("NOTIFICATION_POLL_S", default=0.5)
    idempotency_ttl_s: float = env_field("IDEMPOTENCY_TTL_S", default=86400.0)
    idempotency_in_progress_timeout_s: float = env_field("IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S", default=30.0)
    ready_file: Path | None = env_field("READY_FILE", default=None)
    log_level: str = env_field("LOG_LEVEL", default="INFO")
    outbox_relay_enabled: bool = env_field("OUTBOX_RELAY_ENABLED", default=True)
    migrate_on_start: bool = env_field("MIGRATE_ON_START", default=True)

    def __post_init__(self) -> None:
        errors = []
        if not 1 <= len(self.retry_schedule_s) <= MAX_SCHEDULE_STEPS:
            errors.append(f"NOTIFICATION_RETRY_SCHEDULE_S needs 1..{MAX_SCHEDULE_STEPS} delays")
        if any(d <= 0 for d in self.retry_schedule_s):
            errors.append(
                f"NOTIFICATION_RETRY_SCHEDULE_S delays must be positive, got {self.retry_schedule_s}"
            )
        if not 0 <= self.retry_jitter_ratio < 1:
            errors.append(f"NOTIFICATION_RETRY_JITTER must be in [0, 1), got {self.retry_jitter_ratio}")
        for name, value in (
            ("NOTIFICATION_ENDPOINT_CONCURRENCY", self.endpoint_concurrency),
            ("NOTIFICATION_GLOBAL_CONCURRENCY", self.global_concurrency),
            ("NOTIFICATION_BREAKER_FAILURES", self.breaker_failures),
        ):
            if value < 1:
                errors.append(f"{name} must be at least 1, got {value}")
        for name, seconds in (
            ("NOTIFICATION_BREAKER_COOL_DOWN_S", self.breaker_cool_down_s),
            ("NOTIFICATION_LEASE_S", self.lease_s),
            ("NOTIFICATION_POLL_S", self.poll_s),
        ):
            if seconds <= 0:
                errors.append(f"{name} must be positive, got {seconds}")
        if errors:
            raise SettingsError(errors, type(self).__qualname__)

    def dispatch_policy(self) -> DispatchPolicy:
        return DispatchPolicy(
            schedule=RetrySchedule(self.retry_schedule_s, self.retry_jitter_ratio),
            breaker=BreakerPolicy(self.breaker_failures, self.breaker_cool_down_s),
            endpoint_concurrency=self.endpoint_concurrency,
            global_concurrency=self.global_concurrency,
            lease_s=self.lease_s,
        )
