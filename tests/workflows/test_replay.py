"""Determinism: committed histories of past AgentLoop and AuditCheckpoint runs must replay on
today's code.

A change to workflows/ that alters the commands a run produces breaks this test; guard such
changes with `workflow.patched(...)` and record a new history beside the old ones
(`CHARTER_RECORD_HISTORIES=1 pytest tests/workflows/test_agent_loop.py tests/workflows/test_expiry.py`, and
`tests/workflows/test_audit_checkpoint_hermetic.py` for `AuditCheckpoint`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from charter.config.settings import Settings
from charter.temporal.plugin import CharterPlugin
from tests.support.paths import HISTORIES
from workflows import AgentLoop, AuditCheckpoint

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_histories_are_committed() -> None:
    names = {p.stem for p in RECORDED}
    assert {"auto_execute_and_deny", "escalate_approve_act", "escalate_expire"} <= names
    # Quorum and approve-with-edit paths.
    assert {"quorum_two_approvers", "escalate_edit_approve", "quorum_edit_approve"} <= names
    # A final act refusal fails its proposal, not the run; decisions retry a bounded number
    # of times (patches act-refusal-fails-the-proposal, bounded-decision-retries).
    assert "act_refusal_fails_the_proposal" in names
    # Re-judged at execution, sent back to a human, approved (patch act-sends-back-to-humans).
    assert "act_sends_back_to_humans" in names
    # An act sent back to a human while the run waits beside its acts is waited for
    # (patch wait-for-acts-that-send-back).
    assert {"act_sends_back_beside_the_wait", "approval_sent_back_beside_the_wait"} <= names
    # Search attributes upserted only when a value changes (patch search-attributes-on-change).
    assert {
        "escalate_approve_act_upserts_on_change",
        "auto_execute_and_deny_upserts_on_change",
    } <= names
    # Audit checkpoints: signed (by the real activity on a schedule, and by a stub), a broken
    # chain failing the run, a sink retried.
    assert {
        "audit_checkpoint_scheduled",
        "audit_checkpoint_signed",
        "audit_checkpoint_chain_broken",
        "audit_checkpoint_sink_retried",
    } <= names
    # A run's start, verdicts (all in one call) and end as local activities
    # (patch local-run-records).
    assert {
        "auto_execute_and_deny_local_records",
        "escalate_approve_act_local_records",
        "escalate_expire_local_records",
        "verdicts_recorded_together",
    } <= names
    # A reason activity out of retries escalates (patch reason-exhaustion-escalates).
    assert "reason_retries_exhausted" in names
    # A bare number in a rule reads in the base currency (patch law-reads-base-currency).
    assert "law_reads_base_currency" in names
    # Limits convert other currencies with the observation's rates (patch
    # limits-count-every-currency).
    assert "limits_count_every_currency" in names
    # Cash is counted in the proposal's currency (patch cash-in-the-proposals-currency).
    assert "cash_in_the_proposals_currency" in names
    # Books a provider kept turning away escalate (patch unreadable-books-escalate).
    assert "unreadable_books_escalate" in names


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())  # noqa: ASYNC240
    replayer = Replayer(
        workflows=[AgentLoop, AuditCheckpoint], plugins=[CharterPlugin.from_settings(Settings())]
    )
    # Raises on any nondeterminism.
    await replayer.replay_workflow(history)
