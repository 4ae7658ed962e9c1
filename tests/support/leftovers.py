"""What a test session must not leave behind: processes it started, and listeners on the
ports a developer's `make demo` uses (Temporal 7233, its UI 8233, the codec server 8234).

Every process a session starts inherits `MARK` in its environment (children of children
too, even once they are re-parented to init, as a daemonised server is), so what is still
running with this session's mark at its end was left behind by a test, whoever started it.
Another engineer's `make demo` on the same machine carries no mark and is not counted.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass

import psutil

#: Outside the prefixes `processes.clean_env` strips, so an operator-like child keeps it.
MARK = "PYTEST_CHARTER_SESSION"
DEFAULT_PORTS = (7233, 8233, 8234)


def mark_this_session() -> str:
    """Set a fresh mark for every process this one starts from now on."""
    value = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    os.environ[MARK] = value
    return value


@dataclass(frozen=True)
class Leftover:
    pid: int
    command: str
    ports: tuple[int, ...]

    def __str__(self) -> str:
        listening = f" listening on {', '.join(map(str, self.ports))}" if self.ports else ""
        return f"pid {self.pid}{listening}: {self.command}"


def _marked(mark: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE or proc.environ().get(MARK) != mark:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found.append(proc)
    return found


def _listening(pids: set[int]) -> dict[int, tuple[int, ...]]:
    ports: dict[int, list[int]] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            ports.setdefault(conn.pid, []).append(conn.laddr.port)
    return {pid: tuple(sorted(set(found))) for pid, found in ports.items()}


def leftovers(mark: str, *, grace: float = 10.0) -> list[Leftover]:
    """The processes still running with `mark`, once those already stopping had `grace`
    seconds to exit."""
    deadline = time.monotonic() + grace
    while (procs := _marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    ports = _listening({p.pid for p in procs})
    found = []
    for proc in procs:
        try:
            command = " ".join(proc.cmdline())[:300]
        except psutil.NoSuchProcess:
            continue
        found.append(Leftover(proc.pid, command, ports.get(proc.pid, ())))
    return found


def on_default_ports(found: list[Leftover]) -> list[Leftover]:
    return [one for one in found if set(one.ports) & set(DEFAULT_PORTS)]


def stop(found: list[Leftover]) -> None:
    """End what the session left (they are its own), so a failed run leaves nothing either."""
    procs = []
    for one in found:
        try:
            procs.append(psutil.Process(one.pid))
        except psutil.NoSuchProcess:
            continue
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
