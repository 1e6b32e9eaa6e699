"""Reconciliation's configuration, read once from the environment; every error names its variable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from paykit.messaging.topics import PAYMENT_EVENTS, REFUND_EVENTS
from paykit.settings import SettingsError, env_field

from reconciliation.matching.config import (
    MAX_SUSPENSE_DAYS,
    MAX_SUSPENSE_WINDOW_S,
    MAX_TIME_TOLERANCE_S,
    MatchConfig,
)

# Alipay and WeChat Pay close their bills at Beijing midnight; the card acquirer and the
# sandbox channels at UTC midnight. A channel not listed falls back to RECON_DEFAULT_TIMEZONE.
DEFAULT_CHANNEL_TIMEZONES = (
    "alipay=Asia/Shanghai,wechatpay=Asia/Shanghai,card=UTC,simulator=UTC,simulator_b=UTC"
)
MAX_CHANNELS = 64
MAX_CAPTURE_TOPICS = 8
BPS_MAX = 10_000
# An automatic adjustment is for small differences (rounding, a fee rule); more needs a human.
MAX_AUTO_ADJUST_MINOR = 10_000


def parse_channel_timezones(text: str, variable: str) -> dict[str, ZoneInfo]:
    """`channel=Area/City,...` -> zones; raises SettingsError naming `variable` and the entry."""
    zones: dict[str, ZoneInfo] = {}
    errors = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        channel, sep, name = (s.strip() for s in entry.partition("="))
        if not sep or not channel or not name:
            errors.append(f"{variable}: {entry!r} is not <channel>=<IANA time zone>")
            continue
        if channel in zones:
            errors.append(f"{variable}: channel {channel!r} is listed twice")
            continue
        try:
            zones[channel] = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"{variable}: {name!r} (for {channel}) is not an IANA time zone")
    if len(zones) > MAX_CHANNELS:
        errors.append(f"{variable}: at most {MAX_CHANNELS} channels, got {len(zones)}")
    if errors:
        raise SettingsError(errors, "ReconciliationSettings")
    return zones


@dataclass(frozen=True)
class ReconciliationSettings:
    database_url: str = env_field("RECON_DATABASE_URL", help="reconciliation's PostgreSQL URL", secret=True)
    kafka_bootstrap_servers: str = env_field("KAFKA_BOOTSTRAP_SERVERS", help="Kafka brokers, host:port,...")
    grpc_listen: str = env_field("RECON_GRPC_LISTEN", default="127.0.0.1:50057")
    channel_timezones: str = env_field(
        "RECON_CHANNEL_TIMEZONES",
        default=DEFAULT_CHANNEL_TIMEZONES,
        help="<channel>=<IANA zone>,...: the zone whose midnight closes each channel's business day",
    )
    default_timezone: str = env_field(
        "RECON_DEFAULT_TIMEZONE", default="UTC", help="the business-day zone of a channel not listed"
    )
    suspense_window_s: int = env_field(
        "RECON_SUSPENSE_WINDOW_S",
        default=1_800,
        help="an unmatched record this close to its day's cut-off waits in suspense",
    )
    suspense_days: int = env_field(
        "RECON_SUSPENSE_DAYS", default=1, help="days a record waits in suspense before it is a discrepancy"
    )
    amount_tolerance_minor: int = env_field("RECON_AMOUNT_TOLERANCE_MINOR", default=1)
    amount_tolerance_bps: int = env_field("RECON_AMOUNT_TOLERANCE_BPS", default=0)
    time_tolerance_s: int = env_field("RECON_TIME_TOLERANCE_S", default=3_600)
    # The capture (payment.events / refund.events -> internal records) runs inside this
    # process unless a separate worker (`python -m reconciliation.capture`) does it.
    capture_in_process: bool = env_field(
        "RECON_CAPTURE_IN_PROCESS",
        default=True,
        help="run the capture in the service process; false when `python -m reconciliation.capture` runs",
    )
    capture_group: str = env_field(
        "RECON_CAPTURE_GROUP", default="reconciliation-capture", help="the capture's Kafka consumer group"
    )
    capture_topics: tuple[str, ...] = env_field(
        "RECON_CAPTURE_TOPICS",
        default=(PAYMENT_EVENTS, REFUND_EVENTS),
        help="what the capture consumes: payment.events and refund.events (a copy of them in tests)",
    )
    capture_batch_size: int = env_field("RECON_CAPTURE_BATCH_SIZE", default=500)
    capture_batch_wait_s: float = env_field("RECON_CAPTURE_BATCH_WAIT_S", default=0.2)
    # faust keeps a little on disk (its offsets checkpoint, empty for a stateless app).
    capture_data_dir: Path = env_field("RECON_CAPTURE_DATA_DIR", default=Path("/tmp/reconciliation-capture"))
    ready_file: Path | None = env_field("READY_FILE", default=None)
    # The run (RunReconciliation) and its automatic resolutions.
    channel_gateway_target: str = env_field(
        "CHANNEL_GATEWAY_TARGET",
        default="127.0.0.1:50053",
        help="channel-gateway gRPC host:port (DownloadStatement / FetchStatement)",
    )
    payment_core_target: str = env_field(
        "PAYMENT_CORE_TARGET", default="127.0.0.1:50052", help="payment-core gRPC host:port (SyncPayment)"
    )
    accounting_target: str = env_field(
        "ACCOUNTING_TARGET",
        default="127.0.0.1:50054",
        help="accounting gRPC host:port (ReleaseFunds, PostAdjustment)",
    )
    work_dir: Path = env_field(
        "RECON_WORK_DIR",
        default=Path("/tmp/reconciliation-work"),
        help="the matcher's Parquet inputs, outcomes and DuckDB spill, one folder per channel and day",
    )
    auto_adjust_max_minor: int = env_field(
        "RECON_AUTO_ADJUST_MAX_MINOR",
        default=100,
        help="an amount or fee mismatch up to this many minor units is adjusted to suspense automatically",
    )
    open_gauge_interval_s: float = env_field(
        "RECON_OPEN_GAUGE_INTERVAL_S",
        default=30.0,
        help="how often the open-discrepancies gauge is recounted",
    )
    log_level: str = env_field("LOG_LEVEL", default="INFO")
    outbox_relay_enabled: bool = env_field("OUTBOX_RELAY_ENABLED", default=True)
    migrate_on_start: bool = env_field("MIGRATE_ON_START", default=True)
    idempotency_ttl_s: float = env_field("IDEMPOTENCY_TTL_S", default=86400.0)
    idempotency_in_progress_timeout_s: float = env_field("IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S", default=30.0)

    def __post_init__(self) -> None:
        errors: list[str] = []
        try:
            self.zones()
        except SettingsError as exc:
            errors.extend(exc.errors)
        try:
            ZoneInfo(self.default_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"RECON_DEFAULT_TIMEZONE: {self.default_timezone!r} is not an IANA time zone")
        for name, value, low, high in (
            ("RECON_SUSPENSE_WINDOW_S", self.suspense_window_s, 0, MAX_SUSPENSE_WINDOW_S),
            ("RECON_SUSPENSE_DAYS", self.suspense_days, 1, MAX_SUSPENSE_DAYS),
            ("RECON_AMOUNT_TOLERANCE_BPS", self.amount_tolerance_bps, 0, BPS_MAX),
            ("RECON_TIME_TOLERANCE_S", self.time_tolerance_s, 0, MAX_TIME_TOLERANCE_S),
            ("RECON_CAPTURE_BATCH_SIZE", self.capture_batch_size, 1, 10_000),
        ):
            if not low <= value <= high:
                errors.append(f"{name} must be {low}..{high}, got {value}")
        if not 1 <= len(self.capture_topics) <= MAX_CAPTURE_TOPICS:
            errors.append(f"RECON_CAPTURE_TOPICS needs 1..{MAX_CAPTURE_TOPICS} topics")
        if not self.capture_group:
            errors.append("RECON_CAPTURE_GROUP must not be empty")
        if not 0 <= self.auto_adjust_max_minor <= MAX_AUTO_ADJUST_MINOR:
            errors.append(
                f"RECON_AUTO_ADJUST_MAX_MINOR must be 0..{MAX_AUTO_ADJUST_MINOR}, "
                f"got {self.auto_adjust_max_minor}"
            )
        if not 0 < self.open_gauge_interval_s <= 3_600:
            errors.append(
                f"RECON_OPEN_GAUGE_INTERVAL_S must be in (0, 3600], got {self.open_gauge_interval_s}"
            )
        if self.amount_tolerance_minor < 0:
            errors.append(f"RECON_AMOUNT_TOLERANCE_MINOR must be >= 0, got {self.amount_tolerance_minor}")
        if not 0 < self.capture_batch_wait_s <= 10:
            errors.append(f"RECON_CAPTURE_BATCH_WAIT_S must be in (0, 10], got {self.capture_batch_wait_s}")
        if errors:
            raise SettingsError(errors, type(self).__qualname__)

    def zones(self) -> dict[str, ZoneInfo]:
        return parse_channel_timezones(self.channel_timezones, "RECON_CHANNEL_TIMEZONES")

    def business_days(self) -> BusinessDays:
        return BusinessDays(self.zones(), ZoneInfo(self.default_timezone))

    def match_config(self, channel: str, business_day: date) -> MatchConfig:
        """The matcher's knobs for one channel's day: the cut-off is the channel's midnight."""
        return MatchConfig(
            amount_tolerance_minor=self.amount_tolerance_minor,
            amount_tolerance_bps=self.amount_tolerance_bps,
            time_tolerance_s=self.time_tolerance_s,
            cutoff_offset_s=self.business_days().cutoff_offset_s(channel, business_day),
            suspense_window_s=self.suspense_window_s,
            suspense_max_days=self.suspense_days,
        )


@dataclass(frozen=True)
class BusinessDays:
    """Which statement day an instant belongs to, per channel: the calendar date of the instant
    in the channel's time zone (its statement closes at its local midnight)."""

    zones: dict[str, ZoneInfo]
    default: ZoneInfo

    def zone(self, channel: str) -> ZoneInfo:
        return self.zones.get(channel, self.default)

    def day_of(self, channel: str, instant: datetime) -> date:
        if instant.tzinfo is None:
            raise ValueError(f"a business day needs an aware instant, got {instant!r}")
        return instant.astimezone(self.zone(channel)).date()

    def cutoff_offset_s(self, channel: str, business_day: date) -> int:
        """Seconds from UTC midnight after `business_day` to the channel's local midnight then
        (Asia/Shanghai: -28_800), as MatchConfig.cutoff_offset_s wants it."""
        next_day = business_day + timedelta(days=1)
        offset = datetime.combine(next_day, time(0), tzinfo=self.zone(channel)).utcoffset()
        return -int(offset.total_seconds()) if offset is not None else 0
