"""WeChat Pay callbacks, built and signed the way the vendor SDK reads them, are verified,
decrypted and read by our connector; anything tampered, stale, foreign or malformed is
rejected with its reason, and a rejection leaves the connector as it was."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
from channel_gateway.adapters.connectors.wechatpay import build
from channel_gateway.adapters.connectors.wechatpay.connector import WechatPayConnector
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    NotificationRejected,
    PaymentNotification,
    RefundNotification,
)
from paykit.money import Money
from wechatpayv3.utils import aes_decrypt

from services.channel_gateway.tests.unit.wechatpay.support import (
    APIV3_KEY,
    CERT_SERIAL_INT,
    PLATFORM_SERIAL,
    Callback,
    callback,
    config,
    keys,
    platform_certificate_pem,
    refund_resource,
    sdk_core,
    sdk_signed_headers,
    transaction_resource,
)

WEBHOOK_PATH = "/webhooks/wechatpay-test"


def _connector(**changes: Any) -> WechatPayConnector:
    return build("wechatpay-test", config(**changes))


def _verify(note: Callback, connector: WechatPayConnector | None = None) -> Any:
    return (connector or _connector()).verify_notification(WEBHOOK_PATH, note.headers, note.body)


def test_an_sdk_readable_payment_callback_is_verified_decrypted_and_read() -> None:
    note = callback("TRANSACTION.SUCCESS", transaction_resource())
    # The vendor SDK accepts this callback: signature, serial and decryption are WeChat Pay's.
    sdk_view = sdk_core().callback(note.headers, note.body)
    assert sdk_view is not None and sdk_view["resource"] == json.loads(note.plaintext)

    read = _verify(note)
    assert read == PaymentNotification(
        channel_notify_id="EV-2018022511223320873",
        payment_id="pay_01JD5Q8W3K7M2N4P6R8T0V2X4Z",
        channel_trade_no="4200001234202411251234567890",
        succeeded=True,
        amount=Money(1999, "CNY"),
        occurred_at=datetime.fromisoformat("2026-11-25T18:00:05+08:00"),
    )


def test_our_resource_encryption_is_what_the_sdks_aes_decrypt_opens() -> None:
    note = callback("TRANSACTION.SUCCESS", transaction_resource())
    resource = json.loads(note.body)["resource"]
    opened = aes_decrypt(resource["nonce"], resource["ciphertext"], resource["associated_data"], APIV3_KEY)
    assert opened == note.plaintext


@pytest.mark.parametrize(("event", "status", "succeeded"), [("REFUND.SUCCESS", "SUCCESS", True),
                                                            ("REFUND.CLOSED", "CLOSED", False)])  # fmt: skip
def test_refund_callbacks_are_read_into_refund_notifications(
    event: str, status: str, succeeded: bool
) -> None:
    changes: dict[str, Any] = {"refund_status": status}
    if not succeeded:
        changes["success_time"] = None
    note = callback(event, refund_resource(**changes), original_type="refund", associated_data="refund")
    assert sdk_core().callback(note.headers, note.body) is not None
    read = _verify(note)
    assert isinstance(read, RefundNotification) and read.kind == "refund"
    assert (read.refund_id, read.payment_id, read.channel_refund_no) == (
        "rfd_01JD5QA0000000000000000000",
        "pay_01JD5Q8W3K7M2N4P6R8T0V2X4Z",
        "50300000012024112512345678901",
    )
    # The refunded amount, not the trade's total; a refund callback carries no currency: CNY.
    assert read.succeeded is succeeded and read.amount == Money(500, "CNY")
    expected_at = "2026-11-25T19:00:00+08:00" if succeeded else "2026-11-25T18:00:06+08:00"
    assert read.occurred_at == datetime.fromisoformat(expected_at)


def test_an_abnormal_refund_is_taken_but_acts_on_nothing() -> None:
    # WeChat Pay could not pay the payer back (e.g. a cancelled card): not final, not failed.
    resource = refund_resource(refund_status="ABNORMAL", success_time=None)
    note = callback("REFUND.ABNORMAL", resource, original_type="refund", associated_data="refund")
    read = _verify(note)
    assert isinstance(read, AcknowledgedOnly) and read.channel_notify_id == "EV-2018022511223320873"
    assert "rfd_01JD5QA0000000000000000000" in read.reason and "stays PROCESSING" in read.reason


def test_a_platform_certificate_serves_as_the_platform_key() -> None:
    connector = _connector(
        platform_public_key_pem=None,
        platform_certificate_pem=platform_certificate_pem(),
        platform_serial_no=f"{CERT_SERIAL_INT:X}",
    )
    note = callback("TRANSACTION.SUCCESS", transaction_resource(), serial=f"{CERT_SERIAL_INT:X}")
    assert isinstance(_verify(note, connector), PaymentNotification)
    with pytest.raises(NotificationRejected, match="Wechatpay-Serial"):
        _verify(callback("TRANSACTION.SUCCESS", transaction_resource()), connector)


def _bad(**options: Any) -> Callback:
    event = options.pop("event", "TRANSACTION.SUCCESS")
    refund = event.startswith("REFUND.")
    resource = options.pop("resource", refund_resource() if refund else transaction_resource())
    options.setdefault("original_type", "refund" if refund else "transaction")
    return callback(event, resource, **options)


def _amount(**amount: Any) -> dict[str, Any]:
    return transaction_resource(amount=amount)


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (lambda: _bad(signer=keys().rogue), "signature does not verify with the platform key"),
        (
            lambda: _bad(serial="PUB_KEY_ID_0119000001092024112500000000000002"),
            "is not our platform certificate's",
        ),
        (lambda: _bad(flip_ciphertext=True), "decrypt.*tampered"),
        (lambda: _bad(sent_associated_data="refund"), "decrypt.*tampered"),
        (lambda: _bad(apiv3_key="b" * 32), "decrypt"),
        (lambda: _bad(timestamp=int(time.time()) - 600), "stale"),
        (lambda: _bad(timestamp=int(time.time()) + 600), "stale"),
        (
            lambda: _bad(resource=_amount(total=19.99, currency="CNY")),
            "amount in wrong format.*integer count of fen",
        ),
        (
            lambda: _bad(resource=_amount(total="1999", currency="CNY")),
            "amount in wrong format.*integer count of fen",
        ),
        (lambda: _bad(resource=_amount(total=1999.0, currency="CNY")), "amount in wrong format.*integer"),
        (lambda: _bad(resource=_amount(total=True, currency="CNY")), "amount in wrong format.*integer"),
        (lambda: _bad(resource=_amount(total=-1999, currency="CNY")), "amount in wrong format.*positive"),
        (lambda: _bad(resource=_amount(total=0, currency="CNY")), "amount in wrong format.*positive"),
        (lambda: _bad(resource=_amount(total=1999, currency="USD")), "amount in wrong format.*USD"),
        (lambda: _bad(resource=_amount(total=1999, currency="cny")), "amount in wrong format.*cny"),
        (lambda: _bad(resource=transaction_resource(mchid="1900000999")), "mchid '1900000999'"),
        (lambda: _bad(resource=transaction_resource(appid="wx0000000000000000")), "appid"),
        (lambda: _bad(resource=transaction_resource(trade_state="NOTPAY")), "trade_state 'NOTPAY'"),
        (lambda: _bad(resource=transaction_resource(success_time="2026-11-25T18:00:05")), "no UTC offset"),
        (lambda: _bad(resource=transaction_resource(transaction_id="")), "transaction_id"),
        (lambda: _bad(event="TRANSACTION.REFUND"), "unknown event_type"),
        (lambda: _bad(original_type="refund"), "TRANSACTION.SUCCESS carries a 'refund' resource"),
        (
            lambda: _bad(event="REFUND.SUCCESS", original_type="transaction"),
            "carries a 'transaction' resource",
        ),
        (
            lambda: _bad(
                event="REFUND.SUCCESS", resource=refund_resource(amount={"total": 1999, "refund": 5.5})
            ),
            "amount in wrong format",
        ),
        (
            lambda: _bad(event="REFUND.SUCCESS", resource=refund_resource(refund_status="CLOSED")),
            "refund_status 'CLOSED'",
        ),
        (
            lambda: _bad(event="REFUND.ABNORMAL", resource=refund_resource(refund_status="SUCCESS")),
            "refund_status 'SUCCESS'",
        ),
    ],
)
def test_bad_callbacks_are_rejected_with_the_reason(note: Any, reason: str) -> None:
    connector = _connector()
    with pytest.raises(NotificationRejected, match=reason):
        _verify(note(), connector)
    # Nothing of the rejected callback stays behind: the next good one reads as if first.
    assert isinstance(
        _verify(callback("TRANSACTION.SUCCESS", transaction_resource()), connector), PaymentNotification
    )


def _signed_envelope(envelope: dict[str, Any]) -> Callback:
    body = json.dumps(envelope)
    return Callback(sdk_signed_headers(body), body.encode(), "")


def _envelope(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "EV-1",
        "create_time": "2026-11-25T18:00:06+08:00",
        "event_type": "TRANSACTION.SUCCESS",
        "resource_type": "encrypt-resource",
        "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": "AAAA", "nonce": "0123456789ab"},
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        (_envelope(resource_type="plain"), "not encrypt-resource"),
        (_envelope(resource=None), "malformed notification"),
        (_envelope(id=""), "malformed notification: id"),
        (_envelope(create_time="yesterday"), "malformed notification"),
        (
            _envelope(resource={"algorithm": "AEAD_SM4_GCM", "ciphertext": "AAAA", "nonce": "n"}),
            "unknown algorithm",
        ),
        (
            _envelope(resource={"algorithm": "AEAD_AES_256_GCM", "ciphertext": "%%%", "nonce": "n"}),
            "not Base64",
        ),
        ([1, 2], "malformed notification"),
    ],
)
def test_signed_but_malformed_envelopes_are_rejected(envelope: Any, reason: str) -> None:
    with pytest.raises(NotificationRejected, match=reason):
        _verify(_signed_envelope(envelope))


def test_a_replayed_callback_reads_the_same_so_downstream_deduplicates_on_its_id() -> None:
    note = callback("TRANSACTION.SUCCESS", transaction_resource())
    connector = _connector()
    assert _verify(note, connector) == _verify(note, connector)


def test_acknowledgements_follow_the_api_v3_callback_rules() -> None:
    connector = _connector()
    assert connector.acknowledgement(True) == (200, "")
    status, body = connector.acknowledgement(False)
    assert 400 <= status < 600 and json.loads(body) == {"code": "FAIL", "message": "notification rejected"}


def test_headers_may_come_in_any_case() -> None:
    note = callback("TRANSACTION.SUCCESS", transaction_resource())
    lowered = {k.lower(): v for k, v in note.headers.items()}
    assert isinstance(_connector().verify_notification(WEBHOOK_PATH, lowered, note.body), PaymentNotification)
    assert PLATFORM_SERIAL in note.headers.values()
