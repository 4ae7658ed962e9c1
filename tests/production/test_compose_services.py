"""Every command docker-compose.yml runs in Charter's image, run outside Docker against this
session's PostgreSQL and Temporal: the one-shots finish, the servers come up and stop on
SIGTERM. The containers' host names and ports are swapped for the test servers'; the
commands and environment are the compose file's own.

`make image-check` runs this module with `CHARTER_IMAGE_PYTHON` naming the interpreter of
the image's environment, built from the Dockerfile (`tests/support/image.py`): then the
commands run with exactly the packages the image holds, from a directory outside the
repository, as in the container's working directory."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from charter.crypto.fresh import fresh_secrets
from tests.support.polling import eventually
from tests.support.processes import REPO, child, clean_env, free_port, run

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
EXAMPLE_ENV = dict(
    line.split("=", 1)
    for line in (REPO / "deploy" / "compose.env.example").read_text().splitlines()
    if line and not line.startswith("#")
)
#: Where compose mounts each secret in a container.
SECRETS = "/run/secrets/"
#: the image's interpreter (`make image-check`), or this session's
PYTHON = os.environ.get("CHARTER_IMAGE_PYTHON", sys.executable)

CHARTER_SERVICES = sorted(
    name for name, service in COMPOSE["services"].items() if service.get("image") == "charter:local"
)


def _interpolate(value: str) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}`, from the example .env."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if EXAMPLE_ENV.get(name):
            return EXAMPLE_ENV[name]
        assert op != ":?", f"{name} is mandatory and missing from compose.env.example"
        return rest or ""

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def _on_test_servers(dsn: str, theirs: str) -> str:
    """A DSN of the compose network (user and password kept) on the test server."""
    ours, parts = urlsplit(dsn), urlsplit(theirs)
    user = parts.netloc.rsplit("@", 1)[0]
    host = ours.netloc.rsplit("@", 1)[-1]
    return urlunsplit((ours.scheme, f"{user}@{host}", ours.path, ours.query, ""))


def secret_files(folder: Path, dsn: str) -> Path:
    """The secrets compose mounts, as `charter keys generate` makes them — with the test
    session's keys (its workers wrote the key canaries with them) and its server in the
    DSNs — and the Slack app's, which the operator adds."""
    folder.mkdir(parents=True, exist_ok=True)
    made = dict(fresh_secrets("postgres", "charter"))
    made["payload_keys"] = os.environ["CHARTER_PAYLOAD_KEYS"]
    made["kek"] = os.environ["CHARTER_KEK"]
    for name in ("database_url", "app_database_url"):
        made[name] = _on_test_servers(dsn, made[name])
    made |= {"slack_bot_token": "xoxb-test", "slack_signing_secret": "s" * 32}
    made["anthropic_api_key"] = ""  # an empty file: the offline reasoner
    declared = set(COMPOSE["secrets"])
    assert set(made) == declared, f"compose declares {declared}, the test makes {set(made)}"
    for name, value in made.items():
        (folder / name).write_text(value)
    return folder


def _argv(service: dict[str, Any]) -> list[str]:
    def words(value: object) -> list[str]:
        return shlex.split(value) if isinstance(value, str) else [str(v) for v in value or []]

    return words(service.get("entrypoint")) + words(service.get("command"))


def service_command(
    name: str, secrets: Path, temporal: str, home: Path, ports: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    service = COMPOSE["services"][name]
    environment = {
        key: _interpolate(str(value))
        .replace("temporal:7233", temporal)
        .replace(SECRETS, f"{secrets}/")
        for key, value in (service.get("environment") or {}).items()
    }
    for key, value in environment.items():
        if value.startswith(f"{secrets}/"):  # a file the service must have mounted
            assert Path(value).name in service.get("secrets", []), (name, key)
    environment |= {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",  # no collector here
        "CHARTER_STATE_DIR": str(home / "state"),
        **{key: value for key, value in ports.items() if key in environment},
    }
    argv = [ports.get(arg, arg) for arg in _argv(service)]
    if argv[0] == "charter":
        argv = ["-m", "charter_cli", *argv[1:]]
    elif argv[0] == "python":
        argv = argv[1:]
    return argv, clean_env(home, **environment)


def test_the_compose_file_is_what_the_tests_expect() -> None:
    assert CHARTER_SERVICES == [
        "cli",
        "codec-server",
        "front-door",
        "migrate",
        "slack",
        "temporal-setup",
        "web",
        "worker",
    ]
    assert COMPOSE["services"]["worker"]["deploy"]["replicas"] == 2
    worker_env = COMPOSE["services"]["worker"]["environment"]
    assert "DATABASE_URL" not in worker_env  # the worker never gets the administrator's DSN
    assert worker_env["CHARTER_APP_DATABASE_URL_FILE"] == SECRETS + "app_database_url"
    for name, service in COMPOSE["services"].items():
        assert ":" in service.get("image", ""), name  # every image pinned to a tag
        if service.get("image") != "charter:local":
            assert not str(service["image"]).endswith(":latest"), name
            # Pinned to a release, not a floating major (`postgres:17`).
            assert re.fullmatch(r"[\w./-]+:\d+\.\d+(\.\d+)?", service["image"]), name
        # No secret in a variable: every secret is a file.
        for key, value in (service.get("environment") or {}).items():
            assert not re.search(r"PASSWORD$|TOKEN$|SECRET$|_KEYS?$|^CHARTER_KEK$", key), (
                name,
                key,
            )
            assert "${" not in str(value), (name, key)
        # Published only on the loopback, except the Slack endpoint (Slack signs requests).
        for mapping in service.get("ports", []):
            assert name == "slack" or str(mapping).startswith("127.0.0.1:"), (name, mapping)
    worker = COMPOSE["services"]["worker"]
    grace = worker["environment"]["CHARTER_SHUTDOWN_GRACE"]
    assert grace == "PT30S" and worker["stop_grace_period"] == "45s"
    assert "/readyz" in " ".join(worker["healthcheck"]["test"])


async def _serving(
    argv: list[str], env: dict[str, str], cwd: Path, ready: Callable[[], Awaitable[Any]]
) -> str:
    """Start a long-running service, wait until `ready`, SIGTERM it; return its output."""
    pipes = {"stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.STDOUT}
    async with child(env, *argv, cwd=cwd, python=PYTHON, **pipes) as proc:
        try:
            await eventually(ready, timeout=180, interval=0.3)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def _status(url: str, method: str = "GET") -> int | None:
    try:
        async with aiohttp.ClientSession() as http, http.request(method, url) as response:
            return response.status
    except aiohttp.ClientConnectionError:
        return None


# Seven fresh interpreters, four of them side by side: minutes on a loaded two-core machine.
@pytest.mark.timeout(900)
async def test_every_charter_service_command_runs_outside_docker(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment, tenant: str
) -> None:
    temporal = env.client.service_client.config.target_host
    secrets = secret_files(tmp_path / "secrets", admin_dsn)
    health, metrics, codec, slack = free_port(), free_port(), free_port(), free_port()
    web = free_port()
    ports = {
        "CHARTER_HEALTH_PORT": str(health),
        "CHARTER_METRICS_ADDRESS": f"127.0.0.1:{metrics}",
        "CHARTER_SLACK_PORT": str(slack),
        "CHARTER_SLACK_HOST": "127.0.0.1",
        "CHARTER_WEB_PORT": str(web),
        "CHARTER_WEB_HOST": "127.0.0.1",
        "8234": str(codec),
        "0.0.0.0": "127.0.0.1",
    }

    def command(name: str) -> tuple[list[str], dict[str, str]]:
        return service_command(name, secrets, temporal, tmp_path, ports)

    async def one_shot(name: str, expected: str, *arguments: str) -> None:
        argv, env = command(name)
        if arguments:  # `docker compose run --rm NAME ARGS...` replaces the command
            argv = argv[: len(argv) - len(COMPOSE["services"][name].get("command", []))]
            argv += list(arguments)
        # Four fresh interpreters side by side: minutes on a loaded two-core machine.
        code, out, err = await run(env, *argv, cwd=tmp_path, python=PYTHON, timeout=300)
        assert code == 0, (name, out, err)
        assert expected in out, (name, out)

    async def worker_ready() -> bool:
        return await _status(f"http://127.0.0.1:{health}/readyz") == 200

    async def codec_refuses_without_token() -> bool:
        return await _status(f"http://127.0.0.1:{codec}/decode", "POST") == 401

    async def slack_listening() -> bool:
        return await _status(f"http://127.0.0.1:{slack}/slack/events", "POST") is not None

    async def web_healthy() -> bool:
        return await _status(f"http://127.0.0.1:{web}/healthz") == 200

    async def serving(name: str, ready: Callable[[], Awaitable[Any]]) -> None:
        argv, env = command(name)
        await _serving(argv, env, tmp_path, ready)

    # The one-shots first (the servers need the migrations), each group side by side: every
    # command is a fresh interpreter, and they do not depend on one another.
    await asyncio.gather(
        one_shot("migrate", "is up to date"),
        one_shot("temporal-setup", "search attributes already present"),
        one_shot("cli", "Governed AI agents"),
        # The documented one-shot registration of the Slack app's front-door key, on the
        # state directory the Slack app then starts from (their shared volume).
        one_shot("front-door", f"registered the slack front door for {tenant}", "--tenant", tenant),
    )
    assert (tmp_path / "state" / "member-keys").is_dir()
    await asyncio.gather(
        serving("worker", worker_ready),
        serving("codec-server", codec_refuses_without_token),
        serving("slack", slack_listening),
        serving("web", web_healthy),
    )
