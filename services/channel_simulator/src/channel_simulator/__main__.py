"""`python -m channel_simulator`: run the sandbox channel on SIMULATOR_HOST:SIMULATOR_PORT."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from paykit.settings import SettingsError, env_field, load_settings
from paykit.telemetry import configure_logging

from channel_simulator.app import PROTOCOLS
from channel_simulator.behaviour import Behaviour
from channel_simulator.harness import start_simulator

DEFAULT_MERCHANTS = ("SIM-MERCHANT-1", "SIM-MERCHANT-2")


@dataclass(frozen=True)
class SimulatorSettings:
    merchants: tuple[str, ...] | None = env_field(
        "SIMULATOR_MERCHANTS", default=None, help="merchant accounts, comma-separated"
    )
    # The single-account form of SIMULATOR_MERCHANTS, kept for existing deployments.
    merchant_id: str | None = env_field("SIMULATOR_MERCHANT_ID", default=None)
    secret: str = env_field(
        "SIMULATOR_SECRET", help="simpay's HMAC key, shared with the gateway", secret=True
    )
    protocols: tuple[str, ...] | None = env_field(
        "SIMULATOR_PROTOCOLS", default=None, help="protocols to enable, comma-separated (default: all)"
    )
    host: str = env_field("SIMULATOR_HOST", default="127.0.0.1")
    port: int = env_field("SIMULATOR_PORT", default=0)
    pay_delay_ms: int = env_field("SIMULATOR_PAY_DELAY_MS", default=50)
    decline_rate: float = env_field("SIMULATOR_DECLINE_RATE", default=0.0)
    ready_file: Path | None = env_field("READY_FILE", default=None)
    log_level: str = env_field("LOG_LEVEL", default="INFO")

    def __post_init__(self) -> None:
        listed = self.merchants
        if listed is not None and (not listed or len(set(listed)) != len(listed)):
            raise SettingsError(["SIMULATOR_MERCHANTS must list distinct merchant ids"], "SimulatorSettings")
        chosen = self.protocols
        if chosen is not None:
            known = PROTOCOLS.names()
            if not chosen or len(set(chosen)) != len(chosen) or not set(chosen) <= set(known):
                raise SettingsError(
                    [f"SIMULATOR_PROTOCOLS must list distinct protocols among {', '.join(known)}"],
                    "SimulatorSettings",
                )

    def merchant_ids(self) -> tuple[str, ...]:
        """SIMULATOR_MERCHANTS; else SIMULATOR_MERCHANT_ID alone; else the two default accounts."""
        if self.merchants is not None:
            return self.merchants
        if self.merchant_id is not None:
            return (self.merchant_id,)
        return DEFAULT_MERCHANTS


async def run(settings: SimulatorSettings) -> None:
    from paykit.grpckit.runner import write_ready_file

    simulator = await start_simulator(
        settings.merchant_ids(),
        settings.secret.encode(),
        Behaviour(pay_delay_ms=settings.pay_delay_ms, decline_rate=settings.decline_rate),
        host=settings.host,
        port=settings.port,
        protocols=settings.protocols,
    )
    if settings.ready_file is not None:
        write_ready_file(settings.ready_file, {"service": "channel-simulator", "http_port": simulator.port})
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await simulator.stop()


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
