"""A stolen worker (the application role, Temporal access and the payload keys together)
cannot move one dollar beyond what an owner's key signed, and `charter audit verify` names
every forgery it leaves.

Every attack runs against the real workflow, activities and database: forged law, a forged
roster, a statement borrowed from another exception under a covering audit entry, a
superseded approval revived, a statement signed before its exception opened, a back-dated
statement from a key revoked for cause, and the database's own clocks and replay memory.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from charter.governance.constitution import parse_document
from charter.services import membership, proofs
from charter.storage import Database, constitution_versions, member_keys, runs
from charter_cli import build_parser
from tests.security.conftest import Verify
from tests.support.decided_runs import actions
from tests.support.running import start
from tests.support.stolen_worker import (
    act_directly,
    binding_of,
    escalated,
    signed_by,
    slip_in_approval,
)


async def _forge_law(db: Database, tenant: str, origin: str | None) -> int:
    """The latest version plus a rule allowing everything, through the one path the
    application role has to the law (the amendment function); its version."""
    async with db.tenant(tenant) as conn:
        latest = await constitution_versions.get(conn, tenant)
        raw = latest.document.model_dump(mode="json", exclude_none=True)
        rule = {
            "id": "allow-everything",
            "title": "Everything is fine",
            "applies_to": sorted(raw["action_types"]),
            "when": "true",
            "effect": "allow",
        }
        if origin is not None:
            rule["amendment"] = {"approved_by": "maya", "exception_id": origin, "from_version": 1}
        raw["rules"].insert(0, rule)
        raw["rules"].append(rule | {"id": "allow-everything-2"})
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO charter.constitutions (tenant_id, version, content_hash, "
                    "document, source, created_by) VALUES ($1, $2, 'x', $3::jsonb, 'x', 'maya')",
                    tenant,
                    latest.version + 1,
                    json.dumps(raw),
                )
        forged = await constitution_versions.save(
            conn,
            tenant,
            parse_document(raw),
            source="charter constitution apply",
            created_by="member:maya",
            amendment=True,
        )
    return forged.version


@pytest.mark.parametrize("origin", [None, "real-exception"], ids=["bare", "citing-an-exception"])
async def test_forged_law_pays_nothing_and_is_named(
    client: Client,
    worker: Worker,
    db: Database,
    tenant: str,
    verify: Verify,
    capsys: pytest.CaptureFixture[str],
    origin: str | None,
) -> None:
    cited = None
    if origin is not None:
        # A real exception to cite, so the forged rule looks like an amendment of it.
        handle, _, ps = await escalated(client, tenant)
        cited = ps.exception_id
        await handle.terminate("test over")
    version = await _forge_law(db, tenant, cited)
    # The gate, under the forged version, would pay the $1,440 Figma bill and more.
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    assert await actions(db, tenant) == []
    code, out = await verify(tenant)
    assert code == 1 and f"constitution v{version}" in out
    # The history shows it for what it is, whoever it claims made it.
    args = build_parser().parse_args(["constitution", "history", "-t", tenant, "--json"])
    capsys.readouterr()
    assert await args.func(args) == 0
    history = {v["version"]: v for v in json.loads(capsys.readouterr().out)}
    assert history[version]["created_by"] == "member:maya" and history[version]["unproven"]
    assert history[1]["made_by"] == "owner" and history[1]["unproven"] is None


async def test_the_roster_is_not_writable(db: Database, tenant: str) -> None:
    """No owner added with an arbitrary Slack id, no Slack id given to another member, no
    role raised, no member removed: the application role reads the roster only."""
    async with db.tenant(tenant) as conn:
        for sql in (
            "INSERT INTO charter.members (tenant_id, member_id, display_name, roles, "
            "slack_user_id) VALUES ($1, 'mallory', 'M', '{owner,approver}', 'U0EVIL')",
            "UPDATE charter.members SET slack_user_id = 'U0MAYA' WHERE tenant_id = $1 "
            "AND member_id = 'sam'",
            "UPDATE charter.members SET roles = '{owner,approver}' WHERE tenant_id = $1 "
            "AND member_id = 'leo'",
            "DELETE FROM charter.members WHERE tenant_id = $1 AND member_id = 'sam'",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(sql, tenant)
        rows = await conn.fetch(
            "SELECT member_id, slack_user_id FROM charter.members WHERE tenant_id = $1 "
            "ORDER BY member_id",
            tenant,
        )
    assert ("mallory", "U0EVIL") not in [tuple(r) for r in rows]
    assert dict((r["member_id"], r["slack_user_id"]) for r in rows)["sam"] == "U0SAM"


async def test_a_statement_borrowed_from_another_exception_pays_nothing_and_is_named(
    client: Client,
    worker: Worker,
    db: Database,
    tenant: str,
    verify: Verify,
) -> None:
    """Maya really signed an approval, of another exception; copied in with a covering
    `decision` entry, it approves nothing here, and verify says so at its seq."""
    handle, ref, ps = await escalated(client, tenant)
    other, other_ref, other_ps = await escalated(client, tenant)
    borrowed = signed_by("maya", binding_of(other_ref, other_ps))
    await slip_in_approval(db, ref, ps, borrowed)
    refused = await act_directly(db, ref, ps)
    assert refused.type == "NotAuthorised"
    code, out = await verify(tenant)
    assert code == 1
    assert "decision statement does not verify: the statement is for another workflow" in out
    assert f"exception {ps.exception_id} is approved but no verified decision" in out
    for h in (handle, other):
        await h.terminate("test over")


async def test_a_superseded_approval_cannot_be_revived(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """An approval superseded when its exception was sent back stays superseded: the row
    cannot be revived, nor its statement recorded again, nor counted for the new exception."""
    handle, ref, ps = await escalated(client, tenant)
    assert ps.exception_id is not None
    approval = signed_by("maya", binding_of(ref, ps))
    await slip_in_approval(db, ref, ps, approval, cover=False)
    async with db.tenant(tenant) as conn:
        await runs.supersede_decisions(conn, tenant, ref.workflow_id, "p1", by="ex-again")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute(
                    "UPDATE charter.decisions SET superseded_by = NULL WHERE tenant_id = $1",
                    tenant,
                )
    with pytest.raises(asyncpg.UniqueViolationError):
        await slip_in_approval(db, ref, ps, approval, cover=False)
    refused = await act_directly(db, ref, ps)
    assert refused.type == "NotAuthorised" and "no recorded approval" in refused.message
    await handle.terminate("test over")


async def test_a_statement_signed_before_its_exception_opened_counts_for_nothing(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """A valid approval of the first exception, left in force while a second exception is
    opened (and closed approved) for the same proposal: it is not an approval of the second."""
    handle, ref, ps = await escalated(client, tenant)
    assert ps.exception_id is not None
    await slip_in_approval(db, ref, ps, signed_by("maya", binding_of(ref, ps)), cover=False)
    async with db.tenant(tenant) as conn:
        await runs.open_exception(
            conn,
            tenant_id=tenant,
            exception_id="ex-second",
            workflow_id=ref.workflow_id,
            proposal_id="p1",
            agent="payables",
            context={},
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        await runs.close_exception(conn, tenant, "ex-second", "approved")
    refused = await act_directly(db, ref, ps)
    assert refused.type == "NotAuthorised" and "no recorded approval" in refused.message
    await handle.terminate("test over")


async def test_a_key_revoked_routinely_then_for_cause_proves_nothing_it_signed(
    client: Client, worker: Worker, db: Database, admin_dsn: str, tenant: str
) -> None:
    """Maya's key revoked routinely (what it signed before still counts), then for cause
    (her laptop was stolen after all): the revocation is raised to for cause, and nothing
    the key signed counts any more, though it was signed and recorded before either."""
    handle, ref, ps = await escalated(client, tenant)
    binding = binding_of(ref, ps)
    await slip_in_approval(db, ref, ps, signed_by("maya", binding), cover=False)
    exception = await _exception(db, ref.tenant_id, ref.workflow_id)
    proven = []
    for for_cause in (False, True):
        await membership.revoke(
            admin_dsn,
            tenant,
            member_id="maya",
            key_id=None,
            for_cause=for_cause,
            keys_only=True,
            reason="laptop",
            actor="cli:test",
        )
        async with db.tenant(tenant) as conn:
            proven.append(await proofs.proven_approvers(conn, binding, exception))
    assert proven == [["maya"], []]
    async with member_keys.owner_tenant(admin_dsn, tenant) as owner:
        keys = [k for k in await member_keys.listed(owner, tenant) if k.member_id == "maya"]
    assert keys and all(k.revoked_at is not None and k.revoked_for_cause for k in keys)
    refused = await act_directly(db, ref, ps)
    assert refused.type == "NotAuthorised"
    await handle.terminate("test over")


async def _exception(db: Database, tenant: str, workflow_id: str) -> datetime:
    async with db.tenant(tenant) as conn:
        exception = await runs.latest_exception(conn, tenant, workflow_id, "p1")
    assert exception is not None
    opened: datetime = exception["opened_at"]
    return opened


async def test_a_recorded_time_is_the_databases(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """Decisions and exceptions carry the database's time, whatever the writer says, so a
    statement's window and its exception's opening are judged on times it cannot choose."""
    handle, ref, _ = await escalated(client, tenant)
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "INSERT INTO charter.decisions (tenant_id, workflow_id, proposal_id, approver, "
            "outcome, proposal_digest, decided_at) VALUES ($1, $2, 'p1', 'sam', 'approve', "
            "'d', now() - interval '1 day')",
            tenant,
            ref.workflow_id,
        )
        age = await conn.fetchval(
            "SELECT now() - decided_at FROM charter.decisions WHERE tenant_id = $1 AND "
            "workflow_id = $2 AND approver = 'sam'",
            tenant,
            ref.workflow_id,
        )
        assert age == timedelta(0)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute(
                    "UPDATE charter.exceptions SET opened_at = now() - interval '1 day' "
                    "WHERE tenant_id = $1",
                    tenant,
                )
    await handle.terminate("test over")


async def test_the_replay_memory_keeps_no_row_for_a_hundred_years(
    db: Database, admin: asyncpg.Connection
) -> None:
    async with db.pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT charter.slack_request_first_seen('v0=stolen-worker', now() + interval '100 years')"
        )
    kept = await admin.fetchval(
        "SELECT expires_at - now() FROM charter_meta.slack_requests WHERE signature = "
        "'v0=stolen-worker'"
    )
    assert kept <= timedelta(minutes=15)
