"""Alipay's RSA2 (SHA256withRSA, PKCS#1 v1.5, base64) as the sandbox plays it, and its key pairs.

Sign content [Alipay OpenAPI "自行实现验签", as alipay-sdk-python's
SignatureUtils.get_sign_content builds it]: every non-empty parameter except the excluded
ones, sorted by name, ``k=v`` joined with ``&``, values as sent (URL-decoded), utf-8. A
request excludes ``sign``; a notification excludes ``sign`` and ``sign_type``. An answer is
signed over the exact text of its response node (wire.signed_answer).

Keys are made at start-up, 2048-bit like Alipay's, and published (credentials) the way
Alipay's key tool hands them out: base64 DER without PEM headers, the private key PKCS#1,
the public key X.509 SubjectPublicKeyInfo. They are the sandbox's own, for local use only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CHARSET: Final = "utf-8"
KEY_BITS: Final = 2048
PUBLIC_EXPONENT: Final = 65537
# Longer than any RSA2 signature of a 4096-bit key (684 base64 characters): refused unread.
MAX_SIGNATURE_CHARS: Final = 1024
REQUEST_UNSIGNED: Final = frozenset({"sign"})
NOTIFICATION_UNSIGNED: Final = frozenset({"sign", "sign_type"})


@dataclass(frozen=True)
class KeyPair:
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_BITS))

    @property
    def public(self) -> rsa.RSAPublicKey:
        return self.private.public_key()

    def private_text(self) -> str:
        """The private key as Alipay's key tool gives it: base64 PKCS#1 DER, no headers."""
        der = self.private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return base64.b64encode(der).decode("ascii")

    def public_text(self) -> str:
        """The public key as Alipay shows it: base64 SubjectPublicKeyInfo DER, no headers."""
        der = self.public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")


def sign_content(params: Mapping[str, str], exclude: frozenset[str]) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] != "")


def sign(private_key: rsa.RSAPrivateKey, content: str) -> str:
    signature = private_key.sign(content.encode(CHARSET), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verifies(public_key: rsa.RSAPublicKey, content: str, signature_b64: str) -> bool:
    """Whether `signature_b64` is an RSA2 signature of `content` by `public_key`'s private half."""
    if not signature_b64 or len(signature_b64) > MAX_SIGNATURE_CHARS:
        return False
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, content.encode(CHARSET), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
