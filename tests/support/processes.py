"""Running Charter's entry points as an operator does: child processes with a chosen
environment, none of the developer's Charter or Temporal variables leaking in."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.support.paths import REPO

#: Variables that configure Charter or Temporal; a test sets exactly the ones it means.
_CONFIGURING = ("CHARTER_", "TEMPORAL_", "DATABASE_URL", "OTEL_")


def clean_env(home: Path, **values: str) -> dict[str, str]:
    """The environment minus Charter/Temporal configuration, with HOME at `home` (so no
    Temporal profile file of the developer's is read), plus `values`. The test payload keys
    stay: every client and worker of this session must agree on them."""
    env = {k: v for k, v in os.environ.items() if not configures(k)}
    return {**env, "HOME": str(home), "COLUMNS": "200", **values}


def configures(name: str) -> bool:
    """Whether a variable configures Charter or Temporal (the session's test keys aside)."""
    return name.startswith(_CONFIGURING) and name not in ("CHARTER_PAYLOAD_KEYS", "CHARTER_KEK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def child(
    env: dict[str, str], *argv: str, cwd: Path, python: str = sys.executable, **pipes: Any
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python ARGV...` in `cwd`, killed when the block ends if it has not exited, however
    the block ends (a failed assertion, a timeout)."""
    proc = await asyncio.create_subprocess_exec(python, *argv, env=env, cwd=cwd, **pipes)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def stopped(
    proc: asyncio.subprocess.Process, how: int = signal.SIGTERM, *, timeout: float = 30
) -> tuple[bytes, bytes]:
    """Signal `proc` (SIGTERM: as an orchestrator stops a service) and collect its output once
    it exits; killed if it has not within `timeout` seconds, and the timeout raised."""
    proc.send_signal(how)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return out or b"", err or b""


async def run(
    env: dict[str, str],
    *argv: str,
    cwd: Path,
    timeout: float = 90,
    python: str = sys.executable,
) -> tuple[int, str, str]:
    """Run `python ARGV...` in `cwd`; return its exit code, stdout and stderr."""
    pipes = {"stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.PIPE}
    async with child(env, *argv, cwd=cwd, python=python, **pipes) as proc:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def worker_py() -> str:
    return str(REPO / "worker.py")
