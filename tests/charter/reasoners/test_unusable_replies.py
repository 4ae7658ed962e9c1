"""Every reply that cannot be used is an unreadable reply at once: one corrective request,
then `UnparseableReply` with storable, bounded problems and raw replies. None of them is a
retryable error, so none can make the reason activity retry (and pay) forever."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from charter.reasoners import UnparseableReply
from charter.reasoners.claude import MAX_REPLY_BYTES, RAW_REPLY_LIMIT, ClaudeReasoner
from charter.runtime.retry_after import retry_after_seconds
from schemas import Observation
from tests.support.claude_runs import acme, pay
from tests.support.standins.messages_api import (
    FakeMessagesApi,
    Reply,
    message_reply,
    raw_reply,
    tool_reply,
)


def _pay(**changes: Any) -> dict[str, Any]:
    return {**pay("INV-1042", "1440.00", "Figma"), **changes}


UNUSABLE: dict[str, Reply] = {
    "not JSON": raw_reply(b"<html>502 Bad Gateway</html>"),
    "JSON but not an object": raw_reply(b"[1, 2, 3]"),
    "NaN literal": raw_reply(b'{"content": NaN}'),
    "empty body": raw_reply(b""),
    "no content": message_reply(content=None),
    "null usage": message_reply(usage=None),
    "content of the wrong type": message_reply(content="propose nothing"),
    "usage of the wrong type": message_reply(usage={"input_tokens": "many"}),
    "unknown stop reason": message_reply(stop_reason="gave_up"),
    "input not an object": tool_reply("pay everyone"),
    "amount 1E+400": tool_reply([_pay(amount="1E+400")]),
    "amount beyond a trillion": tool_reply([_pay(amount="5000000000000")]),
    "amount with 40 decimals": tool_reply([_pay(amount="1." + "1" * 40)]),
    "NUL in the rationale": tool_reply([_pay(rationale="pay\x00now")]),
    "lone surrogate in the counterparty": tool_reply([_pay(counterparty="Fig\ud800ma")]),
    "control character in a citation": tool_reply([_pay(citations=["rule\x1b[31m"])]),
    "1.5 MB citation": tool_reply([_pay(citations=["x" * 1_500_000])]),
    "thousands of citations": tool_reply([_pay(citations=[f"c{i}" for i in range(5000)])]),
    "too many proposals": tool_reply([_pay(reference=f"INV-{i}") for i in range(150)]),
    "NUL in an unexpected key": tool_reply({"proposals": [], "\x00" * 5000: 1}),
    "larger than the read limit": raw_reply(b" " * (MAX_REPLY_BYTES + 1) + b"{}"),
}


@pytest.fixture(scope="module")
def api() -> Any:
    server = FakeMessagesApi().start()
    yield server
    server.stop()


def _reasoner(api: FakeMessagesApi) -> ClaudeReasoner:
    return ClaudeReasoner(
        api_key=SecretStr("sk-ant-test"),
        model="claude-sonnet-4-6",
        max_tokens=512,
        timeout=timedelta(seconds=10),
        base_url=api.url,
    )


def _observation(tenant: str) -> Observation:
    return Observation(
        tenant_id=tenant, agent="payables", observed_at=datetime.now(UTC), source="test"
    )


def _storable(text: str) -> bool:
    """What PostgreSQL's jsonb accepts: valid UTF-8 and no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@pytest.mark.parametrize("case", list(UNUSABLE), ids=list(UNUSABLE))
async def test_unusable_reply_is_unreadable_at_once(api: FakeMessagesApi, case: str) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    api.script(tenant, UNUSABLE[case], UNUSABLE[case])
    with pytest.raises(UnparseableReply) as raised:
        await _reasoner(api).reason(_observation(tenant), acme())
    failure = raised.value
    assert len(api.requests_for(tenant)) == 2  # the reply, one correction, nothing more
    assert failure.problems and len(failure.problems) <= 40
    assert all(len(p) <= 400 for p in failure.problems)
    assert len(failure.raw_replies) == 2
    assert all(len(r) <= RAW_REPLY_LIMIT + 20 for r in failure.raw_replies)
    everything = [*failure.problems, *failure.raw_replies, str(failure)]
    assert all(_storable(t) for t in everything), everything
    # The usage is still counted (two requests), and is itself storable.
    assert failure.usage is not None and failure.usage.requests == 2
    json.dumps(failure.usage.model_dump(mode="json"))


async def test_a_good_correction_after_an_unusable_reply_is_used(api: FakeMessagesApi) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    api.script(tenant, tool_reply([_pay(rationale="pay\x00now")]), tool_reply([_pay()]))
    reasoning = await _reasoner(api).reason(_observation(tenant), acme())
    assert [p.reference for p in reasoning.proposals] == ["INV-1042"]
    _, second = api.requests_for(tenant)
    # The echo of the bad reply in the corrective request is storable too.
    echoed = json.dumps(second.body["messages"][1:])
    assert "\\u0000" in echoed and "control character" in echoed


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("-5", None),
        ("0", None),
        ("1e9", 60.0),
        ("inf", None),
        ("nan", None),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_honoured_within_bounds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds
