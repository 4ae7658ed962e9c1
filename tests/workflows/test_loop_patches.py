"""What the committed histories say about retiring each patch of the workflows
(docs/architecture.md, "Retiring a patch").

Deprecating a patch deletes its old branch. For each patch, the replay suite is run as if it
were deprecated (`workflow.patched` calling `workflow.deprecate_patch` and taking the new
branch, as the deprecated code would): the histories it then refuses are the ones that need
the old branch. They stand for runs that passed the patch under older code; the rule retires
them, with the patch's old branch, only once no such run can still be replayed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow

from charter.config.settings import Settings
from charter.temporal.plugin import CharterPlugin
from tests.support.replaying import load, replay_failures
from workflows import AgentLoop, AuditCheckpoint

ROOT = Path(__file__).parent.parent.parent
HISTORIES = sorted((ROOT / "tests" / "histories").glob("*.json"))
_PATCHED = re.compile(r'workflow\.patched\(\s*"([^"]+)"')

# A history recorded before a patch needs its old branch if it reaches the patch's point and
# the new branch would issue other commands there. Oldest patch first, each set holds the
# one before it.
_BEFORE_SEARCH_ATTRIBUTES_ON_CHANGE = frozenset(
    {
        "act_refusal_fails_the_proposal",
        "agent_loop_escalate_approve_encrypted",
        "auto_execute_and_deny",
        "claude_tool_use",
        "decision_by_signal",
        "escalate_approve_act",
        "escalate_edit_approve",
        "escalate_expire",
        "escalate_reject",
        "gate_sees_earlier_proposals",
        "quorum_edit_approve",
        "quorum_two_approvers",
        "verdict_without_records",
    }
)
_BEFORE_ACT_BESIDE_THE_WAIT = _BEFORE_SEARCH_ATTRIBUTES_ON_CHANGE | {
    "act_sends_back_to_humans",
    "approval_sent_back_anew",
    "auto_execute_and_deny_upserts_on_change",
    "escalate_approve_act_upserts_on_change",
}
_BEFORE_LOCAL_RUN_RECORDS = _BEFORE_ACT_BESIDE_THE_WAIT | {
    "act_beside_the_wait",
    "act_retries_exhausted",
    "act_sends_back_beside_the_wait",
    "approval_sent_back_beside_the_wait",
    "reasoning_failure_escalates",
}

#: Every patch the workflows hold, and the committed histories that need its old branch. A
#: patch with none is one whose old branch no committed history replays: for it, only the
#: operator's check that no older run is left guards the deprecation.
OLD_BRANCH_NEEDED_BY: dict[str, frozenset[str]] = {
    "act-beside-the-wait": _BEFORE_ACT_BESIDE_THE_WAIT,
    "act-refusal-fails-the-proposal": frozenset(),
    "act-sends-back-to-humans": frozenset(),
    "approval-sent-back-anew": frozenset(),
    "bounded-decision-retries": frozenset(),
    "cash-in-the-proposals-currency": frozenset(),
    "exhausted-act-fails-the-proposal": frozenset(),
    "law-reads-base-currency": frozenset(),
    "limits-count-every-currency": frozenset(),
    "local-run-records": _BEFORE_LOCAL_RUN_RECORDS,
    "reasoning-failure-escalates": frozenset(),
    "reason-exhaustion-escalates": frozenset(),
    "search-attributes-on-change": _BEFORE_SEARCH_ATTRIBUTES_ON_CHANGE,
    "unreadable-books-escalate": frozenset(),
    "wait-for-acts-that-send-back": frozenset({"act_retries_exhausted"}),
}


def patches_in_workflows() -> set[str]:
    sources = (p.read_text(encoding="utf-8") for p in (ROOT / "workflows").glob("*.py"))
    return {patch for source in sources for patch in _PATCHED.findall(source)}


def deprecated(patch: str, patched: Callable[..., bool]) -> Callable[..., bool]:
    """`workflow.patched` as the code with `patch` deprecated behaves at that call."""

    def as_if_deprecated(patch_id: str, **kwargs: Any) -> bool:
        if patch_id != patch:
            return patched(patch_id, **kwargs)
        workflow.deprecate_patch(patch_id, **kwargs)
        return True

    return as_if_deprecated


def test_every_patch_is_listed() -> None:
    assert patches_in_workflows() == set(OLD_BRANCH_NEEDED_BY)


@pytest.mark.parametrize("patch", sorted(OLD_BRANCH_NEEDED_BY))
async def test_deprecating_a_patch_refuses_exactly_the_histories_needing_its_old_branch(
    patch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workflows' modules use the SDK's `workflow` module itself (passed through the
    # sandbox), so the replayer's runs see the replacement.
    monkeypatch.setattr(workflow, "patched", deprecated(patch, workflow.patched))
    refused = await replay_failures(
        [load(path) for path in HISTORIES],
        [AgentLoop, AuditCheckpoint],
        [CharterPlugin.from_settings(Settings())],
    )
    assert set(refused) == OLD_BRANCH_NEEDED_BY[patch], sorted(refused)
