"""Approvals prove who decided: every way of deciding without the member's key is refused.

Each attempt goes through the real workflow and activities on a real database: a forged
update, another member's key, a replay into another proposal, run or parameters, a tampered
statement, an expired one, a revoked key, a front door speaking for the wrong member, and a
decision row slipped in with the application role's credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from charter.config.settings import Settings
from charter.crypto import statements
from charter.services import proofs
from charter.storage import Database, member_keys, runs
from charter.storage.member_keys import owner_tenant
from charter_cli import build_parser
from schemas import ActInput, Decision, ProposalEdit, ProposalState, RunRef, RunState
from tests.support.decided_runs import act_activities, actions, run_ref
from tests.support.running import start, until_stage
from tests.support.signing import decide, sign_for
from workflows import AgentLoop

APPROVE = Decision(proposal_id="p1", approver="maya", outcome="approve", reason="known studio")


async def _escalated(
    client: Client, tenant: str
) -> tuple[WorkflowHandle[Any, Any], RunRef, ProposalState]:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state: RunState = await until_stage(handle, "awaiting_decision")
    return handle, await run_ref(handle, tenant, "payables"), state.proposals[0]


async def _refused(handle: WorkflowHandle[Any, Any], decision: Decision) -> ApplicationError:
    """The raw update (not re-signed): refused, and nothing recorded."""
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await handle.execute_update(AgentLoop.decide, decision)
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError), cause
    state: RunState = await handle.query(AgentLoop.state)
    assert state.proposals[0].status == "awaiting_decision" and state.proposals[0].decisions == []
    return cause


def _binding(ref: RunRef, ps: ProposalState, **change: str) -> proofs.Binding:
    values = {
        "tenant_id": ref.tenant_id,
        "workflow_id": ref.workflow_id,
        "run_id": ref.run_id,
        "proposal_id": ps.proposal.proposal_id,
        "digest": runs.proposal_digest(ps.proposal),
        **change,
    }
    return proofs.Binding(**values)


def _signed(
    decision: Decision, tenant: str, binding: proofs.Binding, *, key_of: str = "", **kw: Any
) -> Decision:
    key = statements.load_key(tenant, key_of or decision.approver, Settings().member_key_folder)
    return proofs.sign_decision(decision, key, binding, kw.pop("now", datetime.now(UTC)), **kw)


async def _decision_rows(db: Database, tenant: str, workflow_id: str) -> int:
    async with db.tenant(tenant) as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM charter.decisions WHERE tenant_id = $1 AND workflow_id = $2",
            tenant,
            workflow_id,
        )
    return count


async def test_every_unproven_decision_is_refused_and_the_proven_one_executes(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle, ref, ps = await _escalated(client, tenant)
    other, other_ref, other_ps = await _escalated(client, tenant)

    # A forged update: a name and no signature.
    error = await _refused(handle, APPROVE)
    assert error.type == "UnsignedDecision" and "no signed statement" in error.message

    # A valid signature, by another member's key (sam signs a statement naming maya).
    error = await _refused(handle, _signed(APPROVE, tenant, _binding(ref, ps), key_of="sam"))
    assert error.type == "InvalidStatement" and "not 'maya''s key" in error.message

    # Maya's own statement, for another run: refused there, whatever its signature.
    for_other = _signed(APPROVE, tenant, _binding(other_ref, other_ps))
    error = await _refused(handle, for_other)
    assert error.type == "InvalidStatement" and "another workflow" in error.message
    # ... for another proposal of this run.
    error = await _refused(handle, _signed(APPROVE, tenant, _binding(ref, ps, proposal_id="p2")))
    assert error.type == "InvalidStatement" and "another proposal" in error.message
    # ... and replayed after an edit changed the parameters it approves.
    edited = APPROVE.model_copy(update={"edit": ProposalEdit(amount=Decimal("100.00"))})
    original = _signed(APPROVE, tenant, _binding(ref, ps))
    replayed = edited.model_copy(
        update={"statement": original.statement, "signature": original.signature}
    )
    error = await _refused(handle, replayed)
    assert error.type == "InvalidStatement"

    # A tampered digest: the text no longer matches its signature.
    good = _signed(APPROVE, tenant, _binding(ref, ps))
    assert good.statement is not None
    digest = runs.proposal_digest(ps.proposal)
    tampered = good.model_copy(update={"statement": good.statement.replace(digest, "0" * 64)})
    error = await _refused(handle, tampered)
    assert error.type == "InvalidStatement" and "signature does not verify" in error.message

    # An expired statement.
    stale = _signed(
        APPROVE, tenant, _binding(ref, ps), now=datetime.now(UTC) - timedelta(minutes=20)
    )
    error = await _refused(handle, stale)
    assert error.type == "InvalidStatement" and "expired" in error.message

    # The Slack front door speaking for maya with sam's Slack id.
    front_door = proofs.sign_decision(
        APPROVE,
        statements.front_door_key("slack", Settings().member_key_folder),
        _binding(ref, ps),
        datetime.now(UTC),
        via="slack",
        slack_user_id="U0SAM",
        slack_team_id="T0ACME",
    )
    error = await _refused(handle, front_door)
    assert error.type == "InvalidStatement" and "Slack id does not match" in error.message
    assert await _decision_rows(db, tenant, handle.id) == 0

    # Maya's own, fresh statement for exactly this: recorded, and the run executes.
    receipt = await decide(handle, APPROVE)
    assert receipt.status == "approved"
    assert (await handle.result()).proposals[0].status == "executed"
    # The same statement again, into the other run: refused (binding), never recorded twice.
    error = await _refused(other, for_other.model_copy(update={"reason": "changed"}))
    assert error.type == "InvalidStatement" and "differs" in error.message
    await other.terminate("test over")


async def test_a_revoked_key_signs_nothing(
    client: Client, worker: Worker, db: Database, admin_dsn: str, tenant: str
) -> None:
    handle, ref, ps = await _escalated(client, tenant)
    signed = _signed(APPROVE, tenant, _binding(ref, ps))
    async with owner_tenant(admin_dsn, tenant) as owner:
        revoked = await member_keys.revoke(
            owner, tenant, member_id="maya", for_cause=True, reason="laptop stolen"
        )
    assert len(revoked) == 1
    error = await _refused(handle, signed)
    assert error.type == "InvalidStatement" and "was not valid" in error.message
    await handle.terminate("test over")


async def test_a_row_slipped_in_with_the_app_role_executes_nothing(
    client: Client,
    worker: Worker,
    db: Database,
    tenant: str,
    admin_dsn: str,
    env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The attack: with the worker's own credentials, a decision row (its statement copied
    from another member's valid decision) and an approved exception, then `act` called
    directly. Refused, nothing executed, and `charter audit verify` names it."""
    handle, ref, ps = await _escalated(client, tenant)
    assert ps.exception_id is not None
    borrowed = sign_for(
        ref, ps, Decision(proposal_id="p1", approver="sam", outcome="approve", reason="x")
    )
    async with db.tenant(tenant) as conn:
        for approver, statement in (("maya", None), ("ola", borrowed)):
            await runs.record_decision(
                conn,
                tenant_id=tenant,
                workflow_id=handle.id,
                proposal_id="p1",
                approver=approver,
                outcome="approve",
                reason="forged",
                digest=runs.proposal_digest(ps.proposal),
                amendment_version=None,
                statement=statement.statement if statement else None,
                signature=statement.signature if statement else None,
            )
        await runs.close_exception(conn, tenant, ps.exception_id, "approved")
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            act_activities(db).act, ActInput(run=ref, proposal=ps.proposal)
        )
    assert refused.value.type == "NotAuthorised" and "no recorded approval" in refused.value.message
    assert await actions(db, tenant) == []

    monkeypatch.setenv("DATABASE_URL", admin_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("CHARTER_STATE_DIR", str(tmp_path))
    args = build_parser().parse_args(["audit", "verify", "--tenant", tenant])
    capsys.readouterr()
    assert await args.func(args) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"{tenant}: exception {ps.exception_id} is approved but no verified decision" in out
    await handle.terminate("test over")


async def test_the_app_role_cannot_register_change_or_delete_a_key(
    db: Database, admin_dsn: str, tenant: str
) -> None:
    key_id = "mk-" + "0" * 16
    async with db.tenant(tenant) as conn:
        for sql in (
            "INSERT INTO charter.member_keys (tenant_id, key_id, kind, member_id, public_key, "
            f"registered_by) VALUES ($1, '{key_id}', 'member', 'leo', '{'a' * 64}', 'x')",
            "UPDATE charter.member_keys SET revoked_at = now() WHERE tenant_id = $1",
            "DELETE FROM charter.member_keys WHERE tenant_id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(sql, tenant)
        listed = await member_keys.listed(conn, tenant)
    assert {k.member_id for k in listed if k.kind == "member"} == {"maya", "sam"}
    # The owner may revoke, but never swap the key material (the trigger) nor delete the
    # record (no policy admits a delete: nothing is deleted).
    async with owner_tenant(admin_dsn, tenant) as owner:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with owner.transaction():
                await owner.execute(
                    f"UPDATE charter.member_keys SET public_key = '{'b' * 64}' "
                    "WHERE tenant_id = $1",
                    tenant,
                )
        assert (
            await owner.execute("DELETE FROM charter.member_keys WHERE tenant_id = $1", tenant)
            == "DELETE 0"
        )
        assert len(await member_keys.listed(owner, tenant)) == len(listed)
        revoked = await member_keys.revoke(
            owner, tenant, member_id="sam", for_cause=False, reason="left"
        )
        assert len(revoked) == 1
