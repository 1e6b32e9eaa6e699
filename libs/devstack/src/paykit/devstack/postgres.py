"""A PostgreSQL server for tests and demos.

acquire_postgres() prefers, in order: an explicit server (PAYKIT_POSTGRES_URL),
a Docker container (testcontainers), and finally a private cluster started from
the Debian server binaries in /usr/lib/postgresql/*/bin.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import pwd
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
import psycopg2.errors
from paykit.devstack.procs import (
    LOCALHOST,
    docker_available,
    free_port,
    import_first,
    pid_alive,
    tail,
    wait_for,
)
from psycopg2 import sql

ENV_POSTGRES_URL = "PAYKIT_POSTGRES_URL"
POSTGRES_IMAGE = "postgres:15"
# Database role and OS user; Debian's package creates the same-named OS user.
SUPERUSER = "postgres"
OS_USER = "postgres"
# Parent of the private cluster directories. Not under the repo: the checkout may
# live below /root (mode 700), which the postgres OS user cannot traverse.
CLUSTER_PARENT = pathlib.Path("/tmp")
# Where Debian (and the postgresql-common layout) installs server binaries.
DEBIAN_PG_GLOB = "/usr/lib/postgresql/*/bin/initdb"

# Bounded wait for a fresh postmaster to accept connections (crash recovery
# after an unclean stop can add a few seconds).
POSTGRES_START_TIMEOUT_S = 30
POSTGRES_STOP_TIMEOUT_S = 30
# initdb is a one-off per run dir but can be slow on a loaded 2-core CI box.
INITDB_TIMEOUT_S = 120
# One connection attempt inside the readiness loop.
CONNECT_TIMEOUT_S = 2
# The postgres process exits right after removing postmaster.pid; allow the tail.
PID_EXIT_TIMEOUT_S = 5.0

# Throwaway test clusters: durability is irrelevant, speed and many parallel
# service connections are what matter on a 2-core box.
TEST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "256MB",
}

StopFn = Callable[[], None]


@dataclass(frozen=True)
class PostgresServer:
    admin_url: str  # e.g. postgresql://postgres@127.0.0.1:54321/postgres

    def url_for(self, database: str) -> str:
        """The same server (credentials, host, port, query), another database."""
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


def ensure_database(server: PostgresServer, name: str) -> str:
    """CREATE DATABASE name unless it exists; return its URL."""
    conn = psycopg2.connect(server.admin_url, connect_timeout=CONNECT_TIMEOUT_S)
    try:
        # CREATE DATABASE cannot run inside a transaction block.
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                # Another process may create it between the check and here.
                with contextlib.suppress(psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return server.url_for(name)


def acquire_postgres(run_dir: pathlib.Path) -> tuple[PostgresServer, StopFn]:
    """A running server plus a function that stops it (if we started it)."""
    url = os.environ.get(ENV_POSTGRES_URL)
    if url:
        return PostgresServer(admin_url=url), _noop
    if docker_available():
        return _start_container()
    return _start_local_cluster(run_dir)


def _noop() -> None:
    """Stop function for servers someone else owns."""


# --- Docker -------------------------------------------------------------------------


def _start_container() -> tuple[PostgresServer, StopFn]:
    container_cls = import_first(
        ["testcontainers.community.postgres", "testcontainers.postgres"], "PostgresContainer"
    )
    container: Any = container_cls(
        POSTGRES_IMAGE, username=SUPERUSER, password=SUPERUSER, dbname="postgres", driver=None
    )
    container.with_command(["postgres", *_settings_args()])
    container.start()
    url: str = container.get_connection_url()

    def stop() -> None:
        container.stop()

    return PostgresServer(admin_url=url), stop


# --- Local cluster ------------------------------------------------------------------


@dataclass(frozen=True)
class _RunAs:
    """The OS identity the server runs under; PostgreSQL refuses to run as root."""

    user: str | None  # None: the current user, no runuser needed
    uid: int
    gid: int

    def argv(self, cmd: list[str]) -> list[str]:
        return cmd if self.user is None else ["runuser", "-u", self.user, "--", *cmd]


@dataclass(frozen=True)
class _Cluster:
    base: pathlib.Path  # /tmp/paykit-pg-<hash>, owned by the server user, mode 700
    bindir: pathlib.Path
    run_as: _RunAs

    @property
    def data(self) -> pathlib.Path:
        return self.base / "data"

    @property
    def log(self) -> pathlib.Path:
        return self.base / "server.log"

    def run(self, tool: str, *args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        cmd = self.run_as.argv([str(self.bindir / tool), *args])
        # cwd inside the cluster dir: the server user may not be able to enter ours.
        return subprocess.run(
            cmd,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


def _start_local_cluster(run_dir: pathlib.Path) -> tuple[PostgresServer, StopFn]:
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = _Cluster(base=_cluster_dir(run_dir), bindir=_pg_bindir(), run_as=_run_as())
    _prepare_base_dir(cluster)
    _link(run_dir / "pg", cluster.base)
    record = run_dir / "postgres.json"
    _stop_leftover_postmaster(cluster, record)
    _initdb_if_needed(cluster)
    port = free_port()
    _pg_ctl_start(cluster, port)
    admin_url = f"postgresql://{SUPERUSER}@{LOCALHOST}:{port}/postgres"
    _wait_until_accepting(cluster, admin_url)
    pid = _postmaster_pid(cluster.data)
    if pid is None:
        raise RuntimeError(f"postgres started but {cluster.data}/postmaster.pid is unreadable")
    record.write_text(json.dumps({"pid": pid, "admin_url": admin_url, "data_dir": str(cluster.data)}) + "\n")
    return PostgresServer(admin_url=admin_url), lambda: _pg_ctl_stop(cluster, pid, record)


def _cluster_dir(run_dir: pathlib.Path) -> pathlib.Path:
    # One cluster per run dir, stable across runs so initdb happens only once.
    digest = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:10]
    return CLUSTER_PARENT / f"paykit-pg-{digest}"


def _pg_bindir() -> pathlib.Path:
    """Newest Debian-installed server, else whatever pg_ctl is on PATH."""
    found = [pathlib.Path(p).parent for p in pathlib.Path("/").glob(DEBIAN_PG_GLOB.lstrip("/"))]
    if found:
        return max(found, key=lambda bindir: _version_key(bindir.parent.name))
    on_path = shutil.which("pg_ctl")
    if on_path and (pathlib.Path(on_path).parent / "initdb").exists():
        return pathlib.Path(on_path).parent
    raise RuntimeError(
        "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); "
        "run deploy/install-deps.sh or set PAYKIT_POSTGRES_URL"
    )


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text))


def _run_as() -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs(user=None, uid=os.getuid(), gid=os.getgid())
    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", OS_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(OS_USER)
    return _RunAs(user=OS_USER, uid=entry.pw_uid, gid=entry.pw_gid)


def _prepare_base_dir(cluster: _Cluster) -> None:
    base, owner = cluster.base, cluster.run_as
    base.mkdir(mode=0o700, exist_ok=True)
    st = base.lstat()
    if not base.is_dir() or base.is_symlink():
        raise RuntimeError(f"{base} exists and is not a plain directory")
    if st.st_uid != owner.uid:
        # /tmp is world-writable: only take over a directory root itself created.
        if os.geteuid() != 0 or st.st_uid != 0:
            raise RuntimeError(f"{base} is owned by uid {st.st_uid}, expected uid {owner.uid}")
        os.chown(base, owner.uid, owner.gid)
    os.chmod(base, 0o700)


def _link(link: pathlib.Path, target: pathlib.Path) -> None:
    """run_dir/pg -> the cluster dir, so people can find the data and server log."""
    if link.is_symlink():
        if link.readlink() == target:
            return
        link.unlink()
    elif link.exists():
        return  # someone put a real file/dir there; it is not ours to remove
    link.symlink_to(target)


def _postmaster_pid(data: pathlib.Path) -> int | None:
    try:
        first_line = (data / "postmaster.pid").read_text().splitlines()[0]
        return int(first_line.strip())
    except (OSError, IndexError, ValueError):
        return None


def _stop_leftover_postmaster(cluster: _Cluster, record: pathlib.Path) -> None:
    """A postmaster from an earlier run that never called stop() still owns the data dir.

    Stop it only if our record says we started it; never touch anyone else's.
    """
    pid = _postmaster_pid(cluster.data)
    if pid is None or not pid_alive(pid):
        return  # a stale postmaster.pid with a dead pid is handled by postgres itself
    recorded = _read_record(record)
    if recorded.get("pid") != pid or recorded.get("data_dir") != str(cluster.data):
        raise RuntimeError(
            f"postgres pid {pid} is running on {cluster.data} but was not recorded in "
            f"{record}; stop it yourself or use another run dir"
        )
    _pg_ctl_stop(cluster, pid, record)


def _read_record(record: pathlib.Path) -> dict[str, Any]:
    try:
        loaded = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _server_major(cluster: _Cluster) -> str:
    out = cluster.run("postgres", "--version", timeout_s=CONNECT_TIMEOUT_S * 5).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    if match is None:
        raise RuntimeError(f"cannot parse `postgres --version` output: {out!r}")
    return match.group(1)


def _initdb_if_needed(cluster: _Cluster) -> None:
    data = cluster.data
    version_file = data / "PG_VERSION"
    if version_file.exists() and version_file.read_text().strip() == _server_major(cluster):
        return  # reuse: the fast path for the second and later runs
    if data.exists():
        # Half-initialised (initdb interrupted) or made by another major version.
        shutil.rmtree(data)
    result = cluster.run(
        "initdb",
        "-D",
        str(data),
        "--auth=trust",
        f"--username={SUPERUSER}",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",  # test data: no need to fsync the fresh cluster
        timeout_s=INITDB_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def _settings_args() -> list[str]:
    args: list[str] = []
    for key, value in TEST_SETTINGS.items():
        args += ["-c", f"{key}={value}"]
    return args


def _pg_ctl_start(cluster: _Cluster, port: int) -> None:
    if cluster.log.exists():
        cluster.log.unlink()  # one log per start keeps error tails relevant
    options = [
        "-c",
        f"port={port}",
        "-c",
        f"listen_addresses={LOCALHOST}",
        # The socket in the data dir: /var/run/postgresql may not exist or be
        # writable, and this keeps parallel clusters apart.
        "-c",
        f"unix_socket_directories={cluster.data}",
        *_settings_args(),
    ]
    result = cluster.run(
        "pg_ctl",
        "start",
        "-D",
        str(cluster.data),
        "-l",
        str(cluster.log),
        "-w",
        "-t",
        str(POSTGRES_START_TIMEOUT_S),
        "-o",
        " ".join(options),
        timeout_s=POSTGRES_START_TIMEOUT_S + CONNECT_TIMEOUT_S * 5,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"pg_ctl start failed ({result.returncode}): {result.stdout}{result.stderr}\n"
            f"--- {cluster.log} (tail) ---\n{tail(cluster.log)}"
        )


def _can_connect(admin_url: str) -> bool:
    try:
        psycopg2.connect(admin_url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg2.OperationalError:
        return False
    return True


def _wait_until_accepting(cluster: _Cluster, admin_url: str) -> None:
    # pg_ctl -w already waited for "ready"; this proves TCP + auth work as we will use them.
    try:
        wait_for(
            lambda: _can_connect(admin_url),
            POSTGRES_START_TIMEOUT_S,
            f"postgres at {admin_url} to accept connections",
        )
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n--- {cluster.log} (tail) ---\n{tail(cluster.log)}") from None


def _pg_ctl_stop(cluster: _Cluster, pid: int, record: pathlib.Path) -> None:
    """Fast shutdown of the postmaster we started; the data dir stays for the next run."""
    if not pid_alive(pid) or _postmaster_pid(cluster.data) != pid:
        return  # already stopped (stop() called twice, or the server died)
    result = cluster.run(
        "pg_ctl",
        "stop",
        "-D",
        str(cluster.data),
        "-m",
        "fast",
        "-w",
        "-t",
        str(POSTGRES_STOP_TIMEOUT_S),
        timeout_s=POSTGRES_STOP_TIMEOUT_S + CONNECT_TIMEOUT_S * 5,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pg_ctl stop failed ({result.returncode}): {result.stderr}")
    wait_for(lambda: not pid_alive(pid), PID_EXIT_TIMEOUT_S, f"postmaster pid {pid} to exit")
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
