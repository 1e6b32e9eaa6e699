from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paykit.settings import SettingsError, env_field

from accounting.domain.fees import FeeSchedule, parse_fee_schedule

DEFAULT_FEES = '{"merchant_bps": 60, "channel_bps": 38, "rounding": "half_up", "refund_fee": "return"}'


@dataclass(frozen=True)
class AccountingSettings:
    database_url: str = env_field("ACCOUNTING_DATABASE_URL", help="accounting's PostgreSQL URL", secret=True)
    kafka_bootstrap_servers: str = env_field("KAFKA_BOOTSTRAP_SERVERS", help="Kafka brokers, host:port,...")
    channel_gateway_target: str = env_field(
        "CHANNEL_GATEWAY_TARGET", help="channel-gateway gRPC host:port (settlement payouts)"
    )
    grpc_listen: str = env_field("ACCOUNTING_GRPC_LISTEN", default="127.0.0.1:50054")
    fees: str = env_field(
        "ACCOUNTING_FEES",
        default=DEFAULT_FEES,
        help="fee schedule JSON: merchant_bps, channel_bps, rounding, refund_fee, "
        "per-merchant and per-channel overrides",
    )
    release_after_s: float = env_field(
        "ACCOUNTING_RELEASE_AFTER_S",
        default=86400.0,
        help="T+N: seconds after capture when pending funds become available unless reconciled sooner",
    )
    payout_channel: str = env_field("ACCOUNTING_PAYOUT_CHANNEL", default="simulator")
    scheduler_poll_s: float = env_field("ACCOUNTING_SCHEDULER_POLL_S", default=1.0)
    trial_balance_poll_s: float = env_field(
        "ACCOUNTING_TRIAL_BALANCE_POLL_S",
        default=60.0,
        help="seconds between trial balances for the paykit_ledger_trial_balance_difference_minor "
        "gauge (each one sums every journal line)",
    )
    idempotency_ttl_s: float = env_field("IDEMPOTENCY_TTL_S", default=86400.0)
    idempotency_in_progress_timeout_s: float = env_field("IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S", default=30.0)
    ready_file: Path | None = env_field("READY_FILE", default=None)
    log_level: str = env_field("LOG_LEVEL", default="INFO")
    outbox_relay_enabled: bool = env_field("OUTBOX_RELAY_ENABLED", default=True)
    migrate_on_start: bool = env_field("MIGRATE_ON_START", default=True)

    def __post_init__(self) -> None:
        errors = []
        try:
            self.fee_schedule()
        except ValueError as exc:
            errors.append(f"ACCOUNTING_FEES {exc}")
        if self.release_after_s < 0:
            errors.append(f"ACCOUNTING_RELEASE_AFTER_S must be 0 or more, got {self.release_after_s}")
        if self.scheduler_poll_s <= 0:
            errors.append(f"ACCOUNTING_SCHEDULER_POLL_S must be positive, got {self.scheduler_poll_s}")
        if self.trial_balance_poll_s <= 0:
            errors.append(
                f"ACCOUNTING_TRIAL_BALANCE_POLL_S must be positive, got {self.trial_balance_poll_s}"
            )
        if errors:
            raise SettingsError(errors, type(self).__qualname__)

    def fee_schedule(self) -> FeeSchedule:
        return parse_fee_schedule(self.fees)
