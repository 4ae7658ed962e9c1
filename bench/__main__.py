"""Every benchmark in one run: each script's own report, then one table of every measure
with its target, and the same as a PNG chart.

    python -m bench [--full] [--png bench-results.png] [--only codec gate ...]

Each script runs in a process of its own (they start their own PostgreSQL and Temporal dev
server) and appends its rows to a shared JSON-lines file. `--full` runs the open-escalations
measure at its real scale (10,000 parked runs on one worker, about an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measures import chart, machine, read, table

ROOT = Path(__file__).resolve().parent.parent
#: In table order; each entry is a script and the arguments `--full` adds to it.
SCRIPTS: list[tuple[str, list[str]]] = [
    ("agent_loop", []),
    ("audit_append", []),
    ("audit_verify", []),
    ("rls", []),
    ("gate", []),
    ("codec", []),
    ("escalations", ["--parked", "10000", "--decisions", "200"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="escalations at 10,000")
    parser.add_argument("--png", default="bench-results.png", help="where to write the chart")
    parser.add_argument(
        "--only", nargs="*", default=None, help="run only these scripts (names as in bench/)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="charter-bench-") as tmp:
        rows = Path(tmp) / "measures.jsonl"
        for name, full in SCRIPTS:
            if args.only is not None and name not in args.only:
                continue
            print(f"\n== bench/{name}.py", flush=True)
            command = [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--json", str(rows)]
            if args.full:
                command += full
            if subprocess.run(command, cwd=ROOT).returncode != 0:
                failed.append(name)
        measures = read(rows)
    where = machine()
    minutes = (time.monotonic() - started) / 60
    print(f"\n== every measure ({where}; {minutes:.1f} min)\n")
    print(table(measures))
    chart(measures, Path(args.png), f"Charter vs bare baselines, one run: {where}")
    print(f"\nchart: {args.png}")
    if failed:
        print(f"bench scripts that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
