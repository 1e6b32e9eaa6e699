"""WeChat Pay API v3 message security: request signatures, answer and callback verification,
callback decryption. Everything here is pure (no I/O, the clock passed in).

Sources (read, not copied):
- Request signature ("签名生成", https://pay.weixin.qq.com/wiki/doc/api_external/en/wechatpay/
  wechatpay4_0.shtml): five lines, each ending in "\\n" (the last one too):
  METHOD, URL (absolute path with query, no host), timestamp, nonce, body (empty for GET);
  SHA256withRSA (PKCS#1 v1.5) with the merchant API private key, Base64; sent as
  ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",signature="..",
  timestamp="..",serial_no=".."`` where serial_no is the merchant API certificate's serial.
- Answer and callback verification ("签名验证", https://wechatpay-api.gitbook.io/
  wechatpay-api-v3/qian-ming-zhi-nan-1/qian-ming-yan-zheng): Wechatpay-Timestamp,
  Wechatpay-Nonce, Wechatpay-Signature, Wechatpay-Serial headers; message
  "timestamp\\nnonce\\nbody\\n" (a 204's body is empty, so its last line is only "\\n"); verified
  with the platform certificate (or platform public key) whose serial is Wechatpay-Serial. The
  serial is checked first: an unknown serial means a key we do not hold, never "trust anyway".
  Wechatpay-Signature-Type, when sent, is WECHATPAY2-SHA256-RSA2048.
- Callback decryption ("如何解密证书和回调报文", https://pay.weixin.qq.com/docs/merchant/
  development/interface-rules/certificate-callback-decryption.html): resource.algorithm
  AEAD_AES_256_GCM (RFC 5116), key = the APIv3 key (32 bytes), nonce and associated_data are
  the UTF-8 bytes of the given strings, ciphertext is Base64 of ciphertext || 16-byte tag.
The vendor SDK wechatpayv3 (PyPI, utils.py: rsa_sign, rsa_verify, aes_decrypt) implements the
same algorithms; tests/unit/wechatpay proves the two agree byte for byte.

A timestamp more than TIMESTAMP_TOLERANCE_S away from our clock is refused (a replayed or
delayed message), as the WeChat Pay SDKs do with their five-minute window.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256

from channel_gateway.domain.channel import NotificationRejected

SCHEME: Final = "WECHATPAY2-SHA256-RSA2048"
TIMESTAMP_TOLERANCE_S: Final = 300
APIV3_KEY_BYTES: Final = 32
AEAD_ALGORITHM: Final = "AEAD_AES_256_GCM"
# 32 hex characters: WeChat Pay takes nonce_str up to 32 characters.
_NONCE_BYTES: Final = 16
# Our header names; lookups are case-insensitive (HTTP header names are).
TIMESTAMP_HEADER: Final = "Wechatpay-Timestamp"
NONCE_HEADER: Final = "Wechatpay-Nonce"
SIGNATURE_HEADER: Final = "Wechatpay-Signature"
SERIAL_HEADER: Final = "Wechatpay-Serial"
SIGNATURE_TYPE_HEADER: Final = "Wechatpay-Signature-Type"
SIGNED_HEADERS: Final = (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SERIAL_HEADER)


@dataclass(frozen=True)
class PlatformKey:
    """The WeChat Pay platform key we trust, and the serial that names it in Wechatpay-Serial."""

    serial_no: str
    public_key: RSAPublicKey


def new_nonce() -> str:
    return secrets.token_hex(_NONCE_BYTES).upper()


def request_message(method: str, url: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The five-line message a request signature covers; `url` is the path with its query."""
    head = f"{method}\n{url}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def answer_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The three-line message an answer's or callback's signature covers."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def sign(private_key: RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message, PKCS1v15(), SHA256())).decode("ascii")


def authorization(
    mchid: str,
    serial_no: str,
    private_key: RSAPrivateKey,
    method: str,
    url: str,
    body: bytes,
    timestamp_s: int,
    nonce: str,
) -> str:
    """The Authorization header value of one request."""
    timestamp = str(timestamp_s)
    signature = sign(private_key, request_message(method, url, timestamp, nonce, body))
    return (
        f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def header(headers: Mapping[str, str], name: str) -> str:
    """A header's value by case-insensitive name ("" when absent)."""
    found = headers.get(name)
    if found is not None:
        return found
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return ""


def has_signature(headers: Mapping[str, str]) -> bool:
    """True when the message carries any of the signature headers (then all must verify)."""
    return any(header(headers, name) for name in SIGNED_HEADERS)


def same_serial(given: str, ours: str) -> bool:
    """Certificate serials are hex numbers (compared as numbers, as WeChat Pay's SDKs do: case
    and leading zeros do not matter); platform public key ids ("PUB_KEY_ID_...") are compared
    as text."""
    if given == ours:
        return True
    try:
        return int(given, 16) == int(ours, 16)
    except ValueError:
        return False


def verify(headers: Mapping[str, str], body: bytes, platform: PlatformKey, now_s: float) -> None:
    """Check a WeChat Pay answer's or callback's signature; raises NotificationRejected with why."""
    values = [header(headers, name) for name in SIGNED_HEADERS]
    missing = [name for name, value in zip(SIGNED_HEADERS, values, strict=True) if not value]
    if missing:
        raise NotificationRejected(f"unsigned: missing {', '.join(missing)}")
    timestamp, nonce, signature, serial = values
    signature_type = header(headers, SIGNATURE_TYPE_HEADER)
    if signature_type and signature_type != SCHEME:
        raise NotificationRejected(f"unsupported {SIGNATURE_TYPE_HEADER} {signature_type[:40]!r}")
    # The serial first: a signature by a key we do not hold is no signature at all.
    if not same_serial(serial, platform.serial_no):
        raise NotificationRejected(
            f"{SERIAL_HEADER} {serial[:64]!r} is not our platform certificate's ({platform.serial_no})"
        )
    if not timestamp.isascii() or not timestamp.isdigit():
        raise NotificationRejected(f"{TIMESTAMP_HEADER} {timestamp[:20]!r} is not a Unix time in seconds")
    skew_s = abs(now_s - int(timestamp))
    if skew_s > TIMESTAMP_TOLERANCE_S:
        raise NotificationRejected(
            f"stale: {TIMESTAMP_HEADER} is {skew_s:.0f}s away from now, outside {TIMESTAMP_TOLERANCE_S}s"
        )
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotificationRejected(f"{SIGNATURE_HEADER} is not Base64") from exc
    try:
        platform.public_key.verify(
            raw_signature, answer_message(timestamp, nonce, body), PKCS1v15(), SHA256()
        )
    except InvalidSignature as exc:
        raise NotificationRejected("signature does not verify with the platform key") from exc


def decrypt(apiv3_key: bytes, nonce: str, ciphertext: str, associated_data: str) -> bytes:
    """Open an AEAD_AES_256_GCM resource; raises NotificationRejected when it does not decrypt."""
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotificationRejected("cannot decrypt resource: ciphertext is not Base64") from exc
    try:
        return AESGCM(apiv3_key).decrypt(nonce.encode(), sealed, associated_data.encode())
    except InvalidTag as exc:
        # The tag covers the ciphertext and associated_data: either was changed, or another key.
        raise NotificationRejected(
            "cannot decrypt resource with the APIv3 key: ciphertext or associated_data tampered with"
        ) from exc
    except ValueError as exc:  # e.g. a nonce of a length AES-GCM does not take
        raise NotificationRejected(f"cannot decrypt resource: {exc}") from exc
