"""A WeChat Pay merchant account's stored config, checked and loaded once at start.

Errors name the key and what is wrong with it, never its value: the config holds the merchant
private key and the APIv3 key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from channel_gateway.adapters.connectors.wechatpay.signing import APIV3_KEY_BYTES, PlatformKey, same_serial

REQUIRED_KEYS: Final = (
    "api_base_url",
    "mchid",
    "appid",
    "merchant_serial_no",
    "merchant_private_key_pem",
    "platform_serial_no",
    "apiv3_key",
)
# The platform's key, as a public key PEM or as its certificate PEM (either key name).
PLATFORM_KEYS: Final = ("platform_public_key_pem", "platform_certificate_pem")
# WeChat Pay API keys and certificates are RSA 2048 ("WECHATPAY2-SHA256-RSA2048").
MIN_RSA_BITS: Final = 2048
# Values that go inside the Authorization header's quotes: no quote, comma, space or control.
_HEADER_SAFE: Final = re.compile(r"[A-Za-z0-9_\-.]{1,64}")


@dataclass(frozen=True)
class WechatPayConfig:
    api_base_url: str
    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_private_key: RSAPrivateKey = field(repr=False)
    platform: PlatformKey = field(repr=False)
    apiv3_key: bytes = field(repr=False)


def _text(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    return value if isinstance(value, str) else ""


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            "api_base_url must be an http(s) URL without query, e.g. https://api.mch.weixin.qq.com"
        )
    return value.rstrip("/")


def _private_key(pem: str) -> RSAPrivateKey:
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("merchant_private_key_pem is not an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
        raise ValueError(f"merchant_private_key_pem is not an RSA key of at least {MIN_RSA_BITS} bits")
    return key


def _certificate_key(pem: bytes, name: str, serial_no: str) -> object:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise ValueError(f"{name} is not a PEM certificate") from None
    # Wechatpay-Serial names the certificate by its serial number (hex): ours must be that one.
    if not same_serial(f"{certificate.serial_number:X}", serial_no):
        raise ValueError(
            f"platform_serial_no {serial_no} is not the serial of the certificate in {name} "
            f"({certificate.serial_number:X})"
        )
    return certificate.public_key()


def _platform(config: Mapping[str, Any], serial_no: str) -> PlatformKey:
    given = [k for k in PLATFORM_KEYS if _text(config, k)]
    if len(given) != 1:
        raise ValueError(f"config needs exactly one of {', '.join(PLATFORM_KEYS)}")
    name = given[0]
    pem = _text(config, name).encode()
    public_key: object
    if b"BEGIN CERTIFICATE" in pem:
        public_key = _certificate_key(pem, name, serial_no)
    else:
        try:
            public_key = load_pem_public_key(pem)
        except ValueError:
            raise ValueError(f"{name} is not a PEM public key or certificate") from None
    if not isinstance(public_key, RSAPublicKey) or public_key.key_size < MIN_RSA_BITS:
        raise ValueError(f"{name} does not hold an RSA key of at least {MIN_RSA_BITS} bits")
    return PlatformKey(serial_no, public_key)


def load(config: Mapping[str, Any]) -> WechatPayConfig:
    """The account's config, checked; ValueError naming the missing or malformed keys."""
    missing = [k for k in REQUIRED_KEYS if not _text(config, k)]
    if missing:
        raise ValueError(f"config needs {', '.join(missing)} (non-empty text)")
    unsafe = [
        k
        for k in ("mchid", "merchant_serial_no", "platform_serial_no")
        if not _HEADER_SAFE.fullmatch(config[k])
    ]
    if unsafe:
        raise ValueError(f"{', '.join(unsafe)}: only letters, digits, '_', '-' and '.' (1-64)")
    apiv3_key = config["apiv3_key"].encode()
    if len(apiv3_key) != APIV3_KEY_BYTES:
        raise ValueError(f"apiv3_key must be the {APIV3_KEY_BYTES}-character APIv3 key (AES-256-GCM)")
    return WechatPayConfig(
        api_base_url=_base_url(config["api_base_url"]),
        mchid=config["mchid"],
        appid=config["appid"],
        merchant_serial_no=config["merchant_serial_no"],
        merchant_private_key=_private_key(config["merchant_private_key_pem"]),
        platform=_platform(config, config["platform_serial_no"]),
        apiv3_key=apiv3_key,
    )
