"""The measures `make bench` reports: one row per measure, its target, and whether it passes.

Every measure is a ratio (or a count) taken side by side with its baseline in one run, so
load from other processes on a shared machine weighs on both sides alike. Each bench script
writes its rows as JSON (`--json PATH`); `python -m bench` collects them into one table and
one PNG chart.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    now: float
    target: float
    better: Literal["higher", "lower"]
    unit: str = "x"
    detail: str = ""
    """The raw numbers behind the ratio (e.g. `505 vs 244 ms`), or what the stages cost."""
    judged: bool = True
    """False when the run was scaled down and cannot decide the target (shown as `n/a`)."""

    @property
    def passed(self) -> bool:
        return self.now >= self.target if self.better == "higher" else self.now <= self.target

    @property
    def verdict(self) -> str:
        if not self.judged:
            return "n/a"
        return "pass" if self.passed else "FAIL"

    def shown(self, value: float) -> str:
        if self.unit == "x":
            return f"{value:.2f}x"
        return f"{value:,.0f}{self.unit}"

    @property
    def target_text(self) -> str:
        return ("≥ " if self.better == "higher" else "≤ ") + self.shown(self.target)


def write(path: str | None, measures: Sequence[Measure]) -> None:
    """Append this script's rows to `path` (JSON lines), when run under `python -m bench`."""
    if path:
        with Path(path).open("a") as out:
            for m in measures:
                out.write(m.model_dump_json() + "\n")


def read(path: Path) -> list[Measure]:
    if not path.exists():
        return []
    return [Measure.model_validate(json.loads(line)) for line in path.read_text().splitlines()]


def machine() -> str:
    cpus = _cpu_model()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpus}), Python {platform.python_version()}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(measures: Sequence[Measure]) -> str:
    """A Markdown table: it reads the same in a terminal and in the README."""
    lines = ["| measure | now | target | pass | detail |", "|---|---|---|---|---|"]
    for m in measures:
        lines.append(
            f"| {m.name} | {m.shown(m.now)} | {m.target_text} | {m.verdict} | {m.detail} |"
        )
    return "\n".join(lines)


def chart(measures: Sequence[Measure], path: Path, title: str) -> None:
    """One horizontal bar per measure, as a share of its target (1.0 = exactly on target;
    right of the line is better), so ratios and counts share one axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def score(m: Measure) -> float:
        if m.now <= 0 or m.target <= 0:
            return 0.0
        return m.now / m.target if m.better == "higher" else m.target / m.now

    rows = list(reversed(measures))
    scores = [score(m) for m in rows]
    colours = ["#9e9e9e" if not m.judged else "#2e7d32" if m.passed else "#c62828" for m in rows]
    fig, ax = plt.subplots(figsize=(11, 0.55 * len(rows) + 1.6))
    ax.barh(range(len(rows)), scores, color=colours)
    ax.axvline(1.0, color="black", linewidth=1, linestyle="--")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([m.name for m in rows], fontsize=8)
    for i, m in enumerate(rows):
        ax.text(
            scores[i] + 0.02,
            i,
            f"{m.shown(m.now)} (target {m.target_text}) {m.verdict}",
            va="center",
            fontsize=7,
        )
    ax.set_xlim(0, max([1.6, *(s + 0.6 for s in scores)]))
    ax.set_xlabel("share of target (≥ 1 meets it)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
