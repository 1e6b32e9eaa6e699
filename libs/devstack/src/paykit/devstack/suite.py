"""The whole suite as local processes: Postgres, Kafka, topics, databases, services, simulator.

Used by `make up` / `make demo` / `make down`, the e2e tests and the benches,
so all of them run the suite the same way. Every service binds port 0 and
reports its ports in a ready file; the suite waits for those files.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paykit.devstack.kafka import acquire_kafka
from paykit.devstack.postgres import acquire_postgres, ensure_database
from paykit.devstack.procs import pid_alive, stop_pid, tail, wait_for
from paykit.messaging.topics import create_topics

SERVICE_START_TIMEOUT_S = 60.0
SERVICE_STOP_TIMEOUT_S = 15.0
SUITE_FILE = "suite.json"
DATABASES = {
    "order": "paykit_order",
    "payment_core": "paykit_payment",
    "channel_gateway": "paykit_gateway",
    "accounting": "paykit_accounting",
    "notification": "paykit_notification",
    "reconciliation": "paykit_reconciliation",
}
# Start order: each one's dependencies are already up when it starts.
# reconciliation_capture is reconciliation's faust worker (payment/refund events -> its database),
# started after the service has migrated that database. reconciliation calls payment-core
# (SyncPayment) and accounting, so it starts after them (its capture reads from the earliest
# offset: nothing published before it starts is missed).
START_ORDER = (
    "channel_simulator", "channel_gateway", "accounting", "notification",
    "payment_core", "reconciliation", "reconciliation_capture", "order",
)  # fmt: skip
# `python -m <module> serve` for the names whose package is named otherwise.
MODULES = {"order": "order_service", "reconciliation_capture": "reconciliation.capture"}


@dataclass
class ServiceProcess:
    name: str
    module: str
    env: dict[str, str]
    ready_file: Path
    log_file: Path
    pid: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.ready_file.unlink(missing_ok=True)
        log = self.log_file.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", self.module, "serve"],
            env={**os.environ, **self.env, "READY_FILE": str(self.ready_file)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def wait_ready(self) -> dict[str, Any]:
        def ready() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail(self.log_file)}")
            return self.ready_file.exists()

        wait_for(ready, SERVICE_START_TIMEOUT_S, f"{self.name} to be ready")
        self.info = json.loads(self.ready_file.read_text())
        return self.info

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        os.kill(self.pid, sig)
        if self.popen is not None:
            self.popen.wait(SERVICE_STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.pid and pid_alive(self.pid):
            stop_pid(self.pid, SERVICE_STOP_TIMEOUT_S)
        if self.popen is not None:
            self.popen.poll()


# The local suite's channels and routing: two sandbox merchant accounts, "qr"
# split between them by weight, "wallet" at the second; and one method per real
# channel protocol the simulator plays (channel-gateway's Alipay, WeChat Pay v3 and
# card connectors, their accounts seeded from the simulator's sandbox credentials).
# Any may be overridden.
ROUTING_RULES = json.dumps(
    [
        {"method": "qr", "channels": {"simulator": 1, "simulator_b": 1}},
        {"method": "wallet", "channels": {"simulator_b": 1}},
        {"method": "alipay_qr", "channels": {"alipay": 1}},
        {"method": "wechat_native", "channels": {"wechatpay": 1}},
        {"method": "card", "channels": {"card": 1}},
    ]
)
# The method that reaches each real-channel protocol (make demo pays a round on each).
CHANNEL_METHODS = {"alipay": "alipay_qr", "wechatpay": "wechat_native", "card": "card"}
PAYMENT_METHODS = ",".join(["qr", "wallet", *CHANNEL_METHODS.values()])


@dataclass
class Suite:
    run_dir: Path
    kafka_bootstrap: str = ""
    database_urls: dict[str, str] = field(default_factory=dict)
    simulator_secret: str = ""
    # Seals channel-gateway's stored channel accounts (GATEWAY_CONFIG_KEY); one per suite.
    gateway_config_key: str = ""
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    # Per service, env given at start() that every (re)start keeps.
    base_env: dict[str, dict[str, str]] = field(default_factory=dict)
    _stops: list[Any] = field(default_factory=list)

    # -- addresses ---------------------------------------------------------
    def grpc_target(self, name: str) -> str:
        return f"127.0.0.1:{self.services[name].info['grpc_port']}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.services['channel_simulator'].info['http_port']}"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.services['channel_gateway'].info['webhook_port']}/webhooks/simulator"

    def metrics_url(self, name: str) -> str:
        """The service's Prometheus endpoint (METRICS_PORT=0: the port its ready file reports)."""
        port = self.services[name].info.get("metrics_port")
        if port is None:
            raise KeyError(f"{name} serves no metrics (no metrics_port in its ready file)")
        return f"http://127.0.0.1:{port}/metrics"

    # -- lifecycle ---------------------------------------------------------
    def start_infrastructure(self, fresh_databases: bool = False) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        postgres, stop_pg = acquire_postgres(self.run_dir)
        self._stops.append(stop_pg)
        kafka, stop_kafka = acquire_kafka(self.run_dir)
        self._stops.append(stop_kafka)
        self.kafka_bootstrap = kafka.bootstrap_servers
        create_topics(self.kafka_bootstrap)
        for service, database in DATABASES.items():
            if fresh_databases:
                drop_database(postgres.admin_url, database)
            self.database_urls[service] = ensure_database(postgres, database)

    def _env_for(self, name: str, extra: dict[str, str]) -> dict[str, str]:
        common = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "SIMULATOR_SECRET": self.simulator_secret,
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
            # Every gRPC service serves /metrics on a free loopback port (METRICS_HOST's
            # default); the simulator, an external channel's stand-in, ignores it.
            "METRICS_PORT": "0",
        }
        per_service = {
            "channel_simulator": {"SIMULATOR_PORT": "0"},
            "channel_gateway": {
                "GATEWAY_DATABASE_URL": self.database_urls.get("channel_gateway", ""),
                "GATEWAY_GRPC_LISTEN": "127.0.0.1:0",
                "GATEWAY_WEBHOOK_PORT": "0",
                "GATEWAY_CONFIG_KEY": self.gateway_config_key,
            },
            "payment_core": {
                "PAYMENT_DATABASE_URL": self.database_urls.get("payment_core", ""),
                "PAYMENT_GRPC_LISTEN": "127.0.0.1:0",
                "PAYMENT_ROUTING_RULES": ROUTING_RULES,
            },
            "accounting": {
                "ACCOUNTING_DATABASE_URL": self.database_urls.get("accounting", ""),
                "ACCOUNTING_GRPC_LISTEN": "127.0.0.1:0",
            },
            "notification": {
                "NOTIFICATION_DATABASE_URL": self.database_urls.get("notification", ""),
                "NOTIFICATION_GRPC_LISTEN": "127.0.0.1:0",
                # The local suite's merchant receivers listen on loopback over plain HTTP.
                "NOTIFICATION_ALLOW_INSECURE_URLS": "true",
            },
            "reconciliation": {
                "RECON_DATABASE_URL": self.database_urls.get("reconciliation", ""),
                "RECON_GRPC_LISTEN": "127.0.0.1:0",
                # The capture runs as its own worker here (reconciliation_capture).
                "RECON_CAPTURE_IN_PROCESS": "false",
                # The matcher's Parquet and DuckDB spill files, per run day.
                "RECON_WORK_DIR": str(self.run_dir / "reconciliation-work"),
            },
            "reconciliation_capture": {
                "RECON_DATABASE_URL": self.database_urls.get("reconciliation", ""),
                "RECON_CAPTURE_DATA_DIR": str(self.run_dir / "reconciliation-capture"),
                "MIGRATE_ON_START": "false",
            },
            "order": {
                "ORDER_DATABASE_URL": self.database_urls.get("order", ""),
                "ORDER_GRPC_LISTEN": "127.0.0.1:0",
                "ORDER_PAYMENT_METHODS": PAYMENT_METHODS,
            },
        }[name]
        deps: dict[str, str] = {}
        if name == "channel_gateway":
            deps["SIMULATOR_URL"] = self.simulator_url
        if name in ("payment_core", "accounting"):
            deps["CHANNEL_GATEWAY_TARGET"] = self.grpc_target("channel_gateway")
        if name in ("order", "reconciliation"):
            deps["PAYMENT_CORE_TARGET"] = self.grpc_target("payment_core")
        if name == "reconciliation":
            deps["CHANNEL_GATEWAY_TARGET"] = self.grpc_target("channel_gateway")
            deps["ACCOUNTING_TARGET"] = self.grpc_target("accounting")
        return {**common, **per_service, **deps, **self.base_env.get(name, {}), **extra}

    def start_service(self, name: str, extra_env: dict[str, str] | None = None) -> ServiceProcess:
        module = MODULES.get(name, name)
        previous = self.services.get(name)
        env = (
            previous.env
            if previous is not None and extra_env is None
            else self._env_for(name, extra_env or {})
        )
        if previous is not None and previous.info:
            previous.stop()
            # A restarted service keeps its ports: the others hold its address.
            env = {**env, **_pinned_ports(name, previous.info)}
        if name == "channel_gateway" and previous is None:
            self._seed_channel_accounts(env)
        proc = ServiceProcess(
            name,
            module,
            env,
            self.run_dir / f"{name}.ready.json",
            self.run_dir / "logs" / f"{name}.log",
        )
        proc.start()
        self.services[name] = proc
        proc.wait_ready()
        if name == "channel_gateway" and previous is None:
            self._register_card_webhook()
        return proc

    def start(
        self, extra_env: dict[str, dict[str, str]] | None = None, fresh_databases: bool = False
    ) -> None:
        self.simulator_secret = self.simulator_secret or secrets.token_hex(16)
        self.gateway_config_key = (
            self.gateway_config_key or base64.b64encode(secrets.token_bytes(32)).decode()
        )
        self.base_env = {name: dict(env) for name, env in (extra_env or {}).items()}
        self.start_infrastructure(fresh_databases)
        for name in START_ORDER:
            self.start_service(name)
        self.write_record()

    def _seed_channel_accounts(self, env: dict[str, str]) -> None:
        """Point channel-gateway's alipay, wechatpay and card channels at the simulator's
        protocols (its sandbox credentials, sealed in the gateway's database) before the
        gateway starts and loads them."""
        log = self.run_dir / "logs" / "channel_gateway.seed.log"
        for args in (
            ["-m", "channel_gateway", "migrate"],
            ["-m", "channel_gateway.entrypoints.sandbox_accounts", "--simulator-url", self.simulator_url],
        ):
            done = subprocess.run(
                [sys.executable, *args],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=False,
            )
            with log.open("a") as out:
                out.write(done.stdout + done.stderr)
            if done.returncode != 0:
                raise RuntimeError(f"channel-gateway {args[1]} failed:\n{done.stdout}{done.stderr}")

    def _register_card_webhook(self) -> None:
        """The card acquirer (as at Stripe) sends events to an endpoint registered on the
        account, not to a per-charge URL: register the gateway's, once its port is known.
        The gateway keeps that port across restarts (_pinned_ports)."""
        credentials = _get_json(self.simulator_url + "/v1/admin/sandbox-credentials").get("card")
        if not credentials:
            return  # the simulator does not play the card acquirer
        accounts = credentials.get("merchants", {"": credentials})
        account = accounts[sorted(accounts)[0]]  # the one channel-gateway's sandbox seeding picked
        webhook = f"http://127.0.0.1:{self.services['channel_gateway'].info['webhook_port']}/webhooks/card"
        form = urllib.parse.urlencode([("url", webhook), ("enabled_events[]", "*")]).encode()
        request = urllib.request.Request(
            f"{self.simulator_url}{account['api_path']}/v1/webhook_endpoints",
            data=form,
            headers={"Authorization": f"Bearer {account['secret_key']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def write_record(self) -> None:
        record = {
            "kafka_bootstrap": self.kafka_bootstrap,
            "database_urls": self.database_urls,
            "services": {n: {"pid": p.pid, **p.info} for n, p in self.services.items()},
        }
        (self.run_dir / SUITE_FILE).write_text(json.dumps(record, indent=2))

    def stop(self) -> None:
        for name in reversed(START_ORDER):
            proc = self.services.get(name)
            if proc is not None:
                proc.stop()
        while self._stops:
            self._stops.pop()()


def _pinned_ports(name: str, info: dict[str, Any]) -> dict[str, str]:
    if name == "channel_simulator":
        return {"SIMULATOR_PORT": str(info["http_port"])}
    if name == "reconciliation_capture":
        return {}  # a Kafka consumer: nothing listens
    listen = {
        "order": "ORDER_GRPC_LISTEN",
        "payment_core": "PAYMENT_GRPC_LISTEN",
        "channel_gateway": "GATEWAY_GRPC_LISTEN",
        "accounting": "ACCOUNTING_GRPC_LISTEN",
        "notification": "NOTIFICATION_GRPC_LISTEN",
        "reconciliation": "RECON_GRPC_LISTEN",
    }[name]
    pinned = {listen: f"127.0.0.1:{info['grpc_port']}"}
    if name == "channel_gateway":
        pinned["GATEWAY_WEBHOOK_PORT"] = str(info["webhook_port"])
    return pinned


def drop_database(admin_url: str, name: str) -> None:
    """Tests start from empty databases so their counts are exact."""
    import psycopg2

    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def stop_recorded(run_dir: Path) -> list[str]:
    """`make down`: stop what `make up` recorded, by pid, and nothing else."""
    stopped = []
    record_file = run_dir / SUITE_FILE
    if record_file.exists():
        record = json.loads(record_file.read_text())
        for name in reversed(START_ORDER):
            pid = record["services"].get(name, {}).get("pid")
            if pid and pid_alive(pid):
                stop_pid(pid, SERVICE_STOP_TIMEOUT_S)
                stopped.append(name)
        record_file.unlink()
    for infra in ("kafka", "postgres"):
        path = run_dir / f"{infra}.json"
        if path.exists():
            pid = json.loads(path.read_text()).get("pid")
            if pid and pid_alive(pid):
                stop_pid(pid, SERVICE_STOP_TIMEOUT_S)
                stopped.append(infra)
    return stopped


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        found: dict[str, Any] = json.loads(response.read())
    return found
