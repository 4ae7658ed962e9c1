"""A model that stalls, floods, refuses or answers oddly reaches a human, quickly.

Each case is played by the fake Messages API against the real `ClaudeReasoner` (real SDK):
first the reasoner alone, then whole runs on a worker whose budget is seconds, not minutes,
so that "within the budget plus one request deadline" is measured, not assumed.
"""

from __future__ import annotations

import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities import Deps
from charter.reasoners import ModelRefused, ReasonerUnavailable, RetryBudget, UnparseableReply
from charter.reasoners.claude import MAX_REPLY_BYTES, ClaudeReasoner
from charter.storage import Database
from schemas import AgentRunInput, AgentRunResult, Observation
from starter import start_run
from tests.support.claude_runs import TEST_API_KEY, acme, action_count, entries, pay
from tests.support.running import chain_ok
from tests.support.standins.messages_api import (
    FakeMessagesApi,
    Reply,
    dripped,
    error_reply,
    gzip_bomb,
    huge_reply,
    message_reply,
    tool_reply,
)
from tests.support.vault import session_vault
from worker import build_worker

#: The bounds of these tests: a request may take a second, the whole budget three.
REQUEST = timedelta(seconds=1)
BUDGET = RetryBudget(attempts=50, time=timedelta(seconds=3), request=REQUEST, attempt=2 * REQUEST)
#: What a loaded machine may add to a bound (scheduling, the audit write, the reply).
SLACK = 3.0
#: What reading the worst reply may add to the worker's memory.
MEMORY_BOUND = 10 * 1024 * 1024


def _reasoner(api: FakeMessagesApi, timeout: timedelta = REQUEST) -> ClaudeReasoner:
    return ClaudeReasoner(
        api_key=SecretStr(TEST_API_KEY),
        model="claude-sonnet-4-6",
        max_tokens=1024,
        timeout=timeout,
        base_url=api.url,
    )


def _observation(tenant: str) -> Observation:
    return Observation(
        tenant_id=tenant, agent="payables", observed_at=datetime.now(UTC), source="test"
    )


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _tool_use(name: str, proposals: list[object]) -> dict[str, object]:
    return {
        "type": "tool_use",
        "id": f"toolu_{uuid.uuid4().hex[:12]}",
        "name": name,
        "input": {"proposals": proposals},
    }


async def _unreadable(api: FakeMessagesApi, *replies: Reply) -> UnparseableReply:
    tenant = _tenant()
    api.script(tenant, *replies)
    with pytest.raises(UnparseableReply) as exc:
        await _reasoner(api, timedelta(seconds=30)).reason(_observation(tenant), acme())
    return exc.value


async def test_a_dripped_reply_trips_the_request_deadline(fake_api: FakeMessagesApi) -> None:
    """A byte every 50 ms satisfies every read timeout; the wall-clock deadline still ends it."""
    tenant = _tenant()
    fake_api.script(tenant, dripped(tool_reply([]), every=0.05))
    began = time.monotonic()
    with pytest.raises(ReasonerUnavailable, match=r"did not finish its reply within 1s"):
        await _reasoner(fake_api).reason(_observation(tenant), acme())
    assert time.monotonic() - began < REQUEST.total_seconds() + SLACK


async def test_a_hung_model_trips_the_request_deadline(fake_api: FakeMessagesApi) -> None:
    tenant = _tenant()
    fake_api.script(tenant, replace(tool_reply([]), delay=20.0))
    began = time.monotonic()
    with pytest.raises(ReasonerUnavailable, match="did not finish its reply"):
        await _reasoner(fake_api).reason(_observation(tenant), acme())
    assert time.monotonic() - began < REQUEST.total_seconds() + SLACK


@pytest.mark.parametrize(
    ("reply", "where"),
    [
        (huge_reply(100 * 1024 * 1024), "on the wire"),
        (gzip_bomb(), "decompressed"),
    ],
    ids=["100 MB reply", "gzip bomb"],
)
async def test_a_flood_is_cut_off_at_the_cap_without_holding_it(
    fake_api: FakeMessagesApi, reply: Reply, where: str
) -> None:
    """Counted while read: the worker's memory grows by far less than what was sent."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        failure = await _unreadable(fake_api, reply, reply)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"reading the reply took {peak:,} bytes"
    assert any(f"over {MAX_REPLY_BYTES:,} bytes {where}" in p for p in failure.problems)
    assert len(failure.problems) == 2  # the corrective request met the same flood


async def test_a_refusal_is_shown_never_read_as_nothing_to_do(fake_api: FakeMessagesApi) -> None:
    tenant = _tenant()
    said = "I can't help with moving this money."
    refused = message_reply(stop_reason="refusal", content=[{"type": "text", "text": said}])
    fake_api.script(tenant, refused, tool_reply([]))
    with pytest.raises(ModelRefused) as exc:
        await _reasoner(fake_api).reason(_observation(tenant), acme())
    assert said in exc.value.raw_reply and said in str(exc.value)
    assert exc.value.usage is not None and exc.value.usage.requests == 1
    assert len(fake_api.requests_for(tenant)) == 1  # a refusal is not argued with


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            [
                _tool_use("propose_actions", []),
                _tool_use("propose_actions", [pay("I-1", "9", "X")]),
            ],
            "made 2 tool calls; exactly one is read",
        ),
        ([_tool_use("transfer_funds", [])], "'transfer_funds', a tool it was not offered"),
    ],
    ids=["two calls, the first empty", "a tool not offered"],
)
async def test_tool_calls_other_than_one_are_unreadable(
    fake_api: FakeMessagesApi, content: list[object], problem: str
) -> None:
    reply = message_reply(stop_reason="tool_use", content=content)
    failure = await _unreadable(fake_api, reply, reply)
    assert [p for p in failure.problems if problem in p] == failure.problems


async def test_a_reply_cut_off_at_max_tokens_is_unreadable(fake_api: FakeMessagesApi) -> None:
    cut = message_reply(stop_reason="max_tokens", content=[{"type": "text", "text": "Let me"}])
    failure = await _unreadable(fake_api, cut, tool_reply([], stop_reason="max_tokens"))
    assert failure.problems == [
        "attempt 1: the reply was cut off at max_tokens",
        "attempt 2: the reply was cut off at max_tokens",
    ]


# -- whole runs: the budget, and the human it ends with -------------------------------------


@pytest.fixture
async def bounded_queue(
    client: Client, db: Database, fake_api: FakeMessagesApi
) -> AsyncIterator[str]:
    """A worker whose model is the fake API and whose budget is `BUDGET`."""
    queue = f"hostile-{uuid.uuid4().hex[:6]}"
    deps = Deps(
        credentials=session_vault(), db=db, reasoner=_reasoner(fake_api), reasoner_budget=BUDGET
    )
    async with build_worker(client, deps, queue):
        yield queue


async def _run(client: Client, queue: str, tenant: str) -> tuple[AgentRunResult, float]:
    """The run's result, and the seconds from the first reason attempt to its completion."""
    run = AgentRunInput(tenant_id=tenant, agent="payables", trigger=f"t-{uuid.uuid4().hex[:8]}")
    handle = await start_run(client, run, task_queue=queue)
    result = await handle.result()
    scheduled = completed = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == "reason":
                scheduled = event.event_time.ToDatetime()
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and scheduled:
            completed = completed or event.event_time.ToDatetime()
    assert scheduled is not None and completed is not None
    return result, (completed - scheduled).total_seconds()


STORMS = {
    "drip-fed": [dripped(tool_reply([pay("INV-1", "10.00", "Figma")]), every=0.05)] * 20,
    "hung": [replace(tool_reply([]), delay=20.0)] * 20,
    "5xx storm": [error_reply(500, "api_error", "boom")] * 40,
    "429 storm": [error_reply(429, "rate_limit_error", "slow down", **{"retry-after": "1"})] * 40,
}


@pytest.mark.parametrize("storm", list(STORMS))
async def test_a_stalling_model_escalates_within_the_budget_plus_one_request(
    client: Client,
    bounded_queue: str,
    fake_api: FakeMessagesApi,
    db: Database,
    tenant: str,
    storm: str,
) -> None:
    fake_api.script(tenant, *STORMS[storm])
    result, took = await _run(client, bounded_queue, tenant)
    failure = result.reasoning_failure
    assert failure is not None and failure.kind == "model_unavailable", failure
    assert failure.message.startswith("the model was unavailable after ")
    bound = (BUDGET.time + BUDGET.request).total_seconds()
    assert took < bound + SLACK, f"{storm}: escalated {took:.1f}s after the first attempt"
    assert result.proposals == [] and await action_count(db, tenant) == 0
    [logged] = await entries(db, tenant, "reasoning_failed")
    assert logged["failure"]["kind"] == "model_unavailable"
    await chain_ok(db, tenant)


async def test_a_refusing_model_escalates_showing_the_refusal(
    client: Client, bounded_queue: str, fake_api: FakeMessagesApi, db: Database, tenant: str
) -> None:
    said = "I won't schedule these payments."
    content = [{"type": "text", "text": said}, _tool_use("propose_actions", [pay("I", "5", "X")])]
    fake_api.script(tenant, message_reply(stop_reason="refusal", content=content))
    result, _ = await _run(client, bounded_queue, tenant)
    failure = result.reasoning_failure
    assert failure is not None and failure.kind == "refusal" and failure.exception_id
    assert said in failure.message and said in failure.raw_replies[0]
    assert result.proposals == [] and await action_count(db, tenant) == 0
