"""Which merchant accounts the sandbox opens, from the environment."""

from __future__ import annotations

import pytest
from channel_simulator.__main__ import DEFAULT_MERCHANTS, SimulatorSettings
from paykit.settings import SettingsError, load_settings

SECRET = {"SIMULATOR_SECRET": "k"}


def test_two_merchant_accounts_by_default() -> None:
    assert load_settings(SimulatorSettings, SECRET).merchant_ids() == DEFAULT_MERCHANTS
    assert DEFAULT_MERCHANTS == ("SIM-MERCHANT-1", "SIM-MERCHANT-2")


def test_simulator_merchants_lists_the_accounts() -> None:
    env = {**SECRET, "SIMULATOR_MERCHANTS": "A, B ,C"}
    assert load_settings(SimulatorSettings, env).merchant_ids() == ("A", "B", "C")


def test_simulator_merchant_id_alone_is_a_one_account_list() -> None:
    env = {**SECRET, "SIMULATOR_MERCHANT_ID": "OLD-1"}
    assert load_settings(SimulatorSettings, env).merchant_ids() == ("OLD-1",)


def test_repeated_merchant_is_a_configuration_error() -> None:
    with pytest.raises(SettingsError, match="SIMULATOR_MERCHANTS"):
        load_settings(SimulatorSettings, {**SECRET, "SIMULATOR_MERCHANTS": "A,A"})


def test_every_registered_protocol_is_enabled_unless_simulator_protocols_names_some() -> None:
    assert load_settings(SimulatorSettings, SECRET).protocols is None
    chosen = load_settings(SimulatorSettings, {**SECRET, "SIMULATOR_PROTOCOLS": "simpay"})
    assert chosen.protocols == ("simpay",)


@pytest.mark.parametrize("listed", ["simpay,nope", "simpay,simpay"])
def test_an_unknown_or_repeated_protocol_is_a_configuration_error(listed: str) -> None:
    with pytest.raises(SettingsError, match="SIMULATOR_PROTOCOLS"):
        load_settings(SimulatorSettings, {**SECRET, "SIMULATOR_PROTOCOLS": listed})
