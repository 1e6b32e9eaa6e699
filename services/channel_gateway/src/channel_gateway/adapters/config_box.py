"""Channel account configs sealed at rest with AES-256-GCM; the key comes from the environment.

The key (GATEWAY_CONFIG_KEY: 32 bytes, base64) never touches the database: a stolen
dump holds ciphertext. Its fingerprint (key_id) is stored with each row, so a service
started with another key says so instead of failing on garbage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


class ConfigKeyError(ValueError):
    """The key is malformed, or is not the key that sealed a row."""


class ConfigBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigKeyError(f"the config key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"paykit-channel-config\0" + key).hexdigest()[:16]

    @classmethod
    def from_base64(cls, text: str) -> ConfigBox:
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigKeyError("the config key is not valid base64") from None
        return cls(key)

    def seal(self, channel: str, config: Mapping[str, Any]) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(dict(config), sort_keys=True).encode()
        return nonce + self._aead.encrypt(nonce, plain, channel.encode())

    def open(self, channel: str, key_id: str, sealed: bytes) -> dict[str, Any]:
        if key_id != self.key_id:
            raise ConfigKeyError(
                f"channel {channel!r} was sealed with key {key_id}; this service has key {self.key_id}"
            )
        try:
            plain = self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], channel.encode())
        except InvalidTag:
            raise ConfigKeyError(f"channel {channel!r}: the sealed config does not authenticate") from None
        config = json.loads(plain)
        if not isinstance(config, dict):
            raise ConfigKeyError(f"channel {channel!r}: the sealed config is not a JSON object")
        return config


def new_key() -> str:
    """A fresh key, base64 (for `channels new-key` and local set-ups)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()
