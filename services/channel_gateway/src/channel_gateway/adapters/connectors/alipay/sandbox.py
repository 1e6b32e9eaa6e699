"""The account config that points this connector at the channel simulator's Alipay protocol.

The simulator publishes, per sandbox Alipay app, local credentials::

    {"app_id": "...", "app_private_key_pem": "...", "alipay_public_key_pem": "...",
     "gateway_path": "/alipay/gateway.do"}

(the app's private key, the simulator's "Alipay" public key, and where its gateway listens
under the simulator's base URL). The wire behaviour it must follow is the package docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

CREDENTIAL_KEYS: Final = ("app_id", "app_private_key_pem", "alipay_public_key_pem", "gateway_path")


def account_config(simulator_url: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
    """The connector config for the simulator at `simulator_url`; ValueError naming a missing key."""
    missing = [k for k in CREDENTIAL_KEYS if not isinstance(credentials.get(k), str) or not credentials[k]]
    if missing:
        raise ValueError(f"simulator credentials need {', '.join(missing)} (non-empty text)")
    path = credentials["gateway_path"]
    if not path.startswith("/"):
        raise ValueError("gateway_path must start with '/'")
    config: dict[str, Any] = {
        "gateway_url": simulator_url.rstrip("/") + path,
        "app_id": credentials["app_id"],
        "app_private_key_pem": credentials["app_private_key_pem"],
        "alipay_public_key_pem": credentials["alipay_public_key_pem"],
    }
    seller_id = credentials.get("seller_id")
    if isinstance(seller_id, str) and seller_id:
        config["seller_id"] = seller_id
    return config
