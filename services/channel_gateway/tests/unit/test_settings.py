"""Which channels the gateway serves, from the environment."""

from __future__ import annotations

import pytest
from channel_gateway.settings import GatewaySettings, parse_channel_accounts
from paykit.settings import SettingsError, load_settings

REQUIRED = {
    "GATEWAY_DATABASE_URL": "postgresql://x/y",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "SIMULATOR_URL": "http://127.0.0.1:1",
    "SIMULATOR_SECRET": "k",
}


def test_two_sandbox_channels_by_default() -> None:
    settings = load_settings(GatewaySettings, REQUIRED)
    assert settings.simulator_accounts() == {"simulator": "SIM-MERCHANT-1", "simulator_b": "SIM-MERCHANT-2"}


def test_simulator_merchant_id_alone_is_the_one_channel_simulator() -> None:
    settings = load_settings(GatewaySettings, {**REQUIRED, "SIMULATOR_MERCHANT_ID": "OLD-1"})
    assert settings.simulator_accounts() == {"simulator": "OLD-1"}


def test_simulator_channels_names_every_channel() -> None:
    env = {**REQUIRED, "SIMULATOR_CHANNELS": " a = M1 , b=M2,", "SIMULATOR_MERCHANT_ID": "ignored"}
    assert load_settings(GatewaySettings, env).simulator_accounts() == {"a": "M1", "b": "M2"}


@pytest.mark.parametrize("text", ["a", "a=", "=M1", "a=M1,a=M2", ","])
def test_malformed_channel_list_stops_the_start_naming_the_variable(text: str) -> None:
    with pytest.raises(ValueError):
        parse_channel_accounts(text)
    with pytest.raises(SettingsError, match="SIMULATOR_CHANNELS"):
        load_settings(GatewaySettings, {**REQUIRED, "SIMULATOR_CHANNELS": text})


@pytest.mark.parametrize(
    ("key", "reason"), [("not base64!", "not valid base64"), ("c2hvcnQ=", "must be 32 bytes")]
)
def test_a_malformed_config_key_stops_the_start_without_showing_it(key: str, reason: str) -> None:
    with pytest.raises(SettingsError, match="GATEWAY_CONFIG_KEY") as caught:
        load_settings(GatewaySettings, {**REQUIRED, "GATEWAY_CONFIG_KEY": key})
    assert reason in str(caught.value) and key not in str(caught.value)
