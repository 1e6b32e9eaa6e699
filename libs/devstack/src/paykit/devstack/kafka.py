"""A Kafka broker for tests and demos.

acquire_kafka() prefers, in order: an explicit cluster (KAFKA_BOOTSTRAP_SERVERS),
a Docker container (testcontainers, KRaft), and finally a single-node KRaft broker
run straight from the jars that deploy/kafka/pom.xml resolves (no Kafka install).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from paykit.devstack.procs import (
    LOCALHOST,
    docker_available,
    free_port,
    import_first,
    pid_alive,
    port_open,
    process_cmdline,
    stop_pid,
    tail,
    wait_for,
)

ENV_BOOTSTRAP_SERVERS = "KAFKA_BOOTSTRAP_SERVERS"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
KAFKA_POM = pathlib.Path("deploy/kafka/pom.xml")
DEPENDENCY_DIR = pathlib.Path("deploy/kafka/target/dependency")
BROKER_JAR_GLOB = "kafka_2.13-*.jar"
MVN_COPY_ARGS = ["-q", "-B", "dependency:copy-dependencies", "-DincludeScope=runtime"]
BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
NODE_ID = 1
# Small heap: a single test broker holds little data, and the box has 2 cores and
# other services to run.
JVM_HEAP_ARGS = ["-Xms256m", "-Xmx512m"]

# JVM start + KRaft self-election + metadata load; ~5 s here, more on a busy CI box.
KAFKA_START_TIMEOUT_S = 60.0
KAFKA_STOP_TIMEOUT_S = 20.0
# One metadata request inside the readiness loop.
LIST_TOPICS_TIMEOUT_S = 2.0
# `kafka-storage format` is a short JVM run.
FORMAT_TIMEOUT_S = 60.0
# Resolving the broker jars; ~5 s with a warm ~/.m2, minutes on a cold one.
MVN_TIMEOUT_S = 600.0
# free_port() can hand out the same port twice in a row; retry a few times.
MAX_PORT_PICKS = 10

# Single-node settings: every internal topic must fit on one broker, and tests
# want deterministic topics (no auto-creation) and no rebalance delay.
BROKER_SETTINGS: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": str(NODE_ID),
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    # Fewer internal partitions: the first consumer group / transactional producer
    # otherwise waits for 50 partitions to be created.
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
    "num.partitions": "3",
}

# Console only (stdout is redirected to broker.log); INFO for start/stop
# milestones, WARN for everything else to keep the log small.
LOG4J2_PROPERTIES = """\
status = error
name = paykit-broker
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
"""

StopFn = Callable[[], None]


@dataclass(frozen=True)
class KafkaServer:
    bootstrap_servers: str  # "127.0.0.1:PORT"


def acquire_kafka(run_dir: pathlib.Path) -> tuple[KafkaServer, StopFn]:
    """A running broker plus a function that stops it (if we started it)."""
    bootstrap = os.environ.get(ENV_BOOTSTRAP_SERVERS)
    if bootstrap:
        return KafkaServer(bootstrap_servers=bootstrap), _noop
    if docker_available():
        return _start_container()
    return _start_local_broker(run_dir)


def kafka_classpath() -> str:
    """Java classpath for the broker jars, resolving them with Maven on first use."""
    root = _repo_root()
    dependency_dir = root / DEPENDENCY_DIR
    if not any(dependency_dir.glob(BROKER_JAR_GLOB)):
        _resolve_jars(root)
    # A classpath wildcard: the JVM expands it to every jar in the directory.
    return str(dependency_dir / "*")


def _noop() -> None:
    """Stop function for brokers someone else owns."""


# --- Docker -------------------------------------------------------------------------


def _start_container() -> tuple[KafkaServer, StopFn]:
    container_cls = import_first(["testcontainers.community.kafka", "testcontainers.kafka"], "KafkaContainer")
    container: Any = container_cls(KAFKA_IMAGE).with_kraft()
    # Same behaviour as the local broker where it matters to tests.
    container.with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    container.with_env("KAFKA_NUM_PARTITIONS", BROKER_SETTINGS["num.partitions"])
    container.with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
    container.with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
    container.start()
    bootstrap: str = container.get_bootstrap_server()

    def stop() -> None:
        container.stop()

    return KafkaServer(bootstrap_servers=bootstrap), stop


# --- Jars and Java ------------------------------------------------------------------


def _repo_root() -> pathlib.Path:
    here = pathlib.Path(__file__).resolve()
    for candidate in here.parents:
        if (candidate / KAFKA_POM).is_file():
            return candidate
    raise RuntimeError(f"no {KAFKA_POM} in any parent of {here}; is this a repo checkout?")


def _resolve_jars(root: pathlib.Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed to fetch the Kafka jars; run deploy/install-deps.sh")
    cmd = [mvn, "-f", str(root / KAFKA_POM), *MVN_COPY_ARGS]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    if not any((root / DEPENDENCY_DIR).glob(BROKER_JAR_GLOB)):
        raise RuntimeError(f"mvn succeeded but no {BROKER_JAR_GLOB} in {root / DEPENDENCY_DIR}")


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (pathlib.Path(java_home) / "bin" / "java").is_file():
        return str(pathlib.Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("java not found (JAVA_HOME or PATH); run deploy/install-deps.sh")
    return found


# --- Local broker -------------------------------------------------------------------


@dataclass(frozen=True)
class _BrokerFiles:
    home: pathlib.Path  # run_dir/kafka

    @property
    def properties(self) -> pathlib.Path:
        return self.home / "server.properties"

    @property
    def log4j(self) -> pathlib.Path:
        return self.home / "log4j2.properties"

    @property
    def log(self) -> pathlib.Path:
        return self.home / "broker.log"

    @property
    def data(self) -> pathlib.Path:
        return self.home / "data"


def _start_local_broker(run_dir: pathlib.Path) -> tuple[KafkaServer, StopFn]:
    files = _BrokerFiles(home=run_dir / "kafka")
    files.home.mkdir(parents=True, exist_ok=True)
    record = run_dir / "kafka.json"
    _stop_leftover_broker(record, files)
    java, classpath = _java(), kafka_classpath()
    broker_port, controller_port = _two_free_ports()
    _write_config(files, broker_port, controller_port)
    _format_storage(files, java, classpath)
    proc = _launch(files, java, classpath)
    record.write_text(json.dumps({"pid": proc.pid, "properties": str(files.properties)}) + "\n")
    server = KafkaServer(bootstrap_servers=f"{LOCALHOST}:{broker_port}")
    try:
        _wait_until_ready(proc, files, broker_port, server.bootstrap_servers)
    except BaseException:
        _stop_broker(proc, record)
        raise
    return server, lambda: _stop_broker(proc, record)


def _two_free_ports() -> tuple[int, int]:
    for _ in range(MAX_PORT_PICKS):
        broker, controller = free_port(), free_port()
        if broker != controller:
            return broker, controller
    raise RuntimeError("could not find two distinct free ports")


def _is_our_broker(pid: int, files: _BrokerFiles) -> bool:
    # Guards against pid reuse: only a JVM running our main class on our config.
    cmdline = process_cmdline(pid)
    return BROKER_MAIN in cmdline and str(files.properties) in cmdline


def _stop_leftover_broker(record: pathlib.Path, files: _BrokerFiles) -> None:
    """A broker from an earlier run that never called stop() would hold the data dir."""
    try:
        pid = int(json.loads(record.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if pid_alive(pid) and _is_our_broker(pid, files):
        stop_pid(pid, KAFKA_STOP_TIMEOUT_S)
    record.unlink()


def _write_config(files: _BrokerFiles, broker_port: int, controller_port: int) -> None:
    settings = {
        **BROKER_SETTINGS,
        "listeners": (f"PLAINTEXT://{LOCALHOST}:{broker_port},CONTROLLER://{LOCALHOST}:{controller_port}"),
        "advertised.listeners": f"PLAINTEXT://{LOCALHOST}:{broker_port}",
        # Dynamic quorum (KIP-853): `format --standalone` requires bootstrap.servers
        # and rejects controller.quorum.voters.
        "controller.quorum.bootstrap.servers": f"{LOCALHOST}:{controller_port}",
        "log.dirs": str(files.data),
    }
    lines = [f"{key}={value}" for key, value in settings.items()]
    files.properties.write_text("\n".join(lines) + "\n")
    files.log4j.write_text(LOG4J2_PROPERTIES)


def _cluster_id() -> str:
    """What `kafka-storage random-uuid` prints, without paying for a JVM start."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Kafka's Uuid.randomUuid() also skips ids starting with "-": CLIs would
        # read them as options.
        if not text.startswith("-"):
            return text


def _jvm_log_args(files: _BrokerFiles) -> list[str]:
    return [f"-Dlog4j2.configurationFile={files.log4j}"]


def _format_storage(files: _BrokerFiles, java: str, classpath: str) -> None:
    # A fresh data dir each start: no state leaks between runs, and formatting
    # takes well under a second.
    if files.data.exists():
        shutil.rmtree(files.data)
    cmd = [
        java,
        *_jvm_log_args(files),
        "-cp",
        classpath,
        STORAGE_TOOL_MAIN,
        "format",
        "-t",
        _cluster_id(),
        "-c",
        str(files.properties),
        "--standalone",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"kafka storage format failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _launch(files: _BrokerFiles, java: str, classpath: str) -> subprocess.Popen[bytes]:
    cmd = [
        java,
        *JVM_HEAP_ARGS,
        *_jvm_log_args(files),
        "-cp",
        classpath,
        BROKER_MAIN,
        str(files.properties),
    ]
    with files.log.open("wb") as log:
        # Own session/process group: Ctrl-C in a terminal does not hit the broker
        # behind our back, and stop_pid can signal the whole group.
        return subprocess.Popen(
            cmd,
            cwd=files.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _metadata_ok(admin: AdminClient) -> bool:
    try:
        metadata = admin.list_topics(timeout=LIST_TOPICS_TIMEOUT_S)
    except KafkaException:
        return False
    return NODE_ID in metadata.brokers


def _wait_until_ready(proc: subprocess.Popen[bytes], files: _BrokerFiles, port: int, bootstrap: str) -> None:
    admins: list[AdminClient] = []

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(
                f"kafka broker exited with {proc.returncode} during start-up\n"
                f"--- {files.log} (tail) ---\n{tail(files.log)}"
            )
        # Create the client only once the port is open: librdkafka starts
        # connecting at once and logs every refused connection to stderr.
        if not port_open(port):
            return False
        if not admins:
            admins.append(AdminClient({"bootstrap.servers": bootstrap}))
        return _metadata_ok(admins[0])

    try:
        wait_for(ready, KAFKA_START_TIMEOUT_S, f"kafka broker at {bootstrap}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n--- {files.log} (tail) ---\n{tail(files.log)}") from None


def _stop_broker(proc: subprocess.Popen[bytes], record: pathlib.Path) -> None:
    """SIGTERM (controlled shutdown), SIGKILL after KAFKA_STOP_TIMEOUT_S."""
    if proc.poll() is None:
        stop_pid(proc.pid, KAFKA_STOP_TIMEOUT_S)
    # Reap it so no zombie is left behind (stop_pid may already have).
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KAFKA_STOP_TIMEOUT_S)
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
