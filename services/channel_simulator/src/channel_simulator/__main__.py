"""`python -m channel_simulator`: run the sandbox channel on SIMULATOR_LISTEN."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from paykit.settings import SettingsError, env_field, load_settings
from paykit.telemetry import configure_logging

from channel_simulator.app import Behaviour, build_app


@dataclass(frozen=True)
class SimulatorSettings:
    merchant_id: str = env_field("SIMULATOR_MERCHANT_ID", default="SIM-MERCHANT-1")
    secret: str = env_field("SIMULATOR_SECRET", help="HMAC key shared with the gateway", secret=True)
    host: str = env_field("SIMULATOR_HOST", default="127.0.0.1")
    port: int = env_field("SIMULATOR_PORT", default=0)
    pay_delay_ms: int = env_field("SIMULATOR_PAY_DELAY_MS", default=50)
    decline_rate: float = env_field("SIMULATOR_DECLINE_RATE", default=0.0)
    ready_file: Path | None = env_field("READY_FILE", default=None)
    log_level: str = env_field("LOG_LEVEL", default="INFO")


async def run(settings: SimulatorSettings) -> None:
    from paykit.grpckit.runner import write_ready_file

    app = build_app(
        settings.merchant_id,
        settings.secret.encode(),
        Behaviour(pay_delay_ms=settings.pay_delay_ms, decline_rate=settings.decline_rate),
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    if settings.ready_file is not None:
        write_ready_file(settings.ready_file, {"service": "channel-simulator", "http_port": port})
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await runner.cleanup()


def main() -> int:
    try:
        settings = load_settings(SimulatorSettings)
    except SettingsError as exc:
        print(f"channel-simulator: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging("channel-simulator", settings.log_level)
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
