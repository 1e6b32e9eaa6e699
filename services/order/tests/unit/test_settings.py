"""The order service's settings: defaults, and bad values stop the start naming the variable."""

from __future__ import annotations

import pytest
from order_service.settings import OrderSettings
from paykit.settings import SettingsError, load_settings

REQUIRED = {
    "ORDER_DATABASE_URL": "postgresql://127.0.0.1/order",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "PAYMENT_CORE_TARGET": "127.0.0.1:50052",
}


def test_expiry_defaults() -> None:
    settings = load_settings(OrderSettings, REQUIRED)
    assert settings.expiry_poll_s == 1.0
    assert settings.close_retry_s == (5.0, 15.0, 60.0, 300.0)
    assert settings.close_force_after == 8


def test_close_retry_schedule_is_read_from_a_comma_separated_list() -> None:
    settings = load_settings(OrderSettings, {**REQUIRED, "ORDER_CLOSE_RETRY_S": "1, 2.5,10"})
    assert settings.close_retry_s == (1.0, 2.5, 10.0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORDER_EXPIRY_POLL_S", "0"),
        ("ORDER_EXPIRY_POLL_S", "soon"),
        ("ORDER_CLOSE_RETRY_S", "5,0"),
        ("ORDER_CLOSE_RETRY_S", ","),
        ("ORDER_CLOSE_FORCE_AFTER", "-1"),
    ],
)
def test_bad_expiry_setting_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(OrderSettings, {**REQUIRED, variable: value})
