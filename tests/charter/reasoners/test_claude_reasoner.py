"""The Claude reasoner through the real `anthropic` SDK against a local Messages API server,
inside the real AgentLoop on a real Temporal dev server and PostgreSQL."""

from __future__ import annotations

import base64
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from charter.demo.seed import constitution_source
from charter.governance.constitution import load_yaml
from charter.reasoners.prompt import TOOL_NAME, tool_definition
from charter.storage import Database, constitution_versions, runs
from schemas import AgentRunResult
from tests.support.claude_runs import (
    TEST_API_KEY,
    action_count,
    charter_cli,
    entries,
    pay,
    reason_attempts,
    start,
)
from tests.support.owner import as_owner
from tests.support.running import record_history
from tests.support.standins.messages_api import (
    FakeMessagesApi,
    error_reply,
    text_reply,
    tool_reply,
)


def _decoded_history(history_json: dict[str, Any]) -> str:
    """Every payload in a history, decoded, so a secret cannot hide in base64."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "data" and isinstance(v, str):
                    out.append(base64.b64decode(v).decode("utf-8", "replace"))
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(history_json)
    return json.dumps(history_json) + "\n".join(out)


async def test_tool_use_reply_runs_the_loop(
    client: Client, claude_worker: Worker, fake_api: FakeMessagesApi, db: Database, tenant: str
) -> None:
    fake_api.script(tenant, tool_reply([pay("INV-1041", "3412.18", "Amazon Web Services")]))
    handle = await start(client, tenant, "payables")
    result = await handle.result()

    assert [(p.proposal.reference, p.status) for p in result.proposals] == [
        ("INV-1041", "executed")
    ]
    [request] = fake_api.requests_for(tenant)
    assert request.path == "/v1/messages"
    credential = request.headers.get("x-api-key") or request.headers["authorization"]
    assert credential.removeprefix("Bearer ") == TEST_API_KEY
    assert float(request.headers["x-stainless-timeout"]) == 10  # the configured timeout
    assert request.headers["anthropic-version"]
    assert request.headers["x-stainless-retry-count"] == "0"  # the SDK made one try only
    body = request.body
    assert body["model"] == "claude-sonnet-4-6" and body["max_tokens"] == 2048
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    assert body["tools"] == [tool_definition()]
    item = body["tools"][0]["input_schema"]["properties"]["proposals"]["items"]
    assert {"action", "amount", "confidence", "rationale", "citations"} <= set(item["properties"])
    assert "$ref" not in json.dumps(body["tools"])
    # The constitution (ids, titles, conditions) is the cached system prefix.
    instructions, law = body["system"]
    assert "untrusted" in instructions["text"].lower()
    assert law["cache_control"] == {"type": "ephemeral"}
    assert "deny-already-paid" in law["text"] and "Never pay an invoice" in law["text"]
    # The hostile memo of INV-1045 travels only inside the delimited observation.
    text = body["messages"][0]["content"][0]["text"]
    start_at, end_at = text.index("<observation>"), text.index("</observation>")
    assert start_at < text.index("Ignore previous instructions") < end_at

    [proposed] = await entries(db, tenant, "proposed")
    usage = proposed["usage"]
    assert usage["model"] == "claude-sonnet-4-6" and usage["requests"] == 1
    assert usage["input_tokens"] > 0 and usage["output_tokens"] == 180
    assert usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"] > 0
    # The API key is nowhere in history, payloads included.
    history = await handle.fetch_history()
    assert TEST_API_KEY not in _decoded_history(history.to_json_dict())
    await record_history(handle, "claude_tool_use")


async def test_constitution_prefix_is_cached_across_runs(
    client: Client, claude_worker: Worker, fake_api: FakeMessagesApi, db: Database, tenant: str
) -> None:
    # A constitution version of its own, so no other test has warmed this prefix.
    document = load_yaml(constitution_source("acme"))
    unique = document.model_copy(
        update={
            "defaults": document.defaults.model_copy(
                update={"min_confidence": 0.8 + random.random() / 100}
            )
        }
    )
    async with as_owner(db, tenant) as conn:
        await constitution_versions.save(conn, tenant, unique, source="test", created_by="test")

    for _ in range(2):
        await (await start(client, tenant, "payables", focus=["INV-1042"])).result()

    first, second = fake_api.requests_for(tenant)
    assert first.body["tools"] == second.body["tools"]
    assert first.body["system"] == second.body["system"]  # byte-identical prefix
    assert first.body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    cold, warm = [e["usage"] for e in await entries(db, tenant, "proposed")]
    assert cold["cache_creation_input_tokens"] > 0 and cold["cache_read_input_tokens"] == 0
    assert warm["cache_read_input_tokens"] == cold["cache_creation_input_tokens"]
    assert warm["cache_creation_input_tokens"] == 0


@pytest.mark.parametrize(
    ("status", "kind", "headers"),
    [
        (529, "overloaded_error", {}),
        (429, "rate_limit_error", {"retry-after": "1"}),
        (500, "api_error", {}),
    ],
)
async def test_transient_errors_are_retried_by_temporal(
    client: Client,
    claude_worker: Worker,
    fake_api: FakeMessagesApi,
    db: Database,
    tenant: str,
    status: int,
    kind: str,
    headers: dict[str, str],
) -> None:
    fake_api.script(
        tenant,
        error_reply(status, kind, "try again later", **headers),
        tool_reply([pay("INV-1042", "1440.00", "Figma")]),
    )
    handle = await start(client, tenant, "payables", focus=["INV-1042"])
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    requests = fake_api.requests_for(tenant)
    assert len(requests) == 2  # one per activity attempt: the SDK itself never retried
    assert {r.headers["x-stainless-retry-count"] for r in requests} == {"0"}
    assert await reason_attempts(handle) == [2]  # history keeps the last started attempt


@pytest.mark.parametrize(
    ("status", "kind", "error_type"),
    [
        (400, "invalid_request_error", "ReasonerRequestRejected"),
        (401, "authentication_error", "ReasonerAuthenticationFailed"),
        (403, "permission_error", "ReasonerAuthenticationFailed"),
    ],
)
async def test_refused_requests_fail_the_run_cleanly(
    client: Client,
    claude_worker: Worker,
    fake_api: FakeMessagesApi,
    db: Database,
    tenant: str,
    status: int,
    kind: str,
    error_type: str,
) -> None:
    fake_api.script(tenant, error_reply(status, kind, "refused by the test server"))
    handle = await start(client, tenant, "payables")
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == error_type and cause.non_retryable
    assert f"{status} {kind}: refused by the test server" in cause.message
    assert TEST_API_KEY not in cause.message
    assert len(fake_api.requests_for(tenant)) == 1  # not retried
    assert await action_count(db, tenant) == 0
    [failure] = await entries(db, tenant, "reasoning_failed")
    assert failure["status"] == status


async def test_malformed_tool_input_gets_one_correction_then_escalates(
    client: Client,
    claude_worker: Worker,
    fake_api: FakeMessagesApi,
    db: Database,
    tenant: str,
    admin_dsn: str,
    tmp_path: Path,
) -> None:
    bad = {"proposals": [{"action": "schedule_payment", "amount": "lots", "confidence": 7}]}
    fake_api.script(tenant, tool_reply(bad), text_reply("I would rather wire it myself."))
    handle = await start(client, tenant, "payables")
    result: AgentRunResult = await handle.result()

    assert result.proposals == []
    failure = result.reasoning_failure
    assert failure is not None and failure.exception_id
    assert "lots" in failure.raw_replies[0]
    assert "wire it myself" in failure.raw_replies[1]
    assert any("confidence" in p for p in failure.problems)
    assert any("did not call propose_actions" in p for p in failure.problems)
    # The corrective request showed the model its own reply and what was wrong with it.
    first, second = fake_api.requests_for(tenant)
    assert second.body["messages"][0] == first.body["messages"][0]
    assistant, correction = second.body["messages"][1:]
    assert assistant["role"] == "assistant" and assistant["content"][0]["input"] == bad
    [tool_result] = correction["content"]
    assert tool_result["type"] == "tool_result" and tool_result["is_error"] is True
    assert "confidence" in tool_result["content"]
    # Escalated with the raw reply attached; nothing executed, nothing gated.
    async with db.tenant(tenant) as conn:
        row = await runs.get_exception(conn, tenant, failure.exception_id)
        gated = await conn.fetchval(
            "SELECT count(*) FROM charter.proposals WHERE tenant_id = $1", tenant
        )
    assert row is not None and row["status"] == "open"
    assert row["context"]["kind"] == "reasoning_failure"
    assert "lots" in row["context"]["failure"]["raw_replies"][0]
    assert gated == 0 and await action_count(db, tenant) == 0
    [logged] = await entries(db, tenant, "reasoning_failed")
    assert logged["usage"]["requests"] == 2
    await record_history(handle, "reasoning_failure_escalates")

    # A human sees it in the CLI, raw reply included, and cannot "approve" it into action.
    code, out = await charter_cli(admin_dsn, client, tmp_path, "exceptions", "list", "-t", tenant)
    assert code == 0 and failure.exception_id in out and "unreadable reasoner reply" in out
    code, out = await charter_cli(
        admin_dsn, client, tmp_path, "exceptions", "show", failure.exception_id, "-t", tenant
    )
    assert code == 0 and "wire it myself" in out and "nothing" in out
    code, out = await charter_cli(
        admin_dsn,
        client,
        tmp_path,
        "decide",
        failure.exception_id,
        "approve",
        "-t",
        tenant,
        "--as",
        "maya",
    )
    assert code == 2 and "no proposal to approve or reject" in out
    assert await action_count(db, tenant) == 0


async def test_malformed_reply_corrected_on_retry_proceeds(
    client: Client, claude_worker: Worker, fake_api: FakeMessagesApi, db: Database, tenant: str
) -> None:
    fake_api.script(
        tenant,
        tool_reply([{**pay("INV-1042", "1440.00", "Figma"), "confidence": "very"}]),
        tool_reply([pay("INV-1042", "1440.00", "Figma")]),
    )
    result = await (await start(client, tenant, "payables", focus=["INV-1042"])).result()
    assert result.reasoning_failure is None
    assert [p.status for p in result.proposals] == ["executed"]
    [proposed] = await entries(db, tenant, "proposed")
    assert proposed["usage"]["requests"] == 2


async def test_compromised_model_cannot_move_money(
    client: Client, claude_worker: Worker, fake_api: FakeMessagesApi, db: Database, tenant: str
) -> None:
    """1,000,000 to an unknown vendor at confidence 0.99, citing a real allow rule."""
    fake_api.script(
        tenant,
        tool_reply([pay("", "1000000", "Offshore Holdings Ltd", confidence=0.99)]),
    )
    result = await (await start(client, tenant, "payables")).result()
    [ps] = result.proposals
    assert ps.proposal.amount == Decimal("1000000")
    assert ps.proposal.citations == ["allow-verified-vendor-bills"]
    assert ps.status == "denied"
    assert ps.verdict is not None
    matched = {m.rule_id for m in ps.verdict.matched}
    assert "deny-unknown-or-overpaid-invoice" in matched
    assert "allow-verified-vendor-bills" not in matched  # the citation was only a claim
    assert await action_count(db, tenant) == 0
    assert await entries(db, tenant, "action_intent") == []
