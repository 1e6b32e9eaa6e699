from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from paykit.settings import MISSING, SettingsError, describe, env_field, load_settings


@dataclass(frozen=True)
class ServiceSettings:
    database_url: str = env_field(
        "ORDER_DATABASE_URL", help="the order service's PostgreSQL URL", secret=True
    )
    grpc_port: int = env_field("ORDER_GRPC_PORT", default=50051, help="gRPC listen port")
    timeout_s: float = env_field("ORDER_TIMEOUT_S", default=2.5)
    debug: bool = env_field("ORDER_DEBUG", default=False)
    data_dir: Path = env_field("ORDER_DATA_DIR", default=Path("/var/lib/order"))
    brokers: tuple[str, ...] = env_field("KAFKA_BROKERS", default=("localhost:9092",))
    region: str | None = env_field("ORDER_REGION")
    replicas: int | None = env_field("ORDER_REPLICAS", default=None)
    api_key: str = env_field("ORDER_API_KEY", default="dev-key", secret=True)


REQUIRED = {"ORDER_DATABASE_URL": "postgresql://u:p@db/order"}


def test_defaults_apply_when_variables_are_unset() -> None:
    s = load_settings(ServiceSettings, REQUIRED)
    assert s == ServiceSettings(
        database_url="postgresql://u:p@db/order",
        grpc_port=50051,
        timeout_s=2.5,
        debug=False,
        data_dir=Path("/var/lib/order"),
        brokers=("localhost:9092",),
        region=None,
        replicas=None,
        api_key="dev-key",
    )


def test_every_supported_type_is_parsed_from_the_environment() -> None:
    s = load_settings(
        ServiceSettings,
        {
            **REQUIRED,
            "ORDER_GRPC_PORT": "6000",
            "ORDER_TIMEOUT_S": "0.25",
            "ORDER_DEBUG": "yes",
            "ORDER_DATA_DIR": "/tmp/order data",
            "KAFKA_BROKERS": "k1:9092, k2:9092,,k3:9092 ",
            "ORDER_REGION": "cn-east",
            "ORDER_REPLICAS": "3",
            "ORDER_API_KEY": "s3cr3t",
        },
    )
    assert s.grpc_port == 6000
    assert s.timeout_s == 0.25
    assert s.debug is True
    assert s.data_dir == Path("/tmp/order data")
    assert s.brokers == ("k1:9092", "k2:9092", "k3:9092")
    assert s.region == "cn-east"
    assert s.replicas == 3
    assert s.api_key == "s3cr3t"


def test_str_values_are_taken_verbatim() -> None:
    s = load_settings(ServiceSettings, {"ORDER_DATABASE_URL": "  spaced value  "})
    assert s.database_url == "  spaced value  "


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True), (" on ", True),
        ("0", False), ("false", False), ("False", False), ("NO", False), ("off", False),
    ],
)  # fmt: skip
def test_bool_accepts_the_documented_spellings_case_insensitively(raw: str, expected: bool) -> None:
    assert load_settings(ServiceSettings, {**REQUIRED, "ORDER_DEBUG": raw}).debug is expected


@pytest.mark.parametrize("raw", ["2", "y", "n", "enabled", "t", "truee", "-1"])
def test_bool_rejects_anything_else_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"^ORDER_DEBUG must be a boolean") as caught:
        load_settings(ServiceSettings, {**REQUIRED, "ORDER_DEBUG": raw})
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "0x10", "1_000", "٣", "", " "])
def test_bad_int_is_reported_with_the_variable_name(raw: str) -> None:
    env = {**REQUIRED, "ORDER_REPLICAS": raw}
    if raw == "":
        # The empty string counts as unset: the optional field falls back to its default.
        assert load_settings(ServiceSettings, env).replicas is None
        return
    with pytest.raises(SettingsError, match=r"^ORDER_REPLICAS must be an integer"):
        load_settings(ServiceSettings, env)


def test_int_accepts_signs_and_surrounding_whitespace() -> None:
    assert load_settings(ServiceSettings, {**REQUIRED, "ORDER_GRPC_PORT": " -7 "}).grpc_port == -7
    assert load_settings(ServiceSettings, {**REQUIRED, "ORDER_GRPC_PORT": "+8"}).grpc_port == 8


@pytest.mark.parametrize("raw", ["nan", "inf", "-Infinity", "fast", "1,5", "1e999"])
def test_bad_float_is_reported_with_the_variable_name(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"^ORDER_TIMEOUT_S must be a"):
        load_settings(ServiceSettings, {**REQUIRED, "ORDER_TIMEOUT_S": raw})


@pytest.mark.parametrize(("raw", "expected"), [("3", 3.0), ("1e-3", 0.001), (".5", 0.5)])
def test_float_accepts_plain_and_scientific_notation(raw: str, expected: float) -> None:
    assert load_settings(ServiceSettings, {**REQUIRED, "ORDER_TIMEOUT_S": raw}).timeout_s == expected


def test_missing_required_variable_names_it_and_its_help() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(ServiceSettings, {})
    assert str(caught.value) == ("ORDER_DATABASE_URL is required (the order service's PostgreSQL URL)")
    assert caught.value.errors == ("ORDER_DATABASE_URL is required (the order service's PostgreSQL URL)",)


def test_empty_string_counts_as_unset() -> None:
    with pytest.raises(SettingsError, match="ORDER_DATABASE_URL is required"):
        load_settings(ServiceSettings, {"ORDER_DATABASE_URL": ""})
    s = load_settings(ServiceSettings, {**REQUIRED, "ORDER_GRPC_PORT": ""})
    assert s.grpc_port == 50051


def test_multiple_errors_are_reported_together() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            ServiceSettings,
            {"ORDER_GRPC_PORT": "http", "ORDER_DEBUG": "maybe", "ORDER_TIMEOUT_S": "soon"},
        )
    error = caught.value
    assert len(error.errors) == 4
    assert error.errors[0].startswith("ORDER_DATABASE_URL is required")
    assert error.errors[1].startswith("ORDER_GRPC_PORT must be an integer")
    assert error.errors[2].startswith("ORDER_TIMEOUT_S must be a number")
    assert error.errors[3].startswith("ORDER_DEBUG must be a boolean")
    message = str(error)
    assert message.startswith("4 invalid settings for ServiceSettings:")
    for variable in ("ORDER_DATABASE_URL", "ORDER_GRPC_PORT", "ORDER_TIMEOUT_S", "ORDER_DEBUG"):
        assert variable in message


def test_secret_values_never_appear_in_error_messages() -> None:
    @dataclass(frozen=True)
    class Secrets:
        pin: int = env_field("PIN", secret=True)

    with pytest.raises(SettingsError) as caught:
        load_settings(Secrets, {"PIN": "hunter2"})
    assert "hunter2" not in str(caught.value)
    assert str(caught.value) == "PIN must be an integer"


def test_bad_tuple_item_is_reported_with_its_position() -> None:
    @dataclass(frozen=True)
    class Ports:
        ports: tuple[int, ...] = env_field("PORTS", default=())

    assert load_settings(Ports, {"PORTS": "80, 443"}).ports == (80, 443)
    assert load_settings(Ports, {}).ports == ()
    with pytest.raises(SettingsError, match=r"^PORTS item 2: must be an integer"):
        load_settings(Ports, {"PORTS": "80,https"})


def test_optional_without_default_is_none_and_typing_optional_is_supported() -> None:
    @dataclass(frozen=True)
    class Opt:
        path: Optional[Path] = env_field("OPT_PATH")  # noqa: UP045
        flag: bool | None = env_field("OPT_FLAG")

    assert load_settings(Opt, {}) == Opt(path=None, flag=None)
    assert load_settings(Opt, {"OPT_PATH": "a/b", "OPT_FLAG": "off"}) == Opt(path=Path("a/b"), flag=False)
    with pytest.raises(SettingsError, match="OPT_FLAG must be a boolean"):
        load_settings(Opt, {"OPT_FLAG": "perhaps"})


def test_load_settings_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_DATABASE_URL", "postgresql://from-env")
    monkeypatch.setenv("ORDER_GRPC_PORT", "7001")
    s = load_settings(ServiceSettings)
    assert s.database_url == "postgresql://from-env"
    assert s.grpc_port == 7001


def test_required_and_defaulted_fields_can_be_declared_in_any_order() -> None:
    @dataclass(frozen=True)
    class Mixed:
        a: int = env_field("MIXED_A", default=1)
        b: str = env_field("MIXED_B")

    assert load_settings(Mixed, {"MIXED_B": "x"}) == Mixed(a=1, b="x")


def test_env_field_without_default_uses_missing_sentinel() -> None:
    @dataclass(frozen=True)
    class Req:
        x: str = env_field("X")
        y: str = env_field("Y", default="y")

    x, y = dataclasses.fields(Req)
    assert x.default is MISSING
    assert y.default == "y"
    assert x.kw_only and y.kw_only


# -- programming errors are TypeErrors, not SettingsErrors ---------------------------


def test_unsupported_field_type_is_a_type_error() -> None:
    @dataclass(frozen=True)
    class Bad:
        values: list[str] = env_field("VALUES")

    with pytest.raises(TypeError, match="unsupported settings type"):
        load_settings(Bad, {"VALUES": "a"})


def test_non_optional_union_is_a_type_error() -> None:
    @dataclass(frozen=True)
    class Bad:
        value: int | str = env_field("VALUE")

    with pytest.raises(TypeError, match=re.escape("only 'X | None' unions")):
        load_settings(Bad, {"VALUE": "1"})


def test_non_dataclass_is_a_type_error() -> None:
    class NotADataclass:
        pass

    with pytest.raises(TypeError, match="dataclass"):
        load_settings(NotADataclass, {})


def test_required_field_without_env_field_is_a_type_error() -> None:
    @dataclass(frozen=True)
    class Bad:
        plain: str

    with pytest.raises(TypeError, match="does not use env_field"):
        load_settings(Bad, {})


def test_duplicate_variable_name_is_a_type_error() -> None:
    @dataclass(frozen=True)
    class Bad:
        a: str = env_field("SAME", default="")
        b: str = env_field("SAME", default="")

    with pytest.raises(TypeError, match="reuses variable SAME"):
        load_settings(Bad, {})


def test_plain_defaulted_fields_keep_their_default() -> None:
    @dataclass(frozen=True)
    class WithPlain:
        name: str = env_field("WP_NAME", default="svc")
        version: str = "1.0"

    assert load_settings(WithPlain, {"WP_NAME": "order"}) == WithPlain(name="order", version="1.0")


# -- describe --------------------------------------------------------------------------


def test_describe_masks_secret_fields_and_renders_values_for_logging() -> None:
    s = load_settings(
        ServiceSettings,
        {**REQUIRED, "ORDER_DEBUG": "on", "KAFKA_BROKERS": "k1,k2", "ORDER_API_KEY": "s3cr3t"},
    )
    described = describe(s)
    assert described == {
        "ORDER_DATABASE_URL": "***",
        "ORDER_GRPC_PORT": "50051",
        "ORDER_TIMEOUT_S": "2.5",
        "ORDER_DEBUG": "true",
        "ORDER_DATA_DIR": "/var/lib/order",
        "KAFKA_BROKERS": "k1,k2",
        "ORDER_REGION": "None",
        "ORDER_REPLICAS": "None",
        "ORDER_API_KEY": "***",
    }
    assert "s3cr3t" not in repr(described)
    assert "postgresql" not in repr(described)


def test_describe_rejects_non_dataclass_instances() -> None:
    with pytest.raises(TypeError):
        describe(ServiceSettings)
    with pytest.raises(TypeError):
        describe({"a": 1})
