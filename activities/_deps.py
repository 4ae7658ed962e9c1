"""What activities need from the outside world, injected by the worker."""

from __future__ import annotations

from dataclasses import dataclass

from charter.reasoners import Reasoner
from charter.storage import Database


@dataclass(frozen=True)
class Deps:
    db: Database
    reasoner: Reasoner
