"""The one front door for decisions: what is awaiting, signing as a member or through a front
door, sending the update, and each refusal as one typed, one-line error."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from charter.config.settings import Settings
from charter.crypto import statements
from charter.services import deciding
from charter.storage import Database
from schemas import Decision
from schemas.errors import ErrorType
from tests.support.audited import entries_of
from tests.support.polling import eventually
from tests.support.running import chain_ok, start, until_stage


def test_a_refusal_keeps_the_runs_words_and_type() -> None:
    typed = deciding.refusal(
        WorkflowUpdateFailedError(ApplicationError("nobody here", type="SelfApproval"))
    )
    assert str(typed) == "nobody here" and typed.type == ErrorType.SELF_APPROVAL
    untyped = deciding.refusal(
        WorkflowUpdateFailedError(ApplicationError("odd", type="SomethingElse"))
    )
    assert str(untyped) == "odd" and untyped.type is None
    other = deciding.refusal(WorkflowUpdateFailedError(RuntimeError("cancelled")))
    assert str(other) == "cancelled" and other.type is None


async def test_what_is_awaiting_a_decision(db: Database, tenant: str) -> None:
    with pytest.raises(deciding.NoSuchException, match="no exception 'ex-0000000000'"):
        await deciding.awaiting(db, tenant, "ex-0000000000")


async def test_deciding_as_a_member_and_through_the_front_door(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    exception_id = state.proposals[0].exception_id
    assert exception_id is not None
    pending = await deciding.awaiting(db, tenant, exception_id)
    assert pending.workflow_id == handle.id
    proposal_id = pending.proposal_id

    # Leo has no signing key on this machine: nothing is sent.
    leo = Decision(proposal_id=proposal_id, approver="leo", outcome="approve")
    with pytest.raises(deciding.DecisionUnsigned, match="'leo' has no signing key"):
        await deciding.decide(
            db, client, tenant, handle.id, leo, folder=Settings().member_key_folder
        )
    # Another tenant's approver, unsigned: the run's validator refuses, with its type.
    ivy = Decision(proposal_id=proposal_id, approver="ivy", outcome="approve")
    with pytest.raises(deciding.DecisionRefused) as refused:
        await deciding.send(client, handle.id, ivy)
    assert refused.value.type == ErrorType.UNAUTHORISED_APPROVER and str(refused.value)
    with pytest.raises(deciding.RunUnreachable, match="could not reach run charter/nobody"):
        await deciding.send(client, "charter/nobody/none/none", ivy)

    # Maya through the Slack front door, on her registered Slack id.
    door = deciding.FrontDoor(
        statements.front_door_key("slack", Settings().member_key_folder), "slack", "U0MAYA", None
    )
    maya = Decision(proposal_id=proposal_id, approver="maya", outcome="reject", reason="not now")
    receipt = await deciding.decide(db, client, tenant, handle.id, maya, front_door=door)
    assert receipt.outcome == "reject" and receipt.approver == "maya"

    async def closed() -> str | None:
        try:
            await deciding.awaiting(db, tenant, exception_id)
        except deciding.NotOpen as exc:
            return str(exc)
        return None

    assert await eventually(closed) == f"{exception_id} is rejected, not open"
    (decided,) = [
        e
        for e in await entries_of(db, tenant, "decision")
        if e.snapshot.get("exception_id") == exception_id
    ]
    assert '"via":"slack"' in str(decided.snapshot["statement"]).replace(" ", "")
    await handle.result()
    await chain_ok(db, tenant)
