"""A WeChat Pay account config pointing at the channel simulator's "wechatpay" protocol.

The simulator hands out local credentials for its WeChat Pay merchant (a merchant key pair
whose public half it holds, its own platform key pair whose public half it gives us, and the
APIv3 key it encrypts callbacks with); this turns them into the config build() takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

CREDENTIAL_KEYS: Final = (
    "mchid",
    "appid",
    "merchant_serial_no",
    "merchant_private_key_pem",
    "platform_serial_no",
    "platform_public_key_pem",
    "apiv3_key",
)
DEFAULT_API_PATH: Final = "/wechatpay"


def account_config(simulator_url: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
    """The stored config of a channel on the simulator; ValueError naming missing credentials."""
    missing = [k for k in CREDENTIAL_KEYS if not isinstance(credentials.get(k), str) or not credentials[k]]
    if missing:
        raise ValueError(f"simulator credentials need {', '.join(missing)} (non-empty text)")
    api_path = credentials.get("api_path", DEFAULT_API_PATH)
    if not isinstance(api_path, str) or not api_path.startswith("/"):
        raise ValueError("simulator credentials: api_path must be a path starting with '/'")
    config: dict[str, Any] = {k: credentials[k] for k in CREDENTIAL_KEYS}
    config["api_base_url"] = simulator_url.rstrip("/") + api_path.rstrip("/")
    return config
