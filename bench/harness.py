"""What every bench script does the same way: its command line, the order in which its sides
take turns, and how it prints the spread of its rounds.

Every measure compares two or more sides in one run. They take turns slice by slice, the
side that goes first rotating, so a drifting load on a shared machine weighs on all of them
alike; the report keeps the median of the per-round ratios and prints each round's.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A bench script's parser, its docstring as the help; the script adds its own options."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The script's options, and `--json`, the file `python -m bench` collects the rows in."""
    parser.add_argument("--json", help="append the measures to this JSON-lines file")
    return parser.parse_args()


def rotated(sides: Sequence[T], turn: int) -> list[T]:
    """`sides` starting from the one at `turn` (counted round): each goes first in turn."""
    first = turn % len(sides)
    return [*sides[first:], *sides[:first]]


def turns(sides: Sequence[T], slices: int) -> Iterator[tuple[int, T]]:
    """(slice, side): every side once per slice, for `slices` slices, the first rotating."""
    for turn in range(slices):
        for side in rotated(sides, turn):
            yield turn, side


def spread(values: Iterable[float], digits: int = 2) -> str:
    """Each round's value, as the report prints them beside the median."""
    return " ".join(f"{v:.{digits}f}" for v in values)


def quantile(values: Sequence[float], q: float) -> float:
    """The `q` quantile of `values`, the nearest of them (no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
