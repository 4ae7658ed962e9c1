"""`verify`: `charter audit verify --tenant` as an operator runs it after an attack."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.stolen_worker import audit_verify

Verify = Callable[[str], Awaitable[tuple[int, str]]]


@pytest.fixture
def verify(
    admin_dsn: str,
    env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Verify:
    """The exit code and the output (on one line) of `charter audit verify --tenant`."""

    def run(tenant: str) -> Awaitable[tuple[int, str]]:
        return audit_verify(tenant, admin_dsn, env, monkeypatch, tmp_path, capsys)

    return run
