"""Servers the embedded stack runs in the background: started in a session of their own so
they outlive the command that started them, their output appended to a log file and their
pid kept in a pid file in the state directory, both named after the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from charter.config.settings import ConfigurationError


class StackError(ConfigurationError):
    """The embedded stack cannot start: one line for the developer."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def start_detached(
    what: str,
    cmd: Sequence[str],
    state_dir: Path,
    name: str,
    *,
    ports: Sequence[int],
    where: str,
    within: int,
    poll: float,
    env: Mapping[str, str] | None = None,
) -> None:
    """Start `cmd` (`what`, for messages) logging to `<name>.log`, its pid in `<name>.pid`;
    return once every one of `ports` listens. StackError if it exits first, or if `within`
    seconds pass."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / f"{name}.log"
    with log.open("ab") as out:  # the server holds its own copy of the descriptor
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    (state_dir / f"{name}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with {proc.returncode}; see {log}")
        if all(port_open(port) for port in ports):
            return
        time.sleep(poll)
    raise StackError(f"{what} did not listen on {where} within {within}s")


def stop_detached(state_dir: Path, name: str) -> bool:
    """Stop the server whose pid `<name>.pid` holds (its whole session); False if none ran."""
    pid_file = state_dir / f"{name}.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True
