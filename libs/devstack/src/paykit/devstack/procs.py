"""Small process and port helpers shared by the local Postgres and Kafka launchers.

Everything here acts on explicit pids that the caller started itself; nothing
searches for processes by name.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

LOCALHOST = "127.0.0.1"
# How often wait_for re-checks its condition: short enough to add little latency
# to start-up, long enough not to spin on a 2-core box.
POLL_INTERVAL_S = 0.1
# A single TCP connect attempt while waiting for a port; local, so it is fast or refused.
PORT_PROBE_TIMEOUT_S = 0.5
# Default grace period between SIGTERM and SIGKILL.
DEFAULT_STOP_TIMEOUT_S = 20.0
# Lines of a server log quoted in start-up error messages.
LOG_TAIL_LINES = 40
# `docker info` answers in well under a second when an engine is up; a hung or absent
# socket must not slow every test session down.
DOCKER_PROBE_TIMEOUT_S = 3.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now.

    The kernel picks it (bind to port 0); there is a small race until the server
    binds it, acceptable for local test servers.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(
    cond: Callable[[], bool],
    timeout_s: float,
    what: str,
    interval_s: float = POLL_INTERVAL_S,
) -> None:
    """Poll cond() until it returns True; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        if cond():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def port_open(port: int, host: str = LOCALHOST) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=PORT_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout_s: float, what: str, host: str = LOCALHOST) -> None:
    wait_for(lambda: port_open(port, host), timeout_s, f"{what} to listen on {host}:{port}")


def _reap_if_child(pid: int) -> None:
    # A child of ours that exited stays a zombie (and `kill -0` keeps succeeding)
    # until someone waits for it; reap it so liveness checks see the truth.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _is_zombie(pid: int) -> bool:
    # Orphans (e.g. a postmaster whose pg_ctl exited) are reaped by init; until
    # then /proc shows them in state Z. Field 3 of /proc/PID/stat is the state,
    # after the parenthesised command name, which may itself contain spaces.
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] == "Z"


def pid_alive(pid: int) -> bool:
    """True if pid names a live (non-zombie) process."""
    if pid <= 0:
        return False
    _reap_if_child(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Exists but belongs to another user (e.g. postgres when we are not root).
        return not _is_zombie(pid)
    return not _is_zombie(pid)


def process_cmdline(pid: int) -> list[str]:
    """argv of pid, or [] if it is gone or unreadable (used to guard against pid reuse)."""
    try:
        raw = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _send(pid: int, sig: signal.Signals, process_group: bool) -> None:
    try:
        if process_group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def stop_pid(pid: int, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> bool:
    """SIGTERM pid, wait up to timeout_s, then SIGKILL. Returns True if it had to kill.

    Only call this with a pid you started. If that process leads its own process
    group (we start servers with start_new_session=True) the whole group is
    signalled, so helpers the server forked go too; otherwise just the pid.
    """
    if not pid_alive(pid):
        return False
    try:
        process_group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return False
    _send(pid, signal.SIGTERM, process_group)
    try:
        wait_for(lambda: not pid_alive(pid), timeout_s, f"pid {pid} to exit after SIGTERM")
        return False
    except TimeoutError:
        _send(pid, signal.SIGKILL, process_group)
        # SIGKILL cannot be ignored; the wait only covers kernel teardown.
        wait_for(lambda: not pid_alive(pid), timeout_s, f"pid {pid} to exit after SIGKILL")
        return True


def tail(path: pathlib.Path, lines: int = LOG_TAIL_LINES) -> str:
    """Last `lines` lines of a log file, for error messages; never raises."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def docker_available() -> bool:
    """True if a Docker engine answers `docker info` promptly."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run(
            [docker, "info"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=DOCKER_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def import_first(modules: list[str], name: str) -> Any:
    """`name` from the first importable module.

    testcontainers 4.15 moved its modules to testcontainers.community.* and the old
    paths warn on import; older 4.x releases only have the old paths.
    """
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"{name} not found in any of {modules}")
