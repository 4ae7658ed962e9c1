"""The layers point one way: the import-linter contracts in pyproject.toml hold, and bite.

contract (schemas) <- domain (charter) <- activities <- workflows <- worker.py, starter.py <-
the CLI (charter_cli). docs/architecture.md explains why each arrow points the way it does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def test_a_backwards_import_breaks_the_layers(tmp_path: Path) -> None:
    """The contracts are not vacuous: the domain importing the workflows is caught."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in LAYERED:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    for name in ENTRY_POINTS:
        shutil.copy(ROOT / name, tmp_path / name)
    process = tmp_path / "charter" / "runtime" / "process.py"
    process.write_text(process.read_text() + "\nimport workflows  # noqa: E402, F401\n")

    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    layers = contract_names()[0]
    assert f"{layers} BROKEN" in done.stdout, done.stdout
    assert "charter.runtime.process -> workflows" in done.stdout, done.stdout
