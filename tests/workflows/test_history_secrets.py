"""What reaches Temporal: a full run's history, fetched from the server, holds no
unencrypted payload and no secret — failure messages included."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Worker

from charter.connectors.demo_auth import ADS, BANK, demo_secret
from charter.crypto.codec import ENCODING, KEY_ID
from charter.storage import Database
from charter.storage import credential_vault as creds
from schemas import AgentRunInput, Decision, DecisionReceipt, RunState
from starter import start_run
from tests.support.history_scan import failures, history_bytes, is_never_encoded, payloads
from tests.support.payload_keys import TEST_PAYLOAD_KEY_ID
from tests.support.polling import eventually
from tests.support.queues import TASK_QUEUE
from tests.support.signing import decide
from tests.support.vault import session_vault
from workflows import AgentLoop

SENTINELS = {
    (BANK, "read"): "demo_bank_rk_SENTINELread0000000000000001",
    (BANK, "write"): "demo_bank_wk_SENTINELwrite000000000000001",
}


async def replace_credentials(db: Database, tenant: str) -> list[str]:
    """Swap the tenant's demo credentials for sentinel-valued ones (and an expired token)."""
    keys = session_vault().keys
    values = list(SENTINELS.values())
    async with db.tenant(tenant) as conn:
        for c in await creds.list_credentials(conn, tenant):
            await creds.revoke(conn, tenant, c.credential_id)
        for (connector, scope), value in SENTINELS.items():
            await creds.add(
                conn,
                keys,
                tenant_id=tenant,
                connector=connector,
                scope=scope,  # type: ignore[arg-type]
                secret=creds.CredentialSecret(api_key=value),
                created_by="test",
            )
        for scope in ("read", "write"):
            secret = demo_secret(ADS, scope, expired=True)  # type: ignore[arg-type]
            values += secret.values()
            await creds.add(
                conn,
                keys,
                tenant_id=tenant,
                connector=ADS,
                scope=scope,  # type: ignore[arg-type]
                secret=secret,
                created_by="test",
            )
    return values


async def current_secrets(db: Database, tenant: str) -> list[str]:
    """Every secret value the tenant's credentials hold now (after refreshes)."""
    out: list[str] = []
    keys = session_vault().keys
    async with db.tenant(tenant) as conn:
        for c in await creds.list_credentials(conn, tenant):
            got = await creds.ScopedCredentials(keys, c.scope).obtain(conn, tenant, c.credential_id)
            out += got.secret.values()
    return out


def assert_encrypted(history: object, forbidden: list[str]) -> int:
    from temporalio.client import WorkflowHistory

    assert isinstance(history, WorkflowHistory)
    seen = 0
    for path, payload in payloads(history):
        if is_never_encoded(path):
            continue
        seen += 1
        assert payload.metadata.get("encoding") == ENCODING, (path, dict(payload.metadata))
        assert payload.metadata.get(KEY_ID) == TEST_PAYLOAD_KEY_ID.encode()
    for path, failure in failures(history):
        assert failure.message == "Encoded failure", (path, failure.message)
        assert not failure.stack_trace
    raw = history_bytes(history)
    for value in forbidden:
        assert value.encode() not in raw, f"{value[:14]}… found in history"
    return seen


async def start(client: Client, tenant: str, agent: str, focus: list[str]) -> WorkflowHandle:  # type: ignore[type-arg]
    run = AgentRunInput(
        tenant_id=tenant, agent=agent, trigger=f"t-{uuid.uuid4().hex[:8]}", focus=focus
    )
    return await start_run(client, run, task_queue=TASK_QUEUE)


async def test_full_run_history_is_encrypted_and_secret_free(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    planted = await replace_credentials(db, tenant)
    payables = await start(client, tenant, "payables", ["INV-1041", "INV-1043", "INV-1039"])

    async def waiting() -> RunState | None:
        state = await payables.query(AgentLoop.state)
        return state if state.stage == "awaiting_decision" else None

    state = await eventually(waiting)
    pending = next(p for p in state.proposals if p.status == "awaiting_decision")
    await decide(
        payables,
        Decision(
            proposal_id=pending.proposal.proposal_id,
            approver="maya",
            outcome="approve",
            reason="ok",
        ),
        result_type=DecisionReceipt,
    )
    result = await payables.result()
    assert {p.status for p in result.proposals} == {"executed", "denied"}
    # Marketing reads with an expired ads token (refreshed inside the activity) and acts
    # with the write one (also expired, also refreshed); some of its proposals escalate.
    marketing = await start(client, tenant, "marketing", [])

    async def settled() -> RunState | None:
        state = await marketing.query(AgentLoop.state)
        busy = any(p.status in ("gated", "approved") for p in state.proposals)
        return state if state.stage in ("awaiting_decision", "completed") and not busy else None

    marketing_state = await eventually(settled)
    assert any(p.status == "executed" for p in marketing_state.proposals)
    now = await current_secrets(db, tenant)
    assert not set(now) & set(planted[2:]), "the expired ads tokens were refreshed"
    forbidden = planted + now + ["Amazon Web Services", "Northwind Legal", "November usage"]
    for handle in (payables, marketing):
        history = await handle.fetch_history()
        assert assert_encrypted(history, forbidden) > 10


async def test_failed_run_history_encodes_failure_messages(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    planted = await replace_credentials(db, tenant)
    async with db.tenant(tenant) as conn:
        read_id = await creds.active_id(conn, tenant, BANK, "read")
        assert read_id
        await creds.revoke(conn, tenant, read_id)
    handle = await start(client, tenant, "payables", ["INV-1041"])
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result()
    # The client (with the codec) decodes the real message; the history holds only ciphertext.
    assert "no active read credential" in str(err.value.cause.cause)  # type: ignore[union-attr]
    history = await handle.fetch_history()
    assert any(True for _ in failures(history))
    assert_encrypted(history, [*planted, "no active read credential", "CredentialUnavailable is"])
