"""Running Charter's entry points as an operator does: child processes with a chosen
environment, none of the developer's Charter or Temporal variables leaking in."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from tests.support.paths import REPO

#: Variables that configure Charter or Temporal; a test sets exactly the ones it means.
_CONFIGURING = ("CHARTER_", "TEMPORAL_", "DATABASE_URL", "OTEL_")


def clean_env(home: Path, **values: str) -> dict[str, str]:
    """The environment minus Charter/Temporal configuration, with HOME at `home` (so no
    Temporal profile file of the developer's is read), plus `values`. The test payload keys
    stay: every client and worker of this session must agree on them."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_CONFIGURING) or k in ("CHARTER_PAYLOAD_KEYS", "CHARTER_KEK")
    }
    return {**env, "HOME": str(home), "COLUMNS": "200", **values}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(
    env: dict[str, str],
    *argv: str,
    cwd: Path,
    timeout: float = 90,
    python: str = sys.executable,
) -> tuple[int, str, str]:
    """Run `python ARGV...` in `cwd`; return its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        python,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def worker_py() -> str:
    return str(REPO / "worker.py")
