"""`charter usage` and `charter calibration`, from the library and through the CLI's `main`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from charter.governance import calibration
from charter.storage import Database, audit_trail, usage
from charter.storage import calibration_outcomes as stored
from tests.support.claude_runs import charter_cli, pay, start
from tests.support.standins.messages_api import FakeMessagesApi, tool_reply


async def test_usage_is_recorded_per_run_and_summarised(
    client: Client,
    claude_worker: Worker,
    fake_api: FakeMessagesApi,
    db: Database,
    tenant: str,
    admin_dsn: str,
    tmp_path: Path,
) -> None:
    fake_api.script(
        tenant,
        tool_reply([pay("INV-1042", "1440.00", "Figma")], output_tokens=111),
        tool_reply([], output_tokens=7),
    )
    for _ in range(2):
        await (await start(client, tenant, "payables", focus=["INV-1042"])).result()
    async with db.tenant(tenant) as conn:
        logged = [
            e.snapshot["usage"]
            async for e in audit_trail.entries(conn, tenant)
            if e.kind == "proposed"
        ]
        [summary] = await usage.summarise(conn, tenant)
    assert len(logged) == 2
    assert summary.agent == "payables" and summary.model == "claude-sonnet-4-6"
    assert summary.runs == 2 and summary.requests == 2
    assert summary.output_tokens == 118
    for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert getattr(summary, field) == sum(u[field] for u in logged)

    code, out = await charter_cli(admin_dsn, client, tmp_path, "usage", "--tenant", tenant)
    assert code == 0, out
    assert tenant in out and "payables" in out and "claude-sonnet-4-6" in out
    assert f"{summary.input_tokens:,}" in out and "118" in out

    code, out = await charter_cli(admin_dsn, client, tmp_path, "usage", "--since", "yesterday")
    assert code == 2 and "is not a date" in out


async def _record(
    db: Database,
    tenant: str,
    agent: str,
    action: str,
    confidence: float,
    verdict: str,
    *,
    decision: str | None = None,
    expired: bool = False,
) -> None:
    workflow_id, proposal_id = f"wf-{uuid.uuid4().hex[:8]}", "p1"
    proposal = {"action": action, "confidence": confidence, "rationale": "test"}
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "INSERT INTO charter.proposals (tenant_id, workflow_id, proposal_id, run_id, agent, "
            "action, proposal, verdict, outcome, constitution_version) "
            "VALUES ($1,$2,$3,'run',$4,$5,$6::jsonb,'{}'::jsonb,$7,1)",
            tenant,
            workflow_id,
            proposal_id,
            agent,
            action,
            json.dumps(proposal),
            verdict,
        )
        if verdict != "escalate":
            return
        status = {"approve": "approved", "reject": "rejected"}.get(decision or "", "open")
        await conn.execute(
            "INSERT INTO charter.exceptions (tenant_id, exception_id, workflow_id, proposal_id, "
            "agent, status, context, expires_at) VALUES ($1,$2,$3,$4,$5,$6,'{}'::jsonb, now())",
            tenant,
            f"ex-{uuid.uuid4().hex[:10]}",
            workflow_id,
            proposal_id,
            agent,
            "expired" if expired else status,
        )
        if decision:
            await conn.execute(
                "INSERT INTO charter.decisions (tenant_id, workflow_id, proposal_id, approver, "
                "outcome, reason, proposal_digest) VALUES ($1,$2,$3,'maya',$4,'','digest')",
                tenant,
                workflow_id,
                proposal_id,
                decision,
            )


@pytest.fixture
async def calibrated_tenant(db: Database, tenant: str) -> str:
    pay_, budget = ("payables", "schedule_payment"), ("marketing", "adjust_campaign_budget")
    for _ in range(4):
        await _record(db, tenant, *pay_, 0.95, "execute")
    for _ in range(6):
        await _record(db, tenant, *pay_, 0.9, "escalate", decision="approve")
    for decision in ("approve", "approve", "approve", "reject"):
        await _record(db, tenant, *pay_, 0.85, "escalate", decision=decision)
    for decision in ("approve", "reject", "reject", "reject", "reject"):
        await _record(db, tenant, *pay_, 0.6, "escalate", decision=decision)
    await _record(db, tenant, *pay_, 0.7, "escalate", expired=True)
    await _record(db, tenant, *pay_, 0.75, "escalate")
    for _ in range(2):
        await _record(db, tenant, *pay_, 0.99, "deny")
    for _ in range(2):
        await _record(db, tenant, *budget, 0.8, "escalate", decision="approve")
    return tenant


async def test_calibration_sets_confidence_beside_outcome(
    db: Database, calibrated_tenant: str
) -> None:
    tenant = calibrated_tenant
    async with db.tenant(tenant) as conn:
        rows = await stored.outcomes(conn, tenant)
    result = calibration.report(tenant, rows, target=0.9, min_decisions=5)
    budget, payments = result.groups
    assert (payments.agent, payments.action) == ("payables", "schedule_payment")
    assert payments.counts == {
        "approved": 10,
        "auto_executed": 4,
        "denied": 2,
        "expired": 1,
        "pending": 1,
        "rejected": 5,
    }
    by_bin = {round(b.lower, 1): b for b in payments.bins if b.proposals}
    assert (by_bin[0.6].decided, by_bin[0.6].agreed) == (5, 1)
    assert (by_bin[0.7].proposals, by_bin[0.7].decided, by_bin[0.7].agreement) == (2, 0, None)
    assert (by_bin[0.8].decided, by_bin[0.8].agreed) == (4, 3)
    assert (by_bin[0.9].proposals, by_bin[0.9].decided, by_bin[0.9].agreement) == (12, 6, 1.0)
    suggestion = payments.suggestion
    assert suggestion.min_confidence == 0.85
    assert (suggestion.decisions, suggestion.agreement) == (10, 0.9)
    assert suggestion.lower_bound is not None and 0.55 < suggestion.lower_bound < 0.9
    assert budget.suggestion.min_confidence is None
    assert "not enough human decisions (2 < 5)" in budget.suggestion.note


async def test_calibration_cli_prints_and_plots(
    client: Client, admin_dsn: str, calibrated_tenant: str, tmp_path: Path
) -> None:
    png = tmp_path / "plots" / "calibration.png"
    code, out = await charter_cli(
        admin_dsn, client, tmp_path, "calibration", "--tenant", calibrated_tenant, "--out", str(png)
    )
    assert code == 0, out
    assert "payables · schedule_payment" in out
    assert "suggested min_confidence: 0.85" in out
    assert "marketing · adjust_campaign_budget" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, out = await charter_cli(
        admin_dsn, client, tmp_path, "calibration", "--tenant", calibrated_tenant, "--target", "2"
    )
    assert code == 2 and "--target must be in (0, 1]" in out


def test_wilson_lower_bound() -> None:
    assert calibration.wilson_lower_bound(0, 0) == 0.0
    assert calibration.wilson_lower_bound(10, 10) == pytest.approx(0.7225, abs=1e-3)
    assert calibration.wilson_lower_bound(5, 10) < 0.5 < calibration.wilson_lower_bound(50, 60)
