"""One-line summaries of a run's activities for the Temporal UI ("gate p2: escalate",
"act p3"). Temporal stores them as user metadata, which the payload codec encrypts like any
payload: readable through the codec server, ciphertext without it. Still only ids and
enumerated outcomes, so nothing in them needs the codec to stay private."""

from __future__ import annotations

from typing import Any

_PLAIN = {
    "observe": "read the books",
    "reason": "reason",
    "start_run": "start",
    "finish_run": "finish",
    "record_reasoning_failure": "reasoning failed: escalate",
}


def activity_summary(activity: Any, arg: Any) -> str:
    """The summary of calling `activity` (a method reference) with `arg`."""
    definition = getattr(activity, "__temporal_activity_definition", None)
    name = definition.name if definition is not None else getattr(activity, "__name__", "")
    proposal = getattr(arg, "proposal", None)
    pid = proposal.proposal_id if proposal is not None else getattr(arg, "proposal_id", None)
    if name == "record_verdict":
        return f"gate {pid}: {arg.verdict.outcome}"
    if name == "record_verdicts":
        return "gate " + ", ".join(
            f"{g.proposal.proposal_id}: {g.verdict.outcome}" for g in arg.gated
        )
    if name == "record_decision":
        return f"decision {pid}: {arg.decision.outcome}"
    if name == "act":
        return f"act {pid}"
    if name == "record_exception_event":
        return f"{arg.event} {pid}"
    return _PLAIN.get(name, str(name))
