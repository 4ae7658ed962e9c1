"""Decisions signed with passkeys: enrolled through an owner's one-time invitation, the
statement's digest as the WebAuthn challenge, and the assertion verified by
`record_decision`, by `act` and by `charter audit verify` like any other statement."""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from charter.crypto import passkeys
from charter.services import deciding, key_enrolment, membership, proofs
from charter.storage import Database, audit_trail, runs
from schemas import Decision
from schemas.errors import ErrorType
from tests.support.cli import run_main
from tests.support.passkey_authenticator import SoftAuthenticator
from tests.support.running import chain_ok, start, until_stage

ORIGIN, RP = "http://localhost:8300", "localhost"


async def enrol(
    admin_dsn: str, db: Database, tenant: str, member: str
) -> tuple[SoftAuthenticator, str]:
    invitation = await key_enrolment.invite_passkey(admin_dsn, tenant, member, actor="cli:maya")
    found = await key_enrolment.invitation(db, tenant, invitation.token)
    assert found.member_id == member
    device = SoftAuthenticator(RP, ORIGIN)
    challenge = secrets.token_bytes(32)
    passkey = passkeys.verify_registration(
        device.register(challenge), challenge=challenge, rp_id=RP, origin=ORIGIN
    )
    enrolled, key_id = await key_enrolment.enrol_passkey(db, tenant, invitation.token, passkey)
    assert enrolled == member
    # One use only.
    with pytest.raises(key_enrolment.InvitationUnusable, match="used already"):
        await key_enrolment.invitation(db, tenant, invitation.token)
    with pytest.raises(key_enrolment.InvitationUnusable):
        await key_enrolment.enrol_passkey(db, tenant, invitation.token, passkey)
    return device, key_id


async def test_an_invitation_is_for_an_active_member_and_its_own_tenant(
    admin_dsn: str, db: Database, tenant: str, pair: object
) -> None:
    with pytest.raises(key_enrolment.NotAnActiveMember):
        await key_enrolment.invite_passkey(admin_dsn, tenant, "nobody", actor="cli:maya")
    invitation = await key_enrolment.invite_passkey(admin_dsn, tenant, "sam", actor="cli:maya")
    other = pair.a  # type: ignore[attr-defined]
    with pytest.raises(key_enrolment.InvitationUnusable, match="not valid for this tenant"):
        await key_enrolment.invitation(db, other, invitation.token)
    with pytest.raises(key_enrolment.InvitationUnusable, match="not valid for this tenant"):
        await key_enrolment.invitation(db, tenant, invitation.token + "x")
    async with db.tenant(tenant) as conn:
        kinds = [e.kind async for e in audit_trail.entries(conn, tenant)]
    assert "passkey_invited" in kinds


async def test_the_application_role_cannot_register_a_passkey_without_an_invitation(
    db: Database, tenant: str
) -> None:
    async with db.tenant(tenant) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO charter.passkey_invitations (tenant_id, token_hash, member_id, "
                "created_by, expires_at) VALUES ($1, $2, 'sam', 'x', now() + interval '1 hour')",
                tenant,
                "0" * 64,
            )
    async with db.tenant(tenant) as conn:
        made = await conn.fetchval(
            "SELECT charter.enrol_passkey($1, 'mk-0000000000000000', 'aa', $2, 'localhost', $3)",
            "0" * 64,
            "A" * 20,
            ORIGIN,
        )
    assert made is None


async def _signed(
    db: Database,
    tenant: str,
    workflow_id: str,
    decision: Decision,
    device: SoftAuthenticator,
    key_id: str,
) -> Decision:
    to_sign = await deciding.statement_for_passkey(db, tenant, workflow_id, decision, key_id=key_id)
    assertion = device.assert_(passkeys.challenge_for(to_sign.text)).encoded()
    return deciding.signed(to_sign.text, assertion)


async def test_a_passkey_signed_approval_executes_and_a_tampered_one_does_not(
    client: Client, worker: Worker, db: Database, tenant: str, admin_dsn: str, cli_env: Path
) -> None:
    device, key_id = await enrol(admin_dsn, db, tenant, "sam")
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    proposal_id = state.proposals[0].proposal.proposal_id
    decision = Decision(proposal_id=proposal_id, approver="sam", outcome="approve", reason="ok")
    good = await _signed(db, tenant, handle.id, decision, device, key_id)
    assert good.signature is not None and good.signature.count(".") == 2

    # The same statement with another statement's assertion: refused, nothing recorded.
    other = await _signed(db, tenant, handle.id, decision, device, key_id)
    swapped = good.model_copy(update={"signature": other.signature})
    with pytest.raises(deciding.DecisionRefused) as refused:
        await deciding.send(client, handle.id, swapped)
    assert refused.value.type == ErrorType.INVALID_STATEMENT

    receipt = await deciding.send(client, handle.id, good)
    assert receipt.outcome == "approve" and receipt.approver == "sam"
    result = await handle.result()
    assert result.proposals[0].status == "executed"

    ran = await run_main("audit", "verify", "--tenant", tenant)
    assert ran.code == 0 and "verified" in ran.output, ran.output
    await chain_ok(db, tenant)

    # `act` re-verifies the stored assertion: altered, the approval counts for nothing.
    binding = await _binding(db, tenant, handle.id, proposal_id)
    async with db.tenant(tenant) as conn:
        exception = await runs.latest_exception(conn, tenant, handle.id, proposal_id)
        assert exception is not None
        opened_at = exception["opened_at"]
        assert await proofs.proven_approvers(conn, binding, opened_at) == ["sam"]
    admin = await asyncpg.connect(admin_dsn)
    try:
        # As one who can write the table at all would: past the guard that only lets a
        # supersession through.
        async with admin.transaction():
            await admin.execute("SET LOCAL session_replication_role = replica")
            await admin.execute(
                "UPDATE charter.decisions SET signature = $3 "
                "WHERE tenant_id = $1 AND workflow_id = $2",
                tenant,
                handle.id,
                other.signature,
            )
    finally:
        await admin.close()
    async with db.tenant(tenant) as conn:
        assert await proofs.proven_approvers(conn, binding, opened_at) == []

    # Revoked for cause, the passkey's decisions no longer verify: `audit verify` names them.
    await membership.revoke(
        admin_dsn,
        tenant,
        member_id=None,
        key_id=key_id,
        for_cause=True,
        keys_only=True,
        reason="lost",
        actor="cli:maya",
    )
    ran = await run_main("audit", "verify", "--tenant", tenant)
    assert ran.code != 0 and "decision statement does not verify" in ran.output, ran.output


async def _binding(db: Database, tenant: str, workflow_id: str, proposal_id: str) -> proofs.Binding:
    async with db.tenant(tenant) as conn:
        binding = await proofs.binding_for(conn, tenant, workflow_id, proposal_id, None)
    assert binding is not None
    return binding
