"""Which factory builds a connector of each channel kind, from its stored account config.

One line per channel package. A factory raises ValueError naming the config key that is
missing or malformed (never its value: configs hold keys).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from channel_gateway.adapters.connectors import alipay, card, simulator, wechatpay
from channel_gateway.adapters.connectors.base import ChannelConnector

ConnectorFactory = Callable[[str, Mapping[str, Any]], ChannelConnector]

FACTORIES: dict[str, ConnectorFactory] = {
    "alipay": alipay.build,
    "card": card.build,
    "simulator": simulator.build,
    "wechatpay": wechatpay.build,
}


def build_connector(channel: str, kind: str, config: Mapping[str, Any]) -> ChannelConnector:
    factory = FACTORIES.get(kind)
    if factory is None:
        raise ValueError(f"channel {channel!r}: unknown kind {kind!r}; known: {sorted(FACTORIES)}")
    try:
        return factory(channel, config)
    except ValueError as exc:
        raise ValueError(f"channel {channel!r} ({kind}): {exc}") from None
