"""Channel accounts sealed at rest: the CLI stores and lists them, the service opens them with
its key and builds their connectors, and a wrong key or a tampered row stops the start with
the channel named."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from channel_gateway.adapters import channel_accounts
from channel_gateway.adapters.config_box import ConfigBox, ConfigKeyError, new_key
from channel_gateway.bootstrap import migrate, stored_connectors
from channel_gateway.settings import GatewaySettings
from paykit.db import create_engine_for, session_factory
from paykit.settings import SettingsError

SECRET = "s3cr3t-sandbox-key-never-in-the-database"
CONFIG = {"base_url": "http://127.0.0.1:9", "merchant_id": "SIM-MERCHANT-9", "secret": SECRET}


def cli(url: str, key: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "channel_gateway.entrypoints.channels_cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={"GATEWAY_DATABASE_URL": url, "GATEWAY_CONFIG_KEY": key, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )


def settings(url: str, key: str | None) -> GatewaySettings:
    return GatewaySettings(
        database_url=url,
        kafka_bootstrap_servers="127.0.0.1:9",
        simulator_url="http://127.0.0.1:9",
        simulator_secret="x",
        config_key=key,
    )


@pytest.fixture
def database(gw_fresh_database: Callable[[], str]) -> str:
    url = gw_fresh_database()
    migrate(url)
    return url


def test_cli_stores_a_sealed_account_the_service_opens_and_builds(database: str, tmp_path: Path) -> None:
    key = new_key()
    config_file = tmp_path / "sim.json"
    config_file.write_text(json.dumps(CONFIG))

    stored = cli(
        database, key, "put", "--channel", "sim_c", "--kind", "simulator", "--config", str(config_file)
    )
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.startswith("stored channel sim_c (simulator)")
    replaced = cli(database, key, "put", "--channel", "sim_c", "--kind", "simulator", "--config", "-",
                   stdin=json.dumps(CONFIG))  # fmt: skip
    assert replaced.stdout.startswith("replaced channel sim_c")
    listed = cli(database, key, "list")
    assert listed.returncode == 0 and "sim_c" in listed.stdout and "enabled" in listed.stdout
    assert SECRET not in stored.stdout + replaced.stdout + listed.stdout + listed.stderr

    engine = create_engine_for(database, application_name="accounts-test", pool_size=1)
    with engine.connect() as conn:
        sealed = conn.execute(sa.text("SELECT config_sealed FROM channel_accounts")).scalar_one()
    assert SECRET.encode() not in bytes(sealed) and b"SIM-MERCHANT-9" not in bytes(sealed)

    built = stored_connectors(session_factory(engine), settings(database, key))
    assert list(built) == ["sim_c"] and built["sim_c"].name == "sim_c"

    assert cli(database, key, "disable", "--channel", "sim_c").returncode == 0
    assert stored_connectors(session_factory(engine), settings(database, key)) == {}
    engine.dispose()


def test_a_wrong_key_no_key_or_a_tampered_row_stops_the_start_naming_the_channel(database: str) -> None:
    key = new_key()
    engine = create_engine_for(database, application_name="accounts-test", pool_size=1)
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        channel_accounts.put(session, ConfigBox.from_base64(key), "sim_t", "simulator", CONFIG)

    with pytest.raises(SettingsError, match=r"sim_t.*sealed with key"):
        stored_connectors(sessions, settings(database, new_key()))
    with pytest.raises(SettingsError, match="GATEWAY_CONFIG_KEY is not set"):
        stored_connectors(sessions, settings(database, None))
    with engine.begin() as conn:  # a row copied under another channel's name
        conn.execute(sa.text("UPDATE channel_accounts SET channel = 'sim_u'"))
    with pytest.raises(SettingsError, match=r"sim_u.*does not authenticate"):
        stored_connectors(sessions, settings(database, key))
    engine.dispose()


def test_cli_refuses_bad_input_with_a_message_and_stores_nothing(database: str, tmp_path: Path) -> None:
    key = new_key()
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    cases = [
        (("put", "--channel", "Bad Name", "--kind", "simulator", "--config", "-"), "--channel"),
        (("put", "--channel", "ok", "--kind", "paypal", "--config", "-"), "unknown kind 'paypal'"),
        (("put", "--channel", "ok", "--kind", "simulator", "--config", str(bad_json)), "not JSON"),
        (("put", "--channel", "ok", "--kind", "simulator", "--config", "/nonexistent"), "cannot read"),
        (("disable", "--channel", "ghost"), "no channel account 'ghost'"),
    ]
    for args, message in cases:
        done = cli(database, key, *args, stdin=json.dumps(CONFIG))
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    missing = cli(database, key, "put", "--channel", "ok", "--kind", "simulator", "--config", "-",
                  stdin=json.dumps({"base_url": "http://x"}))  # fmt: skip
    assert missing.returncode == 2 and "merchant_id, secret" in missing.stderr
    assert "http://x" not in missing.stderr
    wrong_key = cli(database, "not-base64!", "put", "--channel", "ok", "--kind", "simulator", "--config", "-",
                    stdin=json.dumps(CONFIG))  # fmt: skip
    assert wrong_key.returncode == 2 and "GATEWAY_CONFIG_KEY" in wrong_key.stderr
    assert cli(database, key, "list").stdout.strip() == "no channel accounts"


def test_config_box_refuses_short_keys_and_other_channels() -> None:
    with pytest.raises(ConfigKeyError, match="32 bytes"):
        ConfigBox(b"short")
    box = ConfigBox.from_base64(new_key())
    sealed = box.seal("alipay", {"k": "v"})
    assert box.open("alipay", box.key_id, sealed) == {"k": "v"}
    with pytest.raises(ConfigKeyError, match="does not authenticate"):
        box.open("wechatpay", box.key_id, sealed)
