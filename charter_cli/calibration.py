"""`charter calibration`: stated confidence against human agreement, and suggested thresholds."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from charter.governance import calibration
from charter.storage import calibration_outcomes as stored
from charter_cli._arguments import add_json, add_tenant
from charter_cli._common import CliError, connected, console, print_json
from charter_cli._registration import Subcommands, command


def register(sub: Subcommands) -> None:
    parser = command(sub, "calibration", cmd_calibration)
    add_tenant(parser)
    parser.add_argument("--agent", help="only this agent")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("calibration.png"),
        help="where to write the reliability plot (default: calibration.png)",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=0.9,
        help="agreement rate a suggested threshold must reach (default: 0.9)",
    )
    parser.add_argument(
        "--min-decisions",
        type=int,
        default=5,
        help="human decisions needed before a threshold is suggested (default: 5)",
    )
    add_json(parser)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def group_table(group: calibration.CalibrationGroup) -> Table:
    counts = ", ".join(f"{k} {v}" for k, v in group.counts.items())
    table = Table(
        title=f"{group.agent} · {group.action}  ({counts})",
        title_justify="left",
        caption=_suggestion(group.suggestion),
        caption_justify="left",
    )
    for col in ("stated confidence", "proposals", "decided", "approved", "agreement"):
        table.add_column(col, justify="left" if col == "stated confidence" else "right")
    for b in group.bins:
        if not b.proposals:
            continue
        table.add_row(
            f"{b.lower:.1f} to {b.upper:.1f}",
            str(b.proposals),
            str(b.decided),
            str(b.agreed),
            _pct(b.agreement),
        )
    return table


def _suggestion(s: calibration.ThresholdSuggestion) -> str:
    if s.min_confidence is None:
        return f"suggested threshold: none ({s.note})"
    return (
        f"suggested min_confidence: {s.min_confidence:.2f} — {s.note} "
        f"({_pct(s.agreement)}, 95% lower bound {_pct(s.lower_bound)})"
    )


async def cmd_calibration(args: argparse.Namespace) -> int:
    """stated confidence vs. the rate humans agreed, per agent and action type

    Set each proposal's stated confidence beside its outcome (auto-executed, approved,
    rejected, ...), print per agent and action type how often humans agreed at each
    confidence level and the thresholds the data suggests, and write the same as a PNG
    reliability plot.
    """
    if not 0 < args.target <= 1:
        raise CliError("--target must be in (0, 1]")
    if args.min_decisions < 1:
        raise CliError("--min-decisions must be at least 1")
    async with connected(args, temporal=False) as s, s.db.tenant(args.tenant) as conn:
        rows = await stored.outcomes(conn, args.tenant, args.agent)
    result = calibration.report(
        args.tenant, rows, target=args.target, min_decisions=args.min_decisions
    )
    if not args.json:
        if not result.groups:
            console.print(f"No proposals recorded for tenant {args.tenant!r} yet.")
        for group in result.groups:
            console.print(group_table(group))
    try:
        path = calibration.plot(result, args.out)
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib":
            raise
        raise CliError(
            "the reliability plot needs matplotlib: pip install 'charter[plots]'"
        ) from None
    if args.json:
        print_json({**result.model_dump(mode="json"), "plot": str(path)})
        return 0
    console.print(f"reliability plot written to {path}")
    return 0
