"""The layers point one way: the import-linter contracts in pyproject.toml hold, and bite.

contract (schemas) <- domain (charter) <- activities <- workflows <- worker.py, starter.py <-
the CLI (charter_cli); inside charter/, floors from configuration up to the development
stack, and the law pure by folder. docs/architecture.md explains why each arrow points the way it does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

ROOT = REPO
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
#: What the contracts look at: the packages and entry points, and the configuration.
LAYERED = ["schemas", "charter", "activities", "workflows", "charter_cli"]
ENTRY_POINTS = ["worker.py", "starter.py", "pyproject.toml"]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    # import-linter puts the working directory first on sys.path, so a copy is analysed
    # as itself and not as the editable install it shadows.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def contract_names() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    section = text[text.index("[tool.importlinter]") :]
    return re.findall(r'^name = "(.+)"$', section, flags=re.MULTILINE)


def test_every_contract_is_kept() -> None:
    names = contract_names()
    assert len(names) >= 4, names
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in names:
        assert f"{name} KEPT" in done.stdout, done.stdout
    assert f"Contracts: {len(names)} kept, 0 broken." in done.stdout


def copy_of_the_packages(into: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in LAYERED:
        shutil.copytree(ROOT / package, into / package, ignore=ignore)
    for name in ENTRY_POINTS:
        shutil.copy(ROOT / name, into / name)


@pytest.mark.parametrize(
    ("module", "line", "contract", "arrow"),
    [
        # The domain importing the workflows.
        (
            "charter/runtime/process.py",
            "import workflows",
            "contract <- domain",
            "charter.runtime.process -> workflows",
        ),
        # Storage climbing back up to the services that use it.
        (
            "charter/storage/ledger.py",
            "import charter.services.proofs",
            "inside charter/",
            "charter.storage.ledger -> charter.services.proofs",
        ),
        # Configuration at the bottom importing the runtime above it.
        (
            "charter/config/settings.py",
            "import charter.runtime.telemetry",
            "inside charter/",
            "charter.config.settings -> charter.runtime.telemetry",
        ),
        # A new module of the law, listed nowhere, reaching the database.
        (
            "charter/governance/lookup.py",
            "import asyncpg",
            "charter.governance does no I/O",
            "charter.governance.lookup -> asyncpg",
        ),
    ],
)
def test_a_backwards_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str, arrow: str
) -> None:
    """The contracts are not vacuous: each kind of backwards import is caught."""
    copy_of_the_packages(tmp_path)
    path = tmp_path / module
    before = path.read_text() if path.exists() else ""
    path.write_text(before + f"\n{line}  # noqa: E402, F401\n")

    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = next(name for name in contract_names() if name.startswith(contract))
    assert f"{broken} BROKEN" in done.stdout, done.stdout
    assert arrow in done.stdout, done.stdout
