"""The sandbox channel ("simpay", services/channel_simulator's own protocol)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channel_gateway.adapters.connectors.simulator.connector import SimulatorConnector


def build(channel: str, config: Mapping[str, Any]) -> SimulatorConnector:
    """config: {"base_url", "merchant_id", "secret"}."""
    missing = [
        k
        for k in ("base_url", "merchant_id", "secret")
        if not isinstance(config.get(k), str) or not config[k]
    ]
    if missing:
        raise ValueError(f"config needs {', '.join(missing)} (non-empty text)")
    return SimulatorConnector(
        config["base_url"], config["merchant_id"], config["secret"].encode(), name=channel
    )
