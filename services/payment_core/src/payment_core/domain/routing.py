"""Choosing a channel for a payment. The skeleton routes every method to one channel."""

from __future__ import annotations

from collections.abc import Mapping

from paykit.errors import InvalidArgument
from paykit.money import Money


def choose_channel(method: str, amount: Money, routes: Mapping[str, str]) -> str:
    channel = routes.get(method)
    if channel is None:
        raise InvalidArgument("method", f"no channel takes {method!r} payments; known: {sorted(routes)}")
    return channel
