"""WeChat Pay API v3 message security, the channel's side: checking merchants' requests, signing
answers and callbacks, encrypting callback resources. Pure: no I/O, the clock passed in.

WeChat Pay's own rules (the same documents the gateway's connector cites in its signing.py):
- A request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",
  signature="..",timestamp="..",serial_no=".."``; the signature is Base64 SHA256withRSA
  (PKCS#1 v1.5) by the merchant's API private key over five lines, each ending in "\\n":
  METHOD, the URL's path with its query exactly as sent, timestamp, nonce_str, body (empty
  for GET). The channel checks it with the merchant public key that serial_no names.
- An answer or callback carries Wechatpay-Timestamp, -Nonce, -Serial (the platform key's id),
  -Signature-Type and -Signature: Base64 SHA256withRSA by the platform private key over
  "timestamp\\nnonce\\nbody\\n".
- A callback's resource is AEAD_AES_256_GCM with the merchant's 32-character APIv3 key, a
  12-character nonce and the associated data as UTF-8 bytes; ciphertext is Base64 of
  ciphertext || 16-byte tag.

This is written apart from the gateway's connector on purpose: the simulator is the other
party, and a shared implementation would let one mistake pass on both sides unseen.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256

SCHEME: Final = "WECHATPAY2-SHA256-RSA2048"
# WeChat Pay refuses a request whose timestamp is more than five minutes from its clock.
TIMESTAMP_TOLERANCE_S: Final = 300
AEAD_ALGORITHM: Final = "AEAD_AES_256_GCM"
APIV3_KEY_CHARS: Final = 32
# nonce_str is at most 32 characters (WeChat Pay's request signing rules).
MAX_NONCE_CHARS: Final = 32
# The Authorization header of a well-formed request is a few hundred characters.
MAX_AUTHORIZATION_CHARS: Final = 2_048
# Callback resources carry a 12-character nonce (AES-GCM's 96-bit IV, as text).
RESOURCE_NONCE_CHARS: Final = 12
_ANSWER_NONCE_BYTES: Final = 16
_PARAM: Final = re.compile(r'(\w+)="([^"]*)"')
_FIELDS: Final = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")


class AuthorizationError(ValueError):
    """A request whose Authorization header is missing, malformed or does not verify."""


@dataclass(frozen=True)
class Authorization:
    mchid: str
    nonce_str: str
    signature: str
    timestamp: str
    serial_no: str


def parse_authorization(value: str) -> Authorization:
    """The header's fields; AuthorizationError when it is not WeChat Pay's scheme."""
    if not value:
        raise AuthorizationError("no Authorization header")
    if len(value) > MAX_AUTHORIZATION_CHARS:
        raise AuthorizationError(f"Authorization longer than {MAX_AUTHORIZATION_CHARS} characters")
    scheme, _, params = value.partition(" ")
    if scheme != SCHEME:
        raise AuthorizationError(f"Authorization scheme is not {SCHEME}")
    found = dict(_PARAM.findall(params))
    missing = [name for name in _FIELDS if not found.get(name)]
    if missing:
        raise AuthorizationError(f"Authorization lacks {', '.join(missing)}")
    return Authorization(*(found[name] for name in _FIELDS))


def request_message(method: str, url: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{url}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def answer_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def sign(private_key: RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message, PKCS1v15(), SHA256())).decode("ascii")


def check_request(
    auth: Authorization,
    public_key: RSAPublicKey,
    serial_no: str,
    method: str,
    url: str,
    body: bytes,
    now_s: float,
) -> None:
    """Raises AuthorizationError with the reason a request's signature is not the merchant's."""
    # Certificate serials are hex: case does not matter, as at WeChat Pay.
    if auth.serial_no.upper() != serial_no.upper():
        raise AuthorizationError("serial_no names no API certificate of this merchant")
    if len(auth.nonce_str) > MAX_NONCE_CHARS:
        raise AuthorizationError(f"nonce_str longer than {MAX_NONCE_CHARS} characters")
    if not auth.timestamp.isascii() or not auth.timestamp.isdigit():
        raise AuthorizationError("timestamp is not Unix seconds")
    if abs(now_s - int(auth.timestamp)) > TIMESTAMP_TOLERANCE_S:
        raise AuthorizationError(f"timestamp is more than {TIMESTAMP_TOLERANCE_S}s from the channel's clock")
    try:
        signature = base64.b64decode(auth.signature, validate=True)
    except (binascii.Error, ValueError):
        raise AuthorizationError("signature is not Base64") from None
    message = request_message(method, url, auth.timestamp, auth.nonce_str, body)
    try:
        public_key.verify(signature, message, PKCS1v15(), SHA256())
    except InvalidSignature:
        raise AuthorizationError("signature does not verify with the merchant's public key") from None


def signed_headers(private_key: RSAPrivateKey, serial_no: str, body: bytes, now_s: float) -> dict[str, str]:
    """The Wechatpay-* headers of an answer or a callback whose body is `body`."""
    timestamp = str(int(now_s))
    nonce = secrets.token_hex(_ANSWER_NONCE_BYTES).upper()
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial_no,
        "Wechatpay-Signature-Type": SCHEME,
        "Wechatpay-Signature": sign(private_key, answer_message(timestamp, nonce, body)),
    }


@dataclass(frozen=True)
class Sealed:
    """An encrypted callback resource's fields."""

    ciphertext: str
    nonce: str
    associated_data: str


def seal(apiv3_key: str, plaintext: bytes, associated_data: str) -> Sealed:
    """AEAD_AES_256_GCM with a fresh nonce; the key, nonce and associated data as UTF-8 bytes."""
    nonce = secrets.token_hex(RESOURCE_NONCE_CHARS // 2)
    sealed = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return Sealed(base64.b64encode(sealed).decode("ascii"), nonce, associated_data)
