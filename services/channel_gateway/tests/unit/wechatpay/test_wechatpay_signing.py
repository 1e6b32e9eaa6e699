"""Our WECHATPAY2-SHA256-RSA2048 signing and verification agree with the vendor SDK (wechatpayv3)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import wechatpayv3.utils
from channel_gateway.adapters.connectors.wechatpay import signing
from channel_gateway.domain.channel import NotificationRejected
from cryptography import x509

from services.channel_gateway.tests.unit.wechatpay.support import (
    CERT_SERIAL_INT,
    MCHID,
    MERCHANT_SERIAL,
    PLATFORM_SERIAL,
    keys,
    platform_certificate_pem,
    private_pem,
    public_pem,
    sdk_signed_headers,
    sdk_verifies_request,
)

NOW = 1_764_064_800
BODY = json.dumps({"appid": "wx1", "amount": {"total": 1999, "currency": "CNY"}, "description": "咖啡"})


def _platform() -> signing.PlatformKey:
    return signing.PlatformKey(PLATFORM_SERIAL, keys().platform.public_key())


def test_our_authorization_header_is_byte_for_byte_the_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    # SHA256withRSA PKCS#1 v1.5 is deterministic: same key, same message, same signature.
    monkeypatch.setattr(wechatpayv3.utils, "time", SimpleNamespace(time=lambda: float(NOW)))
    url = "/v3/pay/transactions/native"
    sdk = wechatpayv3.utils.build_authorization(
        url,
        "POST",
        MCHID,
        MERCHANT_SERIAL,
        wechatpayv3.utils.load_private_key(private_pem(keys().merchant)),
        data=BODY,
        nonce_str="5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
    )
    ours = signing.authorization(
        MCHID,
        MERCHANT_SERIAL,
        keys().merchant,
        "POST",
        url,
        BODY.encode(),
        NOW,
        "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
    )
    assert ours == sdk


def test_our_request_signature_verifies_with_the_sdks_rsa_verify() -> None:
    url = "/wechatpay/v3/pay/transactions/out-trade-no/pay_1?mchid=1900000109"
    header = signing.authorization(
        MCHID, MERCHANT_SERIAL, keys().merchant, "GET", url, b"", NOW, signing.new_nonce()
    )
    assert sdk_verifies_request("GET", url, {"Authorization": header}, "")
    # The URL line is signed: the same header for another URL, method or body does not verify.
    assert not sdk_verifies_request("GET", url.replace("pay_1", "pay_2"), {"Authorization": header}, "")
    assert not sdk_verifies_request("POST", url, {"Authorization": header}, "")
    assert not sdk_verifies_request("GET", url, {"Authorization": header}, "{}")


def test_an_answer_signed_with_the_sdks_rsa_sign_verifies_in_ours() -> None:
    headers = sdk_signed_headers(BODY, timestamp=NOW)
    signing.verify(headers, BODY.encode(), _platform(), NOW + 10)
    # Header names are case-insensitive.
    signing.verify({k.lower(): v for k, v in headers.items()}, BODY.encode(), _platform(), NOW)


def test_an_empty_204_answer_signs_an_empty_last_line() -> None:
    headers = sdk_signed_headers("", timestamp=NOW)
    signing.verify(headers, b"", _platform(), NOW)


def test_a_signature_we_make_as_the_platform_verifies_with_the_sdk() -> None:
    # The fake channel's side: our answer_message + sign equal what the SDK's rsa_verify checks.
    signature = signing.sign(keys().platform, signing.answer_message(str(NOW), "n0nce", BODY.encode()))
    public_key = wechatpayv3.utils.load_public_key(public_pem(keys().platform))
    assert wechatpayv3.utils.rsa_verify(str(NOW), "n0nce", BODY, signature, public_key)


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        ({"signer": "rogue"}, "does not verify with the platform key"),
        ({"serial": "PUB_KEY_ID_0000000000000000000000000000000000"}, "is not our platform certificate's"),
        ({"timestamp": NOW - 301}, "stale"),
        ({"timestamp": NOW + 301}, "stale"),
        ({"drop": "Wechatpay-Signature"}, "missing Wechatpay-Signature"),
        ({"drop": "Wechatpay-Serial"}, "missing Wechatpay-Serial"),
        ({"set": ("Wechatpay-Signature", "not base64!")}, "not Base64"),
        ({"set": ("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3")}, "unsupported"),
        ({"set": ("Wechatpay-Timestamp", "17e8")}, "not a Unix time"),
    ],
)
def test_answers_not_signed_by_our_platform_key_now_are_rejected(spoil: dict[str, Any], reason: str) -> None:
    headers = sdk_signed_headers(
        BODY,
        timestamp=spoil.get("timestamp", NOW),
        serial=spoil.get("serial", PLATFORM_SERIAL),
        signer=keys().rogue if spoil.get("signer") == "rogue" else None,
    )
    if "drop" in spoil:
        del headers[spoil["drop"]]
    if "set" in spoil:
        name, value = spoil["set"]
        headers[name] = value
    with pytest.raises(NotificationRejected, match=reason):
        signing.verify(headers, BODY.encode(), _platform(), NOW)


def test_a_changed_body_does_not_verify() -> None:
    headers = sdk_signed_headers(BODY, timestamp=NOW)
    with pytest.raises(NotificationRejected, match="does not verify"):
        signing.verify(headers, BODY.replace("1999", "19990").encode(), _platform(), NOW)


def test_the_serial_is_checked_before_the_signature() -> None:
    # Signed by the right key but naming another certificate: never trusted.
    headers = sdk_signed_headers(BODY, timestamp=NOW, serial="7A7A")
    with pytest.raises(NotificationRejected, match="Wechatpay-Serial '7A7A'"):
        signing.verify(headers, BODY.encode(), _platform(), NOW)


def test_certificate_serials_compare_as_hex_numbers_like_the_sdk() -> None:
    certificate = x509.load_pem_x509_certificate(platform_certificate_pem().encode())
    platform = signing.PlatformKey(f"{CERT_SERIAL_INT:X}", certificate.public_key())
    headers = sdk_signed_headers(BODY, timestamp=NOW, serial=f"{CERT_SERIAL_INT:x}")
    signing.verify(headers, BODY.encode(), platform, NOW)
    assert not signing.same_serial("PUB_KEY_ID_1", "PUB_KEY_ID_01")


def test_a_fresh_nonce_each_time() -> None:
    assert len({signing.new_nonce() for _ in range(100)}) == 100
    assert len(signing.new_nonce()) == 32
