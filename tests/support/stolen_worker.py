"""The attacker of the stolen-worker suite: the application role's credentials, Temporal
access (a direct call of any activity) and the payload keys, and nothing an owner holds.

What it does is what the worker could do with those: write every row the application role
may write, append audit entries through the append function, and call `act` directly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from charter.config.settings import Settings
from charter.crypto import statements
from charter.crypto.anchors import TrustAnchors
from charter.services import proofs
from charter.storage import Database, audit_trail, runs
from charter_cli import build_parser
from schemas import ActInput, Decision, ProposalState, RunRef, RunState
from tests.support.decided_runs import act_activities, actions, run_ref
from tests.support.running import start, until_stage

APPROVE = Decision(proposal_id="p1", approver="maya", outcome="approve", reason="known studio")


async def escalated(
    client: Client, tenant: str, invoice: str = "INV-1043"
) -> tuple[WorkflowHandle[Any, Any], RunRef, ProposalState]:
    """A payables run waiting for a human on one proposal."""
    handle = await start(client, tenant, "payables", focus=[invoice])
    state: RunState = await until_stage(handle, "awaiting_decision")
    return handle, await run_ref(handle, tenant, "payables"), state.proposals[0]


def binding_of(ref: RunRef, ps: ProposalState) -> proofs.Binding:
    return proofs.Binding.of_run(ref, ps.proposal.proposal_id, runs.proposal_digest(ps.proposal))


def signed_by(
    member: str, binding: proofs.Binding, *, now: datetime | None = None, **kw: Any
) -> Decision:
    """A statement `member` really signed with their enrolled key (bound to `binding`)."""
    key = statements.load_key(binding.tenant_id, member, Settings().member_key_folder)
    decision = APPROVE.model_copy(update={"approver": member})
    return proofs.sign_decision(decision, key, binding, now or datetime.now(UTC), **kw)


async def slip_in_approval(
    db: Database, ref: RunRef, ps: ProposalState, decision: Decision, *, cover: bool = True
) -> None:
    """A decision row carrying `decision`'s statement, the exception closed as approved and,
    with `cover`, a `decision` audit entry that looks like the one `record_decision` writes."""
    assert ps.exception_id is not None and decision.statement is not None
    nonce = statements.parse(decision.statement).nonce
    async with db.tenant(ref.tenant_id) as conn:
        await runs.record_decision(
            conn,
            tenant_id=ref.tenant_id,
            workflow_id=ref.workflow_id,
            proposal_id=ps.proposal.proposal_id,
            approver=decision.approver,
            outcome="approve",
            reason=decision.reason,
            digest=runs.proposal_digest(ps.proposal),
            amendment_version=None,
            statement=decision.statement,
            signature=decision.signature,
            nonce=nonce,
        )
        await runs.close_exception(conn, ref.tenant_id, ps.exception_id, "approved")
        if cover:
            snapshot = {
                "exception_id": ps.exception_id,
                "decision": decision.model_dump(mode="json"),
                "statement": decision.statement,
                "signature": decision.signature,
                "approved": ps.proposal.model_dump(mode="json"),
                "status": "approved",
            }
            await audit_trail.append(
                conn, ref.tenant_id, "decision", snapshot, actor=f"member:{decision.approver}"
            )


async def act_directly(
    db: Database, ref: RunRef, ps: ProposalState, anchors: TrustAnchors | None = None
) -> ApplicationError:
    """`act` called with Temporal access: refused (the error returned), nothing executed."""
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            act_activities(db, anchors).act, ActInput(run=ref, proposal=ps.proposal)
        )
    assert await actions(db, ref.tenant_id) == []
    return refused.value


async def audit_verify(
    tenant: str,
    admin_dsn: str,
    env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    """`charter audit verify --tenant`: its exit code and its output on one line."""
    monkeypatch.setenv("DATABASE_URL", admin_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("CHARTER_STATE_DIR", str(tmp_path))
    args = build_parser().parse_args(["audit", "verify", "--tenant", tenant])
    capsys.readouterr()
    code = await args.func(args)
    return code, " ".join(capsys.readouterr().out.split())
