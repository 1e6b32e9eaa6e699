"""Fixtures the e2e test modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from paykit.devstack.suite import Suite

from tests.e2e.helpers import DEFAULT_BEHAVIOUR, configure_channel


@pytest.fixture
def channel_behaviour(suite: Suite) -> Iterator[None]:
    """Tests that change the simulator's behaviour get every account's default back afterwards."""
    yield
    configure_channel(suite, **DEFAULT_BEHAVIOUR)
