"""Our RSA2 signatures interoperate with alipay-sdk-python in both directions (requests,
notifications, answers), keys load in Alipay's shapes, and configs fail with the key's name,
never its value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from alipay.aop.api.util.SignatureUtils import get_sign_content, verify_with_rsa
from channel_gateway.adapters.connectors import alipay, registry
from channel_gateway.adapters.connectors.alipay import sandbox, signing, transformers
from channel_gateway.adapters.connectors.alipay.connector import AlipayConnector
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChargeCommand,
    NotificationRejected,
    PaymentNotification,
)
from paykit.money import Money

from services.channel_gateway.tests.unit.alipay.support import (
    APP_ID,
    alipay_keys,
    app_keys,
    connector_for,
    key_pair,
    pem_body,
    sdk_sign,
    sdk_verifies,
    signed_answer,
    signed_notification,
    stranger_keys,
)

NOW = datetime(2026, 3, 1, 4, 0, 0, tzinfo=UTC)  # 12:00:00 in Beijing
CHARGE = ChargeCommand(
    payment_id="pay_01HZ",
    order_id="ord_01HZ",
    amount=Money(1999, "CNY"),
    method="alipay_qr",
    subject="咖啡 & cake = 2",
    notify_url="https://gw.example/webhooks/alipay",
)


def _connector() -> AlipayConnector:
    return AlipayConnector(
        "https://openapi.alipay.com/gateway.do",
        APP_ID,
        signing.load_private_key(app_keys().sdk_private, "app_private_key_pem"),
        signing.load_public_key(alipay_keys().sdk_public, "alipay_public_key_pem"),
        seller_id="2088000000000001",
        clock=lambda: NOW,
    )


# -- requests -------------------------------------------------------------------------------


def test_our_request_signature_verifies_with_the_sdk() -> None:
    params = _connector().signed_params(transformers.charge_call(CHARGE, ""))
    assert params["timestamp"] == "2026-03-01 12:00:00"
    assert (params["sign_type"], params["charset"], params["format"], params["version"]) == (
        "RSA2",
        "utf-8",
        "JSON",
        "1.0",
    )
    unsigned = {k: v for k, v in params.items() if k != "sign"}
    # The same content the SDK builds, byte for byte, and a signature the SDK accepts.
    assert signing.sign_content(params, frozenset({"sign"})) == get_sign_content(unsigned)
    assert verify_with_rsa(app_keys().sdk_public, get_sign_content(unsigned).encode(), params["sign"])


def test_a_request_the_sdk_signed_verifies_with_our_code() -> None:
    biz = json.dumps({"out_trade_no": "pay_1", "total_amount": "0.01", "subject": "测试"}, ensure_ascii=False)
    params = {
        "app_id": APP_ID,
        "method": "alipay.trade.precreate",
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2026-03-01 12:00:00",
        "version": "1.0",
        "biz_content": biz,
    }
    signature = sdk_sign(app_keys(), get_sign_content(params))
    public = signing.load_public_key(app_keys().sdk_public, "k")
    signing.verify(public, signing.sign_content(params, frozenset({"sign"})).encode(), signature)
    with pytest.raises(signing.SignatureError):
        signing.verify(
            public, signing.sign_content({**params, "version": "2.0"}, frozenset()).encode(), signature
        )


def test_empty_parameters_are_left_out_of_the_sign_content() -> None:
    assert signing.sign_content({"b": "2", "a": "1", "c": "", "sign": "x"}, frozenset({"sign"})) == "a=1&b=2"


def test_biz_content_carries_the_amount_as_yuan_text_and_our_ids() -> None:
    params = _connector().signed_params(transformers.charge_call(CHARGE, "2088000000000001"))
    assert json.loads(params["biz_content"]) == {
        "out_trade_no": "pay_01HZ",
        "total_amount": "19.99",
        "subject": "咖啡 & cake = 2",
        "product_code": "FACE_TO_FACE_PAYMENT",
        "seller_id": "2088000000000001",
    }
    assert params["notify_url"] == "https://gw.example/webhooks/alipay"


# -- answers --------------------------------------------------------------------------------


def test_an_answer_the_sdk_signed_verifies_over_its_raw_node_text() -> None:
    # Escapes and spacing as sent: the signature covers the text, not a re-serialisation.
    node_text = (
        '{ "code" : "10000", "msg":"Success", "qr_code":"https:\\/\\/qr.alipay.com\\/x", "s":"\\u4e2d" }'
    )
    signature = sdk_sign(alipay_keys(), node_text)
    body = f'{{"alipay_trade_precreate_response":{node_text},\n "sign" : "{signature}"}}'
    answer = signing.split_answer("alipay.trade.precreate", body)
    assert answer.node_text == node_text and answer.node["qr_code"] == "https://qr.alipay.com/x"
    signing.verify_answer(signing.load_public_key(alipay_keys().public_pem, "k"), answer)


def test_a_tampered_answer_or_one_signed_by_another_key_does_not_verify() -> None:
    public = signing.load_public_key(alipay_keys().public_pem, "k")
    good = signed_answer("alipay.trade.query", {"code": "10000", "total_amount": "1.00"})
    tampered = signing.split_answer("alipay.trade.query", good.replace('"1.00"', '"9.00"'))
    with pytest.raises(signing.SignatureError, match="does not verify"):
        signing.verify_answer(public, tampered)
    foreign = signed_answer("alipay.trade.query", {"code": "10000"}, keys=stranger_keys())
    with pytest.raises(signing.SignatureError):
        signing.verify_answer(public, signing.split_answer("alipay.trade.query", foreign))
    unsigned = '{"alipay_trade_query_response":{"code":"10000"}}'
    with pytest.raises(signing.SignatureError, match="no sign"):
        signing.verify_answer(public, signing.split_answer("alipay.trade.query", unsigned))


@pytest.mark.parametrize(
    "body",
    [
        '{"alipay_trade_query_response":{"code":"10000"},"alipay_trade_query_response":{},"sign":"x"}',
        '{"alipay_trade_query_response":{"code":"10000"},"error_response":{},"sign":"x"}',
        '{"alipay_trade_close_response":{"code":"10000"},"sign":"x"}',
        '{"alipay_trade_query_response":"10000","sign":"x"}',
        '{"alipay_trade_query_response":{"code":"10000"},"sign":"x"} trailing',
        "[1]",
        "",
    ],
)
def test_answers_of_the_wrong_shape_are_unreadable(body: str) -> None:
    with pytest.raises(ValueError):
        signing.split_answer("alipay.trade.query", body)


# -- notifications --------------------------------------------------------------------------


def _notification(**changes: str) -> dict[str, str]:
    params = {
        "notify_id": "2026030100222120000012345",
        "notify_time": "2026-03-01 11:59:58",
        "notify_type": "trade_status_sync",
        "app_id": APP_ID,
        "charset": "utf-8",
        "version": "1.0",
        "out_trade_no": "pay_01HZ",
        "trade_no": "2026030122001400001234567890",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "19.99",
        "gmt_payment": "2026-03-01 11:59:57",
        "subject": "咖啡 & cake = 2",
        "seller_id": "2088000000000001",
    }
    params.update(changes)
    return params


def test_a_notification_the_sdk_signed_verifies_in_our_connector() -> None:
    body = urlencode(signed_notification(_notification())).encode()
    note = _connector().verify_notification("/webhooks/alipay", {}, body)
    assert isinstance(note, PaymentNotification) and note.succeeded
    assert (note.payment_id, note.amount) == ("pay_01HZ", Money(1999, "CNY"))
    assert note.occurred_at == datetime(2026, 3, 1, 3, 59, 57, tzinfo=UTC)


def test_our_notification_signature_rule_matches_the_sdk_content() -> None:
    # What a sandbox signing with our rule produces, the SDK verifies: same content, same key.
    params = signed_notification(_notification())
    content = signing.sign_content(params, frozenset({"sign", "sign_type"}))
    ours = signing.sign(signing.load_private_key(alipay_keys().sdk_private, "k"), content)
    assert ours == params["sign"]  # PKCS#1 v1.5 is deterministic: identical signatures
    assert sdk_verifies(alipay_keys(), content, ours)


def test_sign_type_is_outside_the_notification_signature_but_must_be_rsa2() -> None:
    params = signed_notification(_notification())
    with pytest.raises(NotificationRejected, match="sign_type"):
        _connector().verify_notification("/", {}, urlencode({**params, "sign_type": "RSA"}).encode())


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (signed_notification(_notification(), keys=stranger_keys()), "signature"),
        ({**signed_notification(_notification()), "total_amount": "1999.00"}, "signature"),
        ({**signed_notification(_notification()), "sign": ""}, "signature: no sign"),
        ({**signed_notification(_notification()), "sign": "not base64!"}, "signature: sign is not base64"),
        (signed_notification(_notification(app_id="2021999999999999")), "app_id"),
        (signed_notification(_notification(seller_id="2088999999999999")), "seller_id"),
        (signed_notification(_notification(notify_time="2026-02-28 10:59:57")), "stale notification"),
        (signed_notification(_notification(notify_time="2026-03-01 12:10:00")), "in the future"),
        (signed_notification(_notification(notify_time="2026-03-01T11:59:58")), "notify_time"),
        (signed_notification(_notification(notify_type="batch_refund_notify")), "notify_type"),
        (signed_notification(_notification(total_amount="12.345")), "amount in wrong format"),
        (signed_notification(_notification(total_amount="1e3")), "amount in wrong format"),
        (signed_notification(_notification(total_amount="19.9")), "amount in wrong format"),
        (signed_notification(_notification(total_amount="0.00")), "amount in wrong format"),
        (signed_notification(_notification(total_amount="")), "no total_amount"),
        (signed_notification(_notification(trade_status="TRADE_PENDING")), "unknown trade_status"),
        (signed_notification(_notification(gmt_payment="")), "no gmt_payment"),
        (signed_notification(_notification(out_biz_no="rfd_1")), "no refund_fee"),
    ],
)
def test_bad_notifications_are_rejected_with_the_reason(params: dict[str, str], reason: str) -> None:
    with pytest.raises(NotificationRejected, match=reason):
        _connector().verify_notification("/webhooks/alipay", {}, urlencode(params).encode())


@pytest.mark.parametrize(
    "changes",
    [
        {"trade_status": "WAIT_BUYER_PAY", "gmt_payment": ""},
        {"trade_status": "TRADE_CLOSED", "gmt_payment": "", "gmt_close": "2026-03-01 11:59:57"},
    ],
    ids=["created", "closed-unpaid"],
)
def test_a_genuine_notification_without_an_outcome_is_acknowledged_only(changes: dict[str, str]) -> None:
    body = urlencode(signed_notification(_notification(**changes))).encode()
    note = _connector().verify_notification("/webhooks/alipay", {}, body)
    assert isinstance(note, AcknowledgedOnly)
    assert note.channel_notify_id == "2026030100222120000012345"
    assert changes["trade_status"] in note.reason
    # Only a genuine one: the same body signed by a stranger is still refused.
    forged = urlencode(signed_notification(_notification(**changes), keys=stranger_keys())).encode()
    with pytest.raises(NotificationRejected, match="signature"):
        _connector().verify_notification("/webhooks/alipay", {}, forged)


def test_a_notification_repeating_a_field_is_rejected() -> None:
    body = urlencode(signed_notification(_notification())) + "&total_amount=0.01"
    with pytest.raises(NotificationRejected, match="appears twice"):
        _connector().verify_notification("/", {}, body.encode())


def test_acknowledgement_is_exactly_success_or_failure() -> None:
    assert _connector().acknowledgement(True) == (200, "success")
    assert _connector().acknowledgement(False)[1] == "failure"


# -- keys and config ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        app_keys().private_pkcs1_pem,
        app_keys().private_pkcs8_pem,
        app_keys().sdk_private,
        pem_body(app_keys().private_pkcs8_pem),
        "".join(app_keys().sdk_private.split()),
    ],
    ids=["pkcs1-pem", "pkcs8-pem", "pkcs1-bare", "pkcs8-bare", "pkcs1-one-line"],
)
def test_private_keys_load_in_every_shape_alipay_hands_out(text: str) -> None:
    key = signing.load_private_key(text, "app_private_key_pem")
    assert key.private_numbers() == app_keys().private.private_numbers()


@pytest.mark.parametrize("text", [alipay_keys().public_pem, alipay_keys().sdk_public])
def test_public_keys_load_as_pem_or_bare_base64(text: str) -> None:
    assert (
        signing.load_public_key(text, "k").public_numbers()
        == alipay_keys().private.public_key().public_numbers()
    )


def test_config_errors_name_the_key_and_never_print_it() -> None:
    config = sandbox.account_config("http://127.0.0.1:9", {
        "app_id": APP_ID, "app_private_key_pem": app_keys().sdk_private,
        "alipay_public_key_pem": alipay_keys().sdk_public, "gateway_path": "/alipay/gateway.do",
    })  # fmt: skip
    assert config["gateway_url"] == "http://127.0.0.1:9/alipay/gateway.do"
    with pytest.raises(ValueError, match="app_id, alipay_public_key_pem"):
        alipay.build("a", {**config, "app_id": "", "alipay_public_key_pem": None})
    secret = app_keys().sdk_private
    broken = secret[:200] + "!" + secret[201:]
    with pytest.raises(ValueError, match="app_private_key_pem is not") as caught:
        alipay.build("a", {**config, "app_private_key_pem": broken})
    assert secret[:40] not in str(caught.value) and secret[-40:] not in str(caught.value)
    # The app's public key where Alipay's belongs is fine for loading; a private key is not.
    with pytest.raises(ValueError, match="alipay_public_key_pem is not"):
        alipay.build("a", {**config, "alipay_public_key_pem": secret})
    weak = key_pair("weak", 1024)
    with pytest.raises(ValueError, match="1024-bit"):
        alipay.build("a", {**config, "app_private_key_pem": weak.sdk_private})
    with pytest.raises(ValueError, match="gateway_url"):
        alipay.build("a", {**config, "gateway_url": "ftp://x/gateway.do"})
    with pytest.raises(ValueError, match="gateway_path"):
        sandbox.account_config("http://x", {**config, "gateway_path": None})


def test_the_registry_builds_alipay_connectors() -> None:
    built = registry.build_connector("alipay-cn", "alipay", {**connector_config(), "seller_id": "2088"})
    assert isinstance(built, AlipayConnector) and built.name == "alipay-cn"


def connector_config() -> dict[str, str]:
    return dict(sandbox.account_config("http://127.0.0.1:9", {
        "app_id": APP_ID, "app_private_key_pem": app_keys().sdk_private,
        "alipay_public_key_pem": alipay_keys().sdk_public, "gateway_path": "/alipay/gateway.do",
    }))  # fmt: skip


def test_connector_for_builds_through_the_sandbox_config() -> None:
    assert connector_for("http://127.0.0.1:9").name == "alipay-sandbox"
