"""The sandbox's WeChat Pay keys, generated at start-up, for local use only.

WeChat Pay gives each merchant an mchid, binds it to an appid, and holds two things of the
merchant's: the public half of its API key pair (named by the API certificate's serial
number, serial_no in every request) and its APIv3 key (32 characters, which callbacks are
encrypted with). It signs its own answers and callbacks with its platform key, named in
Wechatpay-Serial by a public key id ("PUB_KEY_ID_...", WeChat Pay's platform public key mode).

The sandbox plays both sides of that set-up: it makes every key pair, keeps the public halves
it checks with, and hands the merchant's private key, the platform public key and the APIv3
key to the local gateway (credentials()). None of these keys ever signs anything outside the
sandbox, and each run makes new ones.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channel_simulator.accounts import MerchantAccount
from channel_simulator.protocols.wechatpay.signing import APIV3_KEY_CHARS

RSA_BITS: Final = 2048
RSA_PUBLIC_EXPONENT: Final = 65537
# mchids are ten digits starting with 1; the sandbox numbers its accounts from here.
MCHID_BASE: Final = 1_900_000_000
# Hex digits of an API certificate serial number (WeChat Pay's are 40).
SERIAL_HEX_CHARS: Final = 40
PLATFORM_KEY_ID_PREFIX: Final = "PUB_KEY_ID_"
PLATFORM_KEY_ID_DIGITS: Final = 28


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_BITS)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


@dataclass(frozen=True)
class PlatformKey:
    serial_no: str
    private_key: rsa.RSAPrivateKey = field(repr=False)


@dataclass(frozen=True)
class MerchantKeys:
    """One account's WeChat Pay identity. The channel checks requests with the public half of
    `private_key` only; the private half is kept to be handed to the merchant (credentials)."""

    account_id: str
    mchid: str
    appid: str
    serial_no: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    apiv3_key: str = field(repr=False)

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    @classmethod
    def generate(cls, account: MerchantAccount) -> MerchantKeys:
        return cls(
            account_id=account.merchant_id,
            mchid=str(MCHID_BASE + account.number),
            # An appid is "wx" and 16 characters.
            appid=f"wxsandbox{account.number:09d}",
            serial_no=secrets.token_hex(SERIAL_HEX_CHARS // 2).upper(),
            private_key=_new_key(),
            apiv3_key=secrets.token_hex(APIV3_KEY_CHARS // 2),
        )


class Keyring:
    """The platform key and every account's keys, by account id and by mchid."""

    def __init__(self, platform: PlatformKey, merchants: Iterable[MerchantKeys]) -> None:
        self.platform = platform
        self._by_account = {keys.account_id: keys for keys in merchants}

    @classmethod
    def generate(cls, accounts: Iterable[MerchantAccount]) -> Keyring:
        key_id = "".join(secrets.choice("0123456789") for _ in range(PLATFORM_KEY_ID_DIGITS))
        platform = PlatformKey(PLATFORM_KEY_ID_PREFIX + key_id, _new_key())
        return cls(platform, [MerchantKeys.generate(account) for account in accounts])

    def of(self, account_id: str) -> MerchantKeys:
        return self._by_account[account_id]

    def accounts(self) -> list[MerchantKeys]:
        return list(self._by_account.values())

    def credentials(self, account_id: str, api_path: str) -> dict[str, Any]:
        """What the merchant configures (the keys of channel_gateway's wechatpay account_config)."""
        keys = self.of(account_id)
        return {
            "mchid": keys.mchid,
            "appid": keys.appid,
            "merchant_serial_no": keys.serial_no,
            "merchant_private_key_pem": private_pem(keys.private_key),
            "platform_serial_no": self.platform.serial_no,
            "platform_public_key_pem": public_pem(self.platform.private_key),
            "apiv3_key": keys.apiv3_key,
            "api_path": api_path,
        }
