"""Proofs of who decided: a decision counts only with a statement its member's key signed.

`record_decision` asks `check_new` before recording (signature, key status, binding to this
run, proposal and parameters, validity window, unused nonce); `act` asks
`proven_approvers`, which re-verifies every stored statement, so a decision row written by
anyone holding only the application role's credentials counts for nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

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


SlackIdOf = Callable[[str], Awaitable[str | None]]
"""A member's registered Slack id, as of the statement being checked (by member id)."""

KeyCheck = Callable[[DecisionStatement, MemberKey, SlackIdOf], Awaitable[None]]
"""What a key of one kind may sign: raises StatementInvalid if not this statement."""


async def _member_key_signs(statement: DecisionStatement, key: MemberKey, _: SlackIdOf) -> None:
    if statement.via != "member" or key.member_id != statement.member_id:
        raise StatementInvalid(f"key {key.key_id} is not {statement.member_id!r}'s key")


async def _front_door_signs(
    statement: DecisionStatement, key: MemberKey, slack_id_of: SlackIdOf
) -> None:
    # A front door signs on a member's behalf only for the member whose registered id at
    # that front door is the one it verified.
    if key.front_door != statement.via:
        raise StatementInvalid(f"key {key.key_id} is not the {statement.via} front door's")
    registered = await slack_id_of(statement.member_id)
    if registered is None or registered != statement.slack_user_id:
        raise StatementInvalid(
            f"{statement.member_id!r}'s registered Slack id does not match the statement's"
        )


#: What each kind of registered key may sign. A member's passkey signs as the member, like
#: their key file (its assertion is verified by `statements.verify_with`).
KEY_CHECKS: dict[str, KeyCheck] = {
    "member": _member_key_signs,
    "webauthn": _member_key_signs,
    "front_door": _front_door_signs,
}


async def verified(
    conn: asyncpg.Connection,
    tenant_id: str,
    text: str,
    signature: str,
    slack_id_of: SlackIdOf | None = None,
) -> tuple[DecisionStatement, MemberKey]:
    """The statement and the key that signed it, if the signature verifies and the key may
    sign for the member it names; StatementInvalid otherwise. `slack_id_of` gives members'
    Slack ids as of the statement (the roster's now, by default)."""
    claimed = statements.parse(text)
    key = await member_keys.get(conn, tenant_id, claimed.key_id)
    if key is None:
        raise StatementInvalid(f"key {claimed.key_id} is not registered for tenant {tenant_id!r}")
    statement = statements.verify_with(key, text, signature)
    if not key.valid_at(statement.issued_at):
        raise StatementInvalid(f"key {key.key_id} was not valid when the statement was issued")
    check = KEY_CHECKS.get(key.kind)
    if check is None:
        raise StatementInvalid(f"key {key.key_id} is of a kind that signs no decisions")

    async def current(member_id: str) -> str | None:
        return await member_slack_id(conn, tenant_id, member_id)

    await check(statement, key, slack_id_of or current)
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
        statement, key = await verified(
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


@dataclass(frozen=True)
class Recorded:
    """A decision as it was recorded (its row, or its audit entry), with the time the
    database recorded it: what a statement is re-checked against when money moves."""

    approver: str
    outcome: str
    statement: str | None
    signature: str | None
    recorded_at: datetime
    nonce: str | None = None
    """The row's nonce (an audit entry has none of its own)."""


async def check_recorded(
    conn: asyncpg.Connection,
    binding: Binding,
    recorded: Recorded,
    opened_at: datetime,
    slack_id_of: SlackIdOf | None = None,
) -> DecisionStatement:
    """The statement of a recorded decision, re-checked in full: its signature and key, the
    key valid when it was signed and when it was recorded (and never revoked for cause),
    bound to exactly `binding`, by the member and with the outcome recorded, recorded within
    its validity window, and signed for the exception opened at `opened_at` (not an earlier
    one of the same proposal). StatementInvalid says what fails."""
    if recorded.statement is None or recorded.signature is None:
        raise StatementInvalid("no signed statement")
    statement, key = await verified(
        conn, binding.tenant_id, recorded.statement, recorded.signature, slack_id_of
    )
    _check_binding(statement, binding)
    if statement.member_id != recorded.approver or statement.outcome != recorded.outcome:
        raise StatementInvalid(
            f"the statement says {statement.member_id!r} {statement.outcome}s, the record "
            f"{recorded.approver!r} {recorded.outcome}s"
        )
    if recorded.nonce is not None and recorded.nonce != statement.nonce:
        raise StatementInvalid("the record's nonce is not the statement's")
    try:
        statements.check_window(statement, recorded.recorded_at)
    except StatementInvalid as exc:
        raise StatementInvalid(f"recorded outside its validity window: {exc}") from None
    if not key.valid_at(recorded.recorded_at):
        raise StatementInvalid(f"key {key.key_id} was revoked before the decision was recorded")
    if statement.issued_at + statements.SKEW < opened_at or recorded.recorded_at < opened_at:
        raise StatementInvalid("the statement was signed before this exception was opened")
    return statement


async def _nonce_used_once(conn: asyncpg.Connection, tenant_id: str, nonce: str) -> bool:
    count = await conn.fetchval(
        "SELECT count(*) FROM charter.decisions WHERE tenant_id = $1 AND nonce = $2",
        tenant_id,
        nonce,
    )
    return bool(count == 1)


async def proven_approvers(
    conn: asyncpg.Connection, binding: Binding, opened_at: datetime
) -> list[str]:
    """Distinct members whose approval of exactly `binding`, in force (not superseded), is
    recorded with a statement that passes `check_recorded` for the exception opened at
    `opened_at`, its nonce used once. Rows without one count for nothing."""
    rows = await conn.fetch(
        "SELECT approver, outcome, statement, signature, nonce, decided_at FROM "
        "charter.decisions WHERE tenant_id = $1 AND workflow_id = $2 AND proposal_id = $3 "
        "AND proposal_digest = $4 AND outcome = 'approve' AND superseded_by IS NULL "
        "ORDER BY decided_at, approver",
        binding.tenant_id,
        binding.workflow_id,
        binding.proposal_id,
        binding.digest,
    )
    proven: list[str] = []
    for row in rows:
        if row["nonce"] is None or not await _nonce_used_once(
            conn, binding.tenant_id, row["nonce"]
        ):
            continue
        recorded = Recorded(
            row["approver"],
            row["outcome"],
            row["statement"],
            row["signature"],
            row["decided_at"],
            row["nonce"],
        )
        try:
            await check_recorded(conn, binding, recorded, opened_at)
        except StatementInvalid:
            continue
        if row["approver"] not in proven:
            proven.append(row["approver"])
    return proven


async def binding_for(
    conn: asyncpg.Connection,
    tenant_id: str,
    workflow_id: str,
    proposal_id: str,
    edit: ProposalEdit | None,
) -> Binding | None:
    """What a decision on a recorded proposal binds to, as a signer computes it: the run that
    proposed it and the digest of the parameters approved (edited, with an edit)."""
    found = await approved_for(conn, tenant_id, workflow_id, proposal_id, edit)
    return found[0] if found is not None else None


async def approved_for(
    conn: asyncpg.Connection,
    tenant_id: str,
    workflow_id: str,
    proposal_id: str,
    edit: ProposalEdit | None,
) -> tuple[Binding, Proposal] | None:
    """The binding, and exactly the parameters whose digest it carries: what a front door
    shows the member before they sign."""
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
    binding = Binding(
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        run_id=row["run_id"],
        proposal_id=proposal_id,
        digest=runs.proposal_digest(approved),
    )
    return binding, approved


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
    statement = statement_of(
        decision,
        binding,
        statements.key_id_for(statements.public_hex(key)),
        now,
        valid_minutes=valid_minutes,
        via=via,
        slack_user_id=slack_user_id,
        slack_team_id=slack_team_id,
    )
    text, signature = statements.sign(key, statement)
    return decision.model_copy(update={"statement": text, "signature": signature})


def statement_of(
    decision: Decision,
    binding: Binding,
    key_id: str,
    now: datetime,
    *,
    valid_minutes: int = 5,
    via: Literal["member", "slack"] = "member",
    slack_user_id: str | None = None,
    slack_team_id: str | None = None,
) -> DecisionStatement:
    """The statement of `decision` on `binding`, for the key `key_id` to sign (a passkey
    signs it where the member is, so it is made before it is signed)."""
    return DecisionStatement(
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
        key_id=key_id,
        issued_at=now,
        valid_minutes=valid_minutes,
        nonce=statements.nonce(),
        via=via,
        slack_user_id=slack_user_id,
        slack_team_id=slack_team_id,
        tolerance=decision.tolerance,
    )
