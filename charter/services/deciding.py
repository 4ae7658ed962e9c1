"""One front door for decisions: the statement signed, the `decide` update sent, a refusal
told in one line.

`charter decide` and the Slack app both decide through here. The CLI signs with the member's
own key on this machine; the Slack app signs with its front-door key on behalf of the member
Slack verified (`FrontDoor`), which `record_decision` accepts only for that member's
registered Slack id. The front doors parse and show; what a decision is bound to, how it is
sent and what a refusal says are decided here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from charter.crypto import CryptoError, statements
from charter.services import proofs
from charter.storage import Database, runs
from schemas import Decision, DecisionReceipt, Proposal
from schemas.errors import ErrorType

#: The update every AgentLoop run answers (the workflow sits above charter/: by its name).
DECIDE = "decide"


class DecisionNotSent(Exception):
    """A decision that did not reach the run, or that the run refused; the message is one
    line, fit to show the person deciding."""


class NoSuchException(DecisionNotSent):
    pass


class NotOpen(DecisionNotSent):
    """The exception is decided, expired or dismissed already."""


class NothingToDecide(DecisionNotSent):
    """The exception holds an unreadable reasoner reply: there is no proposal to decide."""


class DecisionUnsigned(DecisionNotSent):
    """No statement could be signed: no key on this machine, or no recorded proposal."""


class DecisionRefused(DecisionNotSent):
    """The run refused the decision: its validator, or the activity that records it."""

    def __init__(self, message: str, type: ErrorType | None = None) -> None:
        super().__init__(message)
        self.type = type


class RunUnreachable(DecisionNotSent):
    """Temporal could not be reached, or does not know the run: nothing was decided."""

    def __init__(self, workflow_id: str, error: RPCError) -> None:
        super().__init__(f"could not reach run {workflow_id}: {error.message}")
        self.workflow_id = workflow_id
        self.status: RPCStatusCode = error.status


@dataclass(frozen=True)
class Awaiting:
    """An open exception with a proposal to decide, and the run waiting on it."""

    tenant_id: str
    exception_id: str
    workflow_id: str
    proposal_id: str


@dataclass(frozen=True)
class FrontDoor:
    """A registered front door deciding on behalf of the member it verified."""

    key: Ed25519PrivateKey
    via: Literal["slack"]
    slack_user_id: str
    slack_team_id: str | None


async def awaiting(db: Database, tenant_id: str, exception_id: str) -> Awaiting:
    """The exception, if it is open and holds a proposal; a DecisionNotSent otherwise."""
    async with db.tenant(tenant_id) as conn:
        row = await runs.get_exception(conn, tenant_id, exception_id)
    if row is None:
        raise NoSuchException(f"no exception {exception_id!r} for tenant {tenant_id!r}")
    if row["status"] != "open":
        raise NotOpen(f"{exception_id} is {row['status']}, not open")
    context = row["context"]
    if isinstance(context, dict) and context.get("kind") == "reasoning_failure":
        raise NothingToDecide(
            f"{exception_id} holds an unreadable reasoner reply: there is no proposal "
            "to approve or reject."
        )
    return Awaiting(tenant_id, exception_id, str(row["workflow_id"]), str(row["proposal_id"]))


class ShownParametersChanged(DecisionRefused):
    """The parameters a decision would sign are not the ones the member was shown (an edit
    landed in between): nothing is signed."""


async def to_be_signed(
    db: Database, tenant_id: str, workflow_id: str, decision: Decision
) -> Proposal | None:
    """Exactly the parameters a decision on the proposal would sign (edits included): what a
    front door shows before the member decides. None if no such proposal is recorded."""
    async with db.tenant(tenant_id) as conn:
        found = await proofs.approved_for(
            conn, tenant_id, workflow_id, decision.proposal_id, decision.edit
        )
    return found[1] if found is not None else None


def shown_digest(parameters: Proposal) -> str:
    """The digest of the parameters shown, for `sign(shown=...)`."""
    return runs.proposal_digest(parameters)


async def sign(
    db: Database,
    tenant_id: str,
    workflow_id: str,
    decision: Decision,
    *,
    front_door: FrontDoor | None = None,
    folder: Path | None = None,
    shown: str | None = None,
) -> Decision:
    """`decision` carrying a statement of itself, bound to the run, the proposal and the
    parameters approved: signed with the approver's own key on this machine (in `folder`,
    `Settings.member_key_folder`), or by `front_door` on their behalf. With `shown` (the
    digest of the parameters the member was shown), ShownParametersChanged unless they are
    exactly the ones signed."""
    try:
        if front_door is not None:
            key = front_door.key
        elif folder is not None:
            key = statements.load_key(tenant_id, decision.approver, folder)
        else:
            raise TypeError("a member signs with their own key: pass the folder it is in")
        async with db.tenant(tenant_id) as conn:
            binding = await proofs.binding_for(
                conn, tenant_id, workflow_id, decision.proposal_id, decision.edit
            )
        if binding is None:
            raise statements.StatementInvalid(
                f"no proposal {decision.proposal_id} recorded for {workflow_id}"
            )
    except CryptoError as exc:
        raise DecisionUnsigned(str(exc)) from exc
    if shown is not None and binding.digest != shown:
        raise ShownParametersChanged(
            "the parameters changed after they were shown (an edit was recorded); look at "
            "the exception again before deciding",
            ErrorType.INVALID_STATEMENT,
        )
    now = datetime.now(UTC)
    if front_door is None:
        return proofs.sign_decision(decision, key, binding, now)
    return proofs.sign_decision(
        decision,
        key,
        binding,
        now,
        via=front_door.via,
        slack_user_id=front_door.slack_user_id,
        slack_team_id=front_door.slack_team_id,
    )


@dataclass(frozen=True)
class ToSign:
    """A statement for a passkey to sign where the member is: its exact text, and the
    parameters it approves (what the member is shown before their authenticator signs)."""

    text: str
    approved: Proposal


async def statement_for_passkey(
    db: Database, tenant_id: str, workflow_id: str, decision: Decision, *, key_id: str
) -> ToSign:
    """The statement of `decision` for the member's passkey `key_id`: its digest is the
    WebAuthn challenge; the assertion comes back as the decision's signature (`signed`)."""
    async with db.tenant(tenant_id) as conn:
        found = await proofs.approved_for(
            conn, tenant_id, workflow_id, decision.proposal_id, decision.edit
        )
    if found is None:
        raise DecisionUnsigned(f"no proposal {decision.proposal_id} recorded for {workflow_id}")
    binding, approved = found
    statement = proofs.statement_of(decision, binding, key_id, datetime.now(UTC))
    return ToSign(statements.encode(statement), approved)


def signed(text: str, assertion: str) -> Decision:
    """The decision a passkey-signed statement carries, the assertion as its signature;
    DecisionUnsigned if the text is not a statement."""
    try:
        statement = statements.parse(text)
        return Decision(
            proposal_id=statement.proposal_id,
            approver=statement.member_id,
            outcome=statement.outcome,
            reason=statement.reason,
            amendment=statement.amendment,
            edit=statement.edit,
            statement=text,
            signature=assertion,
        )
    except (CryptoError, ValidationError) as exc:
        raise DecisionUnsigned(f"not a signed decision: {str(exc).splitlines()[0]}") from None


def refusal(error: WorkflowUpdateFailedError) -> DecisionRefused:
    """What the run said, in one line, with its error type when it gave one."""
    cause = error.cause
    if not isinstance(cause, ApplicationError):
        return DecisionRefused(str(cause))
    # None: a failure of another kind than the run's refusals.
    kind = next((t for t in ErrorType if t.value == cause.type), None)
    return DecisionRefused(cause.message, kind)


async def send(client: Client, workflow_id: str, decision: Decision) -> DecisionReceipt:
    """The `decide` update: the run's receipt, or DecisionRefused / RunUnreachable."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        receipt: DecisionReceipt = await handle.execute_update(
            DECIDE, decision, result_type=DecisionReceipt
        )
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from exc
    except RPCError as exc:
        raise RunUnreachable(workflow_id, exc) from exc
    return receipt


async def decide(
    db: Database,
    client: Client,
    tenant_id: str,
    workflow_id: str,
    decision: Decision,
    *,
    front_door: FrontDoor | None = None,
    folder: Path | None = None,
    shown: str | None = None,
) -> DecisionReceipt:
    """Sign `decision` (see `sign`) and send it to the run waiting on it."""
    signed = await sign(
        db, tenant_id, workflow_id, decision, front_door=front_door, folder=folder, shown=shown
    )
    return await send(client, workflow_id, signed)


async def dismiss(
    db: Database, tenant_id: str, exception_id: str, *, member: str, reason: str
) -> None:
    """Close an exception holding an unreadable reasoner reply (runs.NotDismissable for any
    other): nothing executes, and the dismissal is audited in the same transaction."""
    async with db.tenant(tenant_id) as conn:
        await runs.dismiss_reply_exception(
            conn, tenant_id, exception_id, member=member, reason=reason
        )
