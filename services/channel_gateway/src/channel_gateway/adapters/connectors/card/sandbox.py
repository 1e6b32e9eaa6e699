"""A card account at the channel simulator: the config `build` takes, from what the simulator
publishes for the account.

The simulator is assumed to publish, per card account, `{"secret_key", "webhook_secret",
"api_path": "/card"}`: its card protocol (the wire behaviour in this package's docstring)
served under `<simulator_url><api_path>`, with a Stripe-shaped test key ("sk_test_...", which
`build` insists on) and a webhook signing secret (Stripe's look "whsec_...", any text works).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

DEFAULT_API_PATH: Final = "/card"
# Stripe's test card that always succeeds (https://docs.stripe.com/testing).
DEFAULT_TEST_PAYMENT_METHOD: Final = "pm_card_visa"


def account_config(simulator_url: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
    """The channel account config of a simulator card account; ValueError naming what is missing."""
    missing = [
        k
        for k in ("secret_key", "webhook_secret")
        if not isinstance(credentials.get(k), str) or not credentials[k]
    ]
    if missing:
        raise ValueError(f"simulator card credentials need {', '.join(missing)} (non-empty text)")
    api_path = credentials.get("api_path") or DEFAULT_API_PATH
    if not isinstance(api_path, str) or not api_path.startswith("/"):
        raise ValueError("simulator card credentials: api_path must be a path starting with /")
    return {
        "api_base_url": simulator_url.rstrip("/") + api_path.rstrip("/"),
        "secret_key": credentials["secret_key"],
        "webhook_secret": credentials["webhook_secret"],
        "default_payment_method": credentials.get("default_payment_method") or DEFAULT_TEST_PAYMENT_METHOD,
    }
