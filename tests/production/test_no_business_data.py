"""What the Temporal server stores in plaintext (workflow ids, search attributes, the
history's own fields) names no invoice, no counterparty and no amount: the payload codec
encrypts the payloads, and the id carries only a digest of the trigger."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from charter.storage import Database
from schemas import AgentRunInput, Decision, workflow_id_for
from starter import start_run
from tests.conftest import TASK_QUEUE
from tests.helpers import until_stage
from workflows import AgentLoop

#: INV-1043: Bluebird Design Studio (unverified), 2300.00: it escalates, is approved, is paid.
BUSINESS = ("INV-1043", "Bluebird", "bluebird", "2300")


def _clean(text: str, where: str) -> None:
    for word in BUSINESS:
        assert word not in text, f"{word!r} in {where}: {text}"


async def test_ids_search_attributes_and_history_carry_no_business_data(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    run = AgentRunInput(
        tenant_id=tenant, agent="payables", trigger="invoice-received-INV-1043", focus=["INV-1043"]
    )
    handle = await start_run(client, run, task_queue=TASK_QUEUE)
    assert handle.id == workflow_id_for(tenant, "payables", "invoice-received-INV-1043")
    _clean(handle.id, "the workflow id")

    state = await until_stage(handle, "awaiting_decision")
    decision = Decision(
        proposal_id=state.proposals[0].proposal.proposal_id, approver="maya", outcome="approve"
    )
    await handle.execute_update(AgentLoop.decide, decision)
    result = await handle.result()
    assert result.proposals[0].status == "executed"

    described = await handle.describe()
    attributes: dict[str, Any] = {
        key.name: value for key, value in described.typed_search_attributes
    }
    assert attributes["CharterTenant"] == tenant and attributes["CharterOutcomes"] == ["executed"]
    _clean(repr(attributes), "the search attributes")

    # The whole history as the server stores it. Its payloads are base64 ciphertext, which has
    # neither "-" nor "."; so none of these can appear by chance.
    history = (await handle.fetch_history()).to_json()
    for word in ("INV-1043", "Bluebird Design Studio", "2300.00"):
        assert word not in history
