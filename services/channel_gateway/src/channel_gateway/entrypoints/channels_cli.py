"""`python -m channel_gateway.entrypoints.channels_cli`: manage channel accounts.

    new-key                                    print a fresh GATEWAY_CONFIG_KEY
    put --channel NAME --kind KIND --config FILE|-   store (or replace) an account, sealed
    list                                       channels, kinds, enabled, key id (never configs)
    disable|enable --channel NAME

Reads GATEWAY_DATABASE_URL and GATEWAY_CONFIG_KEY. The config (JSON object: ids, keys,
certificates) is checked by building the channel's connector before it is stored; it is
never printed or logged. Errors exit 2 with a message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paykit.db import create_engine_for
from sqlalchemy.orm import Session

from channel_gateway.adapters import channel_accounts
from channel_gateway.adapters.config_box import ConfigBox, ConfigKeyError, new_key
from channel_gateway.adapters.connectors.registry import FACTORIES, build_connector

CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class CliError(Exception):
    pass


def _read_config(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"--config: cannot read {source}: {exc.strerror}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--config: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(config, dict):
        raise CliError("--config: must be a JSON object")
    return config


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise CliError(f"{name} is not set")
    return value


def _box() -> ConfigBox:
    try:
        return ConfigBox.from_base64(_env("GATEWAY_CONFIG_KEY"))
    except ConfigKeyError as exc:
        raise CliError(f"GATEWAY_CONFIG_KEY: {exc}") from None


def put(channel: str, kind: str, config: dict[str, Any]) -> str:
    if not CHANNEL_NAME.match(channel):
        raise CliError(
            f"--channel: {channel!r} must be lower-case letters, digits and _ (start with a letter)"
        )
    if kind not in FACTORIES:
        raise CliError(f"--kind: unknown kind {kind!r}; known: {', '.join(sorted(FACTORIES))}")
    try:
        build_connector(channel, kind, config)  # refuses a config the connector cannot use
    except ValueError as exc:
        raise CliError(f"--config: {exc}") from None
    box = _box()
    engine = create_engine_for(_env("GATEWAY_DATABASE_URL"), application_name="channels-cli")
    try:
        with Session(engine) as session, session.begin():
            created = channel_accounts.put(session, box, channel, kind, config)
    finally:
        engine.dispose()
    return f"{'stored' if created else 'replaced'} channel {channel} ({kind}), sealed with key {box.key_id}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="channels", description="Manage channel-gateway's channel accounts."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("new-key", help="print a fresh GATEWAY_CONFIG_KEY")
    put_cmd = commands.add_parser("put", help="store or replace a channel account")
    put_cmd.add_argument("--channel", required=True)
    put_cmd.add_argument("--kind", required=True)
    put_cmd.add_argument("--config", required=True, help="JSON file, or - for stdin")
    commands.add_parser("list", help="list channel accounts (never their configs)")
    for name in ("enable", "disable"):
        commands.add_parser(name, help=f"{name} a channel account").add_argument("--channel", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "new-key":
            print(new_key())
        elif args.command == "put":
            print(put(args.channel, args.kind, _read_config(args.config)))
        else:
            print(_manage(args.command, getattr(args, "channel", "")))
    except CliError as exc:
        print(f"channels: {exc}", file=sys.stderr)
        return 2
    return 0


def _manage(command: str, channel: str) -> str:
    engine = create_engine_for(_env("GATEWAY_DATABASE_URL"), application_name="channels-cli")
    try:
        with Session(engine) as session, session.begin():
            if command == "list":
                rows = channel_accounts.listing(session)
                if not rows:
                    return "no channel accounts"
                return "\n".join(
                    f"{r.channel:<16} {r.kind:<12} {'enabled' if r.enabled else 'disabled':<9} "
                    f"key {r.key_id}  updated {r.updated_at:%Y-%m-%d %H:%M:%S}"
                    for r in rows
                )
            if not channel_accounts.set_enabled(session, channel, command == "enable"):
                raise CliError(f"--channel: no channel account {channel!r}")
            return f"{command}d channel {channel}"
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
