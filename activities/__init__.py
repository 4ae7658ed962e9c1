"""Activities: everything the agent loop and the audit checkpoints do that touches the world."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities._deps import Deps
from activities.act import ActActivities, NotAuthorised
from activities.checkpoint import CheckpointActivities
from activities.decisions import DecisionActivities
from activities.exceptions import ExceptionActivities
from activities.read import ReadActivities
from activities.reason import ReasonActivities
from activities.run import RunActivities

__all__ = ["ActActivities", "CheckpointActivities", "Deps", "NotAuthorised", "all_activities"]


def all_activities(deps: Deps) -> list[Callable[..., Any]]:
    run, read, reason = RunActivities(deps), ReadActivities(deps), ReasonActivities(deps)
    exceptions, decisions, act = (
        ExceptionActivities(deps),
        DecisionActivities(deps),
        ActActivities(deps),
    )
    return [
        run.start_run,
        run.finish_run,
        read.observe,
        reason.reason,
        reason.record_reasoning_failure,
        exceptions.record_verdict,
        exceptions.record_verdicts,
        exceptions.record_exception_event,
        decisions.record_decision,
        act.act,
        CheckpointActivities(deps).checkpoint_audit,
    ]
