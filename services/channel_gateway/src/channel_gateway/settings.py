from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from paykit.settings import SettingsError, env_field

from channel_gateway.adapters.config_box import ConfigBox, ConfigKeyError

# Each channel is one merchant account at the sandbox: "<channel>=<merchant id>,...".
DEFAULT_SIMULATOR_CHANNELS: Final = "simulator=SIM-MERCHANT-1,simulator_b=SIM-MERCHANT-2"
# The channel name a lone SIMULATOR_MERCHANT_ID gets (the single-channel set-up before SIMULATOR_CHANNELS).
LEGACY_CHANNEL: Final = "simulator"


def parse_channel_accounts(text: str) -> dict[str, str]:
    """ "a=M1,b=M2" -> {"a": "M1", "b": "M2"}; ValueError naming the bad item."""
    accounts: dict[str, str] = {}
    for position, item in enumerate((p.strip() for p in text.split(",")), start=1):
        if not item:
            continue
        channel, sep, merchant = (part.strip() for part in item.partition("="))
        if not sep or not channel or not merchant:
            raise ValueError(f"item {position} {item!r} is not <channel>=<merchant id>")
        if channel in accounts:
            raise ValueError(f"channel {channel!r} is listed twice")
        accounts[channel] = merchant
    if not accounts:
        raise ValueError("names no channel")
    return accounts


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
    simulator_channels: str | None = env_field(
        "SIMULATOR_CHANNELS", default=None, help="sandbox channels, <channel>=<merchant id>,..."
    )
    simulator_merchant_id: str | None = env_field("SIMULATOR_MERCHANT_ID", default=None)
    simulator_secret: str = env_field(
        "SIMULATOR_SECRET", help="HMAC key shared with the sandbox", secret=True
    )
    config_key: str | None = env_field(
        "GATEWAY_CONFIG_KEY",
        default=None,
        secret=True,
        help="32 bytes, base64: seals the stored channel accounts (make one: "
        "python -m channel_gateway.entrypoints.channels_cli new-key)",
    )
    ready_file: Path | None = env_field("READY_FILE", default=None)
    log_level: str = env_field("LOG_LEVEL", default="INFO")
    migrate_on_start: bool = env_field("MIGRATE_ON_START", default=True)

    def __post_init__(self) -> None:
        if self.config_key is not None:
            try:
                ConfigBox.from_base64(self.config_key)
            except ConfigKeyError as exc:
                raise SettingsError([f"GATEWAY_CONFIG_KEY: {exc}"], "GatewaySettings") from None
        if self.simulator_channels is not None:
            try:
                parse_channel_accounts(self.simulator_channels)
            except ValueError as exc:
                raise SettingsError([f"SIMULATOR_CHANNELS {exc}"], "GatewaySettings") from None

    def simulator_accounts(self) -> dict[str, str]:
        """channel -> merchant id: SIMULATOR_CHANNELS; else SIMULATOR_MERCHANT_ID as the one
        channel "simulator"; else the two default sandbox accounts."""
        if self.simulator_channels is not None:
            return parse_channel_accounts(self.simulator_channels)
        if self.simulator_merchant_id is not None:
            return {LEGACY_CHANNEL: self.simulator_merchant_id}
        return parse_channel_accounts(DEFAULT_SIMULATOR_CHANNELS)

    def config_box(self) -> ConfigBox | None:
        return ConfigBox.from_base64(self.config_key) if self.config_key is not None else None
