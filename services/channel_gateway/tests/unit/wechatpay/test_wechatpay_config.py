"""The stored WeChat Pay account config: checked at build, errors name keys and never show them;
the registry knows the kind; the simulator's credentials become a config; every error code in
the table has a kind."""

from __future__ import annotations

from typing import Any

import pytest
from channel_gateway.adapters.connectors.registry import FACTORIES, build_connector
from channel_gateway.adapters.connectors.wechatpay import build, errors, sandbox
from channel_gateway.adapters.connectors.wechatpay.connector import WechatPayConnector
from channel_gateway.domain.channel import ChannelErrorKind
from cryptography.hazmat.primitives.asymmetric import rsa

from services.channel_gateway.tests.unit.wechatpay.support import (
    APIV3_KEY,
    CERT_SERIAL_INT,
    config,
    keys,
    platform_certificate_pem,
    private_pem,
    public_pem,
)

SECRETS = ("apiv3_key", "merchant_private_key_pem")


def test_the_registry_builds_a_wechatpay_connector() -> None:
    assert "wechatpay" in FACTORIES
    connector = build_connector("wx-main", "wechatpay", config())
    assert isinstance(connector, WechatPayConnector) and connector.name == "wx-main"


def _refused(cfg: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as refused:
        build_connector("wx-main", "wechatpay", cfg)
    message = str(refused.value)
    for key in SECRETS:
        if isinstance(cfg.get(key), str) and cfg[key]:
            assert cfg[key] not in message
    assert private_pem(keys().merchant) not in message and APIV3_KEY not in message
    return message


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"mchid": None, "apiv3_key": ""}, "mchid, apiv3_key"),
        ({"api_base_url": 42}, "api_base_url"),
        ({"api_base_url": "ftp://api.mch.weixin.qq.com"}, "api_base_url must be an http"),
        ({"api_base_url": "https://api.mch.weixin.qq.com?x=1"}, "api_base_url must be an http"),
        ({"apiv3_key": APIV3_KEY[:-1]}, "apiv3_key must be the 32-character"),
        ({"merchant_private_key_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
         "merchant_private_key_pem is not"),
        ({"merchant_private_key_pem": public_pem(keys().merchant)}, "merchant_private_key_pem is not"),
        ({"platform_public_key_pem": "not a key"}, "platform_public_key_pem is not a PEM"),
        ({"platform_public_key_pem": None}, "one of platform_public_key_pem, platform_certificate_pem"),
        ({"platform_certificate_pem": platform_certificate_pem()}, "exactly one of"),
        ({"mchid": '19"00'}, "mchid: only letters"),
        ({"platform_serial_no": "PUB KEY"}, "platform_serial_no: only letters"),
    ],
)  # fmt: skip
def test_bad_configs_are_refused_naming_the_key_never_its_value(changes: dict[str, Any], named: str) -> None:
    message = _refused(config(**changes))
    assert "wx-main" in message and named in message


def test_a_certificate_must_carry_the_configured_serial() -> None:
    cfg = config(platform_public_key_pem=None, platform_certificate_pem=platform_certificate_pem())
    assert "is not the serial of the certificate" in _refused(cfg)
    assert isinstance(build("wx", cfg | {"platform_serial_no": f"{CERT_SERIAL_INT:x}"}), WechatPayConnector)


def test_a_short_rsa_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert "at least 2048 bits" in _refused(config(merchant_private_key_pem=private_pem(small)))


def test_the_config_is_not_in_the_connectors_repr() -> None:
    connector = build("wx", config())
    shown = repr(connector._config)
    assert APIV3_KEY not in shown and "PRIVATE" not in shown


def test_sandbox_credentials_become_a_config_on_the_simulator() -> None:
    credentials = {k: v for k, v in config().items() if k != "api_base_url"} | {"api_path": "/wechatpay"}
    cfg = sandbox.account_config("http://127.0.0.1:8700/", credentials)
    assert cfg["api_base_url"] == "http://127.0.0.1:8700/wechatpay"
    assert {k: cfg[k] for k in sandbox.CREDENTIAL_KEYS} == {
        k: credentials[k] for k in sandbox.CREDENTIAL_KEYS
    }
    assert isinstance(build("wx-sim", cfg), WechatPayConnector)
    default = sandbox.account_config("http://sim:1", {k: credentials[k] for k in sandbox.CREDENTIAL_KEYS})
    assert default["api_base_url"] == "http://sim:1/wechatpay"
    with pytest.raises(ValueError, match="appid, apiv3_key"):
        sandbox.account_config("http://sim:1", {**credentials, "appid": "", "apiv3_key": None})
    with pytest.raises(ValueError, match="api_path"):
        sandbox.account_config("http://sim:1", {**credentials, "api_path": "wechatpay"})


def test_every_code_in_the_table_has_a_kind_and_trade_codes_are_read_by_operations() -> None:
    assert set(errors.KIND_OF_CODE.values()) <= set(ChannelErrorKind)
    trade_codes = errors.ALREADY_PAID | errors.CLOSED | errors.NOT_FOUND | errors.NUMBER_TAKEN
    assert not trade_codes & set(errors.KIND_OF_CODE)
    unknown = errors.WechatError(400, "NEVER_SEEN", "")
    assert errors.kind_of(unknown) is ChannelErrorKind.UNKNOWN_OUTCOME
    assert errors.kind_of(errors.WechatError(401, "NEVER_SEEN", "")) is ChannelErrorKind.AUTHENTICATION
    assert errors.kind_of(errors.WechatError(429, "NEVER_SEEN", "")) is ChannelErrorKind.RATE_LIMITED
    with pytest.raises(ValueError):
        errors.parse(400, b'{"message": "no code"}')
    assert (
        errors.parse(400, b'{"code": "PARAM_ERROR", "message": "' + b"x" * 999 + b'"}').message == "x" * 256
    )
