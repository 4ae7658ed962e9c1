"""Proofs of who decided: a decision counts only with a statement its member's key signed.

`record_decision` asks `check_new` before recording (signature, key status, binding to this
run, proposal and parameters, validity window, unused nonce); `act` asks
`proven_approvers`, which re-verifies every stored statement, so a decision row written by
anyone holding only the application role's credentials counts for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.crypto import statements
from charter.crypto.statements import StatementInvalid
from charter.storage import member_keys, runs
from charter.storage.member_keys import MemberKey
from schemas import Decision, DecisionStatement, Proposal, ProposalEdit, RunRef
from schemas.errors import ErrorType


class ProofRefused(Exception):
    def __init__(self, type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.type = type
        self.message = message


@dataclass(frozen=True)
class Binding:
    """What a statement must be about: this tenant's run, proposal and parameters."""

    tenant_id: str
    workflow_id: str
    run_id: str
    proposal_id: str
    digest: str

    @classmethod
    def of_run(cls, run: RunRef, proposal_id: str, digest: str) -> Binding:
        """The parameters (their digest) of one proposal of `run`."""
        return cls(run.tenant_id, run.workflow_id, run.run_id, proposal_id, digest)


def approved_parameters(proposal: Proposal, edit: ProposalEdit | None) -> Proposal:
    """The parameters an approval is bound to: the proposal, or the proposal as edited
    (the workflow applies an edit the same way before gating it again)."""
    if edit is None:
        return proposal
    return proposal.model_copy(update={"amount": edit.amount})


async def member_slack_id(conn: asyncpg.Connection, tenant_id: str, member_id: str) -> str | None:
    value = await conn.fetchval(
        "SELECT slack_user_id FROM charter.members WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )
    return str(value) if value is not None else None


async def _verified(
    conn: asyncpg.Connection, tenant_id: str, text: str, signature: str
) -> tuple[DecisionStatement, MemberKey]:
    """The statement and the key that signed it, if the signature verifies and the key may
    sign for the member it names; StatementInvalid otherwise."""
    claimed = statements.parse(text)
    key = await member_keys.get(conn, tenant_id, claimed.key_id)
    if key is None:
        raise StatementInvalid(f"key {claimed.key_id} is not registered for tenant {tenant_id!r}")
    statement = statements.verify(text, signature, key.public_key)
    if not key.valid_at(statement.issued_at):
        raise StatementInvalid(f"key {key.key_id} was not valid when the statement was issued")
    if key.kind == "member":
        if statement.via != "member" or key.member_id != statement.member_id:
            raise StatementInvalid(f"key {key.key_id} is not {statement.member_id!r}'s key")
    else:
        # A front door signs on a member's behalf only for the member whose registered id at
        # that front door is the one it verified.
        if key.front_door != statement.via:
            raise StatementInvalid(f"key {key.key_id} is not the {statement.via} front door's")
        registered = await member_slack_id(conn, tenant_id, statement.member_id)
        if registered is None or registered != statement.slack_user_id:
            raise StatementInvalid(
                f"{statement.member_id!r}'s registered Slack id does not match the statement's"
            )
    return statement, key


def _check_binding(statement: DecisionStatement, binding: Binding) -> None:
    for field in ("tenant_id", "workflow_id", "run_id", "proposal_id"):
        if getattr(statement, field) != getattr(binding, field):
            raise StatementInvalid(f"the statement is for another {field.removesuffix('_id')}")
    if statement.digest != binding.digest:
        raise StatementInvalid("the statement approves other parameters (digest mismatch)")


async def check_new(
    conn: asyncpg.Connection, binding: Binding, decision: Decision, now: datetime
) -> DecisionStatement:
    """The verified statement of a decision about to be recorded, or ProofRefused."""
    if decision.statement is None or decision.signature is None:
        raise ProofRefused(
            ErrorType.UNSIGNED_DECISION,
            f"decision by {decision.approver!r} carries no signed statement",
        )
    try:
        # Fresh first: a stale statement is refused whatever else it says.
        statements.check_window(statements.parse(decision.statement), now)
        statement, key = await _verified(
            conn, binding.tenant_id, decision.statement, decision.signature
        )
        if key.revoked_at is not None:
            raise StatementInvalid(f"key {key.key_id} is revoked")
        _check_binding(statement, binding)
        if statement.member_id != decision.approver:
            raise StatementInvalid(
                f"the statement is signed for {statement.member_id!r}, not {decision.approver!r}"
            )
        said = (
            statement.outcome,
            statement.reason,
            statement.edit,
            statement.amendment,
            statement.tolerance,
        )
        meant = (
            decision.outcome,
            decision.reason,
            decision.edit,
            decision.amendment,
            decision.tolerance,
        )
        if said != meant:
            raise StatementInvalid("the decision differs from the statement signed")
        used = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM charter.decisions WHERE tenant_id = $1 AND nonce = $2)",
            binding.tenant_id,
            statement.nonce,
        )
        if used:
            raise StatementInvalid("the statement's nonce was already used (a replay)")
    except StatementInvalid as exc:
        raise ProofRefused(ErrorType.INVALID_STATEMENT, str(exc)) from None
    return statement


async def proven_approvers(conn: asyncpg.Connection, binding: Binding) -> list[str]:
    """Distinct members whose approval of exactly `binding` is recorded with a statement that
    verifies against a key valid when it was signed. Rows without one count for nothing."""
    rows = await conn.fetch(
        "SELECT approver, statement, signature FROM charter.decisions WHERE tenant_id = $1 "
        "AND workflow_id = $2 AND proposal_id = $3 AND proposal_digest = $4 "
        "AND outcome = 'approve' ORDER BY decided_at, approver",
        binding.tenant_id,
        binding.workflow_id,
        binding.proposal_id,
        binding.digest,
    )
    proven: list[str] = []
    for row in rows:
        if row["statement"] is None or row["signature"] is None:
            continue
        try:
            statement, _ = await _verified(
                conn, binding.tenant_id, row["statement"], row["signature"]
            )
            _check_binding(statement, binding)
        except StatementInvalid:
            continue
        if (
            statement.outcome == "approve"
            and statement.member_id == row["approver"]
            and row["approver"] not in proven
        ):
            proven.append(row["approver"])
    return proven


async def audit_problems(
    conn: asyncpg.Connection, tenant_id: str, entries: Sequence[tuple[int, str, Mapping[str, Any]]]
) -> list[str]:
    """What the audit trail cannot prove, given its entries as (seq, kind, snapshot): each
    `decision` entry whose signed statement does not verify, and each approved exception or
    action executed on an approval with no verified `decision` entry behind it."""
    problems: list[str] = []
    proven: set[str] = set()
    for seq, kind, snapshot in entries:
        if kind != "decision":
            continue
        text, signature = snapshot.get("statement"), snapshot.get("signature")
        if not isinstance(text, str) or not isinstance(signature, str):
            problems.append(f"{tenant_id} seq {seq}: decision without a signed statement")
            continue
        try:
            await _verified(conn, tenant_id, text, signature)
        except StatementInvalid as exc:
            problems.append(f"{tenant_id} seq {seq}: decision statement does not verify: {exc}")
            continue
        proven.add(str(snapshot.get("exception_id")))
    for row in await conn.fetch(
        "SELECT exception_id FROM charter.exceptions WHERE tenant_id = $1 AND status = 'approved' "
        "ORDER BY exception_id",
        tenant_id,
    ):
        if row["exception_id"] not in proven:
            problems.append(
                f"{tenant_id}: exception {row['exception_id']} is approved but no verified "
                "decision entry records an approval"
            )
    for row in await conn.fetch(
        "SELECT idempotency_key, workflow_id, proposal_id FROM charter.actions WHERE "
        "tenant_id = $1 AND authorisation->>'kind' = 'approval' ORDER BY executed_at",
        tenant_id,
    ):
        if runs.exception_id_for(row["workflow_id"], row["proposal_id"]) not in proven:
            problems.append(
                f"{tenant_id}: action {row['idempotency_key']} executed on an approval that no "
                "verified decision entry records"
            )
    return problems


async def binding_for(
    conn: asyncpg.Connection,
    tenant_id: str,
    workflow_id: str,
    proposal_id: str,
    edit: ProposalEdit | None,
) -> Binding | None:
    """What a decision on a recorded proposal binds to, as a signer computes it: the run that
    proposed it and the digest of the parameters approved (edited, with an edit)."""
    row = await conn.fetchrow(
        "SELECT run_id, proposal FROM charter.proposals WHERE tenant_id = $1 AND "
        "workflow_id = $2 AND proposal_id = $3",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    if row is None:
        return None
    proposal = Proposal.model_validate_json(row["proposal"])
    if edit is None:
        # After an approve-with-edit, later approvals are of the edited parameters.
        edited = await conn.fetchval(
            "SELECT proposal FROM charter.proposal_edits WHERE tenant_id = $1 AND "
            "workflow_id = $2 AND proposal_id = $3 ORDER BY created_at DESC LIMIT 1",
            tenant_id,
            workflow_id,
            proposal_id,
        )
        if edited is not None:
            proposal = Proposal.model_validate_json(edited)
    approved = approved_parameters(proposal, edit)
    return Binding(
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        run_id=row["run_id"],
        proposal_id=proposal_id,
        digest=runs.proposal_digest(approved),
    )


def sign_decision(
    decision: Decision,
    key: Ed25519PrivateKey,
    binding: Binding,
    now: datetime,
    *,
    valid_minutes: int = 5,
    via: Literal["member", "slack"] = "member",
    slack_user_id: str | None = None,
    slack_team_id: str | None = None,
) -> Decision:
    """`decision` carrying a statement of itself signed with `key` (the member's own, or a
    front door's with `via` naming it)."""
    statement = DecisionStatement(
        tenant_id=binding.tenant_id,
        workflow_id=binding.workflow_id,
        run_id=binding.run_id,
        proposal_id=binding.proposal_id,
        digest=binding.digest,
        outcome=decision.outcome,
        edit=decision.edit,
        reason=decision.reason,
        amendment=decision.amendment,
        member_id=decision.approver,
        key_id=statements.key_id_for(statements.public_hex(key)),
        issued_at=now,
        valid_minutes=valid_minutes,
        nonce=statements.nonce(),
        via=via,
        slack_user_id=slack_user_id,
        slack_team_id=slack_team_id,
        tolerance=decision.tolerance,
    )
    text, signature = statements.sign(key, statement)
    return decision.model_copy(update={"statement": text, "signature": signature})
