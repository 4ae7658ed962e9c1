"""The workflow's body (workflows/loop.py) is imported through the sandbox's pass-through,
once per worker, so the sandbox's runtime guard no longer sees its calls. This is the guard
in its place: the workflow modules reach time, randomness, I/O and threads only through
`temporalio.workflow`, and keep no module state but constants."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

WORKFLOWS = sorted((REPO / "workflows").glob("*.py"))

#: Modules whose use in workflow code is nondeterministic or does I/O.
FORBIDDEN_MODULES = {
    "os",
    "random",
    "secrets",
    "socket",
    "subprocess",
    "threading",
    "time",
    "uuid",
    "urllib",
    "httpx",
    "asyncpg",
}
#: Clock reads other than `workflow.now()`.
CLOCK_CALLS = {"now", "utcnow", "today", "fromtimestamp"}


def _problems(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        found += [f"imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS
            and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "workflow")
        ):
            found.append(f"calls {ast.unparse(node.func)}() at line {node.lineno}")
        if isinstance(node, ast.Global):
            found.append(f"rebinds module state at line {node.lineno}")
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "open":
            found.append(f"opens a file at line {node.lineno}")
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_code_is_deterministic(path: Path) -> None:
    assert _problems(ast.parse(path.read_text())) == []


def test_the_guard_sees_what_it_forbids() -> None:
    bad = ast.parse(
        "import time\nfrom datetime import datetime\n"
        "def f():\n    global x\n    datetime.now()\n    open('f')\n    workflow.now()\n"
    )
    assert _problems(bad) == [
        "imports time",
        "rebinds module state at line 4",
        "calls datetime.now() at line 5",
        "opens a file at line 6",
    ]
