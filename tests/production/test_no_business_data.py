"""What the Temporal server stores in plaintext (workflow ids, search attributes, the
history's own fields) names no invoice, no counterparty and no amount: the payload codec
encrypts the payloads, and the id carries only a digest of the trigger."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.worker import Worker

from charter.config.settings import Settings
from charter.crypto.codec import default_payload_keyring
from charter.storage import Database
from charter.temporal import codec_server
from schemas import AgentRunInput, Decision, workflow_id_for
from starter import start_run
from tests.support.codec_requests import TOKEN, as_json
from tests.support.queues import TASK_QUEUE
from tests.support.running import until_stage
from tests.support.signing import signed
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
    metadata_query = await handle.query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    assert metadata_query.current_details == "awaiting_decision: p1 awaiting_decision"
    decision = Decision(
        proposal_id=state.proposals[0].proposal.proposal_id, approver="maya", outcome="approve"
    )
    await handle.execute_update(AgentLoop.decide, await signed(handle, decision))
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
    history = await handle.fetch_history()
    for word in ("INV-1043", "Bluebird Design Studio", "2300.00"):
        assert word not in history.to_json()

    # The UI's story (the run's summary and details, each activity's summary) is there for
    # whoever holds the codec token: the codec server decodes it.
    started = history.events[0]
    metadata = [started.user_metadata.summary, started.user_metadata.details]
    # Regular activities carry theirs on the scheduled event, local ones on their marker.
    summaries = [
        e.user_metadata.summary
        for e in history.events
        if (
            e.HasField("activity_task_scheduled_event_attributes")
            or e.HasField("marker_recorded_event_attributes")
        )
        and e.user_metadata.HasField("summary")
    ]
    runner, port = await codec_server.start(
        default_payload_keyring(Settings()), TOKEN, ["http://ui"]
    )
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{port}/decode",
                json=as_json(metadata + summaries),
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as response,
        ):
            assert response.status == 200
            decoded = [
                json.loads(base64.b64decode(p["data"])) for p in (await response.json())["payloads"]
            ]
    finally:
        await runner.cleanup()
    assert decoded[:2] == [
        f"payables for {tenant}",
        "trigger invoice-received-INV-1043, focus INV-1043",
    ]
    assert decoded[2:] == [
        "start",
        "read the books",
        "reason",
        "gate p1: escalate",
        "decision p1: approve",
        "act p1",
        "finish",
    ]
    # ... and without the token they are ciphertext in the history.
    assert all(p.metadata["encoding"] != b"json/plain" for p in metadata + summaries)
