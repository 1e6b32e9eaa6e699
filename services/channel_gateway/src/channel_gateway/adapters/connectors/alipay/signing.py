"""Alipay OpenAPI signatures (sign_type RSA2: SHA256withRSA, PKCS#1 v1.5, base64).

* Requests and notifications are signed over the "sign content": every non-empty parameter
  but the excluded ones, sorted by name, joined as ``k=v`` with ``&``, values unescaped,
  encoded in the request charset (always utf-8 here). A request excludes only ``sign``; a
  notification excludes ``sign`` and ``sign_type`` (Alipay's notification verification rule).
  This is the content alipay-sdk-python builds with SignatureUtils.get_sign_content; the
  tests check both directions against that SDK.
* An answer is signed over the exact raw text of its response node (the JSON value of
  ``<method with "." as "_">_response`` or ``error_response``, from its ``{`` to its
  matching ``}``), as the SDK's DefaultAlipayClient verifies it; never over re-serialised
  JSON, which would differ in spacing, key order and escapes.

Keys are accepted as Alipay's tools hand them out (base64 DER without PEM headers: PKCS#1
or PKCS#8 private keys, X.509 SubjectPublicKeyInfo public keys) or as PEM. They are never
printed: errors name the config key only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CHARSET: Final = "utf-8"
# Alipay's RSA2 keys are 2048-bit; anything shorter is a configuration mistake.
MIN_KEY_BITS: Final = 2048
# Longer than any RSA signature we accept (4096-bit keys: 512 bytes, 684 base64 chars).
MAX_SIGNATURE_CHARS: Final = 1024
_JSON_WHITESPACE: Final = " \t\n\r"
_DECODER: Final = json.JSONDecoder()


class SignatureError(ValueError):
    """A signature that is missing, malformed or does not verify."""


# -- keys -------------------------------------------------------------------------------


def _der_or_pem(text: str) -> tuple[bytes, bool]:
    """(bytes, is_pem): PEM text as is, or bare base64 decoded to DER."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return stripped.encode(), True
    compact = "".join(stripped.split())
    return base64.b64decode(compact, validate=True), False


def load_private_key(text: str, name: str) -> rsa.RSAPrivateKey:
    """The app's private key; ValueError naming `name` (never the key) when unusable."""
    try:
        data, is_pem = _der_or_pem(text)
        key = (
            serialization.load_pem_private_key(data, password=None)
            if is_pem
            else serialization.load_der_private_key(data, password=None)
        )
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
        raise ValueError(
            f"{name} is not an unencrypted RSA private key (PEM, or base64 DER without headers)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{name} is not an RSA key (sign_type RSA2 needs RSA)")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(f"{name} is a {key.key_size}-bit key; RSA2 needs at least {MIN_KEY_BITS}")
    return key


def load_public_key(text: str, name: str) -> rsa.RSAPublicKey:
    """Alipay's public key; ValueError naming `name` when unusable."""
    try:
        data, is_pem = _der_or_pem(text)
        key = serialization.load_pem_public_key(data) if is_pem else serialization.load_der_public_key(data)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
        raise ValueError(f"{name} is not an RSA public key (PEM, or base64 DER without headers)") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"{name} is not an RSA key (sign_type RSA2 needs RSA)")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(f"{name} is a {key.key_size}-bit key; RSA2 needs at least {MIN_KEY_BITS}")
    return key


# -- sign content, sign, verify -------------------------------------------------------


def sign_content(params: Mapping[str, str], exclude: frozenset[str]) -> str:
    """Sorted ``k=v`` of every non-empty parameter not in `exclude`, joined with ``&``."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] != "")


def sign(private_key: rsa.RSAPrivateKey, content: str) -> str:
    signature = private_key.sign(content.encode(CHARSET), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> None:
    """Raise SignatureError unless `signature_b64` is Alipay's RSA2 signature of `message`."""
    if not signature_b64:
        raise SignatureError("no sign")
    if len(signature_b64) > MAX_SIGNATURE_CHARS:
        raise SignatureError("sign is too long to be an RSA2 signature")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("sign is not base64") from None
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureError("sign does not verify with the Alipay public key") from None


# -- answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedAnswer:
    """One gateway answer, split into its response node (parsed, and its raw text) and sign."""

    node_name: str
    node: dict[str, Any]
    node_text: str
    sign: str


def _skip_whitespace(text: str, index: int) -> int:
    while index < len(text) and text[index] in _JSON_WHITESPACE:
        index += 1
    return index


def top_level_members(text: str) -> dict[str, tuple[Any, str]]:
    """Each member of the top-level JSON object: name -> (value, the value's exact raw text).

    Strict: one object, no duplicate names (an answer with two response nodes or two signs
    is ambiguous, so unreadable), nothing after it.
    """
    index = _skip_whitespace(text, 0)
    if not text.startswith("{", index):
        raise ValueError("answer is not a JSON object")
    members: dict[str, tuple[Any, str]] = {}
    index = _skip_whitespace(text, index + 1)
    if text.startswith("}", index):
        index += 1
    else:
        while True:
            if not text.startswith('"', index):
                raise ValueError(f"expected a member name at offset {index}")
            name, index = _DECODER.raw_decode(text, index)
            index = _skip_whitespace(text, index)
            if not text.startswith(":", index):
                raise ValueError(f"expected ':' at offset {index}")
            start = _skip_whitespace(text, index + 1)
            value, end = _DECODER.raw_decode(text, start)
            if name in members:
                raise ValueError(f"member {name!r} appears twice")
            members[name] = (value, text[start:end])
            index = _skip_whitespace(text, end)
            if text.startswith(",", index):
                index = _skip_whitespace(text, index + 1)
                continue
            if text.startswith("}", index):
                index += 1
                break
            raise ValueError(f"expected ',' or '}}' at offset {index}")
    if _skip_whitespace(text, index) != len(text):
        raise ValueError("text after the JSON object")
    return members


def response_node_name(method: str) -> str:
    """alipay.trade.precreate -> alipay_trade_precreate_response."""
    return method.replace(".", "_") + "_response"


def split_answer(method: str, text: str) -> SignedAnswer:
    """The answer's response node and sign; ValueError when the shape is not Alipay's.

    The node is the method's own, or ``error_response`` (the gateway's answer when it refuses
    the call before the method runs), never both.
    """
    members = top_level_members(text)
    names = [n for n in (response_node_name(method), "error_response") if n in members]
    if len(names) != 1:
        raise ValueError(f"answer has {len(names)} of {response_node_name(method)} / error_response")
    node, node_text = members[names[0]]
    if not isinstance(node, dict):
        raise ValueError(f"{names[0]} is not a JSON object")
    signature = members.get("sign", ("", ""))[0]
    if not isinstance(signature, str):
        raise ValueError("sign is not a string")
    return SignedAnswer(names[0], node, node_text, signature)


def verify_answer(public_key: rsa.RSAPublicKey, answer: SignedAnswer) -> None:
    """Raise SignatureError unless the node's raw text carries Alipay's signature."""
    verify(public_key, answer.node_text.encode(CHARSET), answer.sign)
