"""The migration files in the order they apply, and the versions they were once recorded
under.

A migration's version is its file's name without `.sql`: `NNN_name`, numbered one by one
from 001, so that no two files share a number and their names sort in the order they apply.
A released file never changes; a change to the schema is a new file with the next number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import resources
from types import MappingProxyType

#: The versions the files were recorded under before every file had a number of its own
#: (two each of 008, 009 and 010, and no 004), each with the version its file has now. The
#: order they apply in is unchanged; a ledger holding an old version is given the new one
#: before anything is compared, so nothing is applied twice.
RENUMBERED: Mapping[str, str] = MappingProxyType(
    {
        "005_proposal_edits": "004_proposal_edits",
        "006_slack": "005_slack",
        "007_audit_run_index": "006_audit_run_index",
        "008_migration_status": "007_migration_status",
        "009_superseded_decisions": "010_superseded_decisions",
        "010_budget_changes": "011_budget_changes",
        "010_member_keys": "012_member_keys",
        "011_slack_replays": "013_slack_replays",
    }
)

_VERSION = re.compile(r"(?P<number>[0-9]{3})_[a-z0-9_]+")


class MigrationNumberingError(RuntimeError):
    """The migration files are not numbered 001, 002, ... one file to a number."""


def check_numbering(versions: Sequence[str]) -> None:
    """Refuse versions (in name order) that are not `NNN_name`, numbered one by one from 001:
    a number shared by two files leaves their order to their names, and a missing one is a
    file lost."""
    for expected, version in enumerate(versions, start=1):
        match = _VERSION.fullmatch(version)
        if match is None:
            raise MigrationNumberingError(f"migration {version!r} is not named NNN_name")
        if int(match["number"]) != expected:
            raise MigrationNumberingError(
                f"migration {version!r} should be numbered {expected:03d}: every migration "
                "has a number of its own, one after the other"
            )


def migration_files() -> list[tuple[str, str]]:
    """Every migration, in the order they apply: (version, SQL)."""
    folder = resources.files("charter.storage") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    migrations = [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]
    check_numbering([version for version, _ in migrations])
    return migrations
