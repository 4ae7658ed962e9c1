"""The Claude reasoner: the Messages API through the `anthropic` SDK, with a forced tool call.

Retries belong to Temporal, not to the SDK (`max_retries=0`): one activity attempt makes at
most one request, plus at most one corrective request when the reply does not parse. A
transient failure raises `ReasonerUnavailable` (the activity is retried with backoff); a
refused request raises `ReasonerRejected` (not retried). A reply that is still unreadable
after the corrective request raises `UnparseableReply` with the raw replies, which the run
escalates; nothing is executed from it.

Every request has a wall-clock deadline (`timeout`, from connect to the reply's last byte),
and its reply is counted while it is read, on the wire and decompressed, and abandoned at
`MAX_REPLY_BYTES` (`reply_stream.BoundedReplies`). A reply must make exactly one call of the
offered tool and not be cut off at `max_tokens`; a refusal (`stop_reason: refusal`) raises
`ModelRefused`, which a human sees as it is.

The reply is read here, not by the SDK: a 200 whose body is not JSON, has no content, null
usage or wrongly typed fields is an unreadable reply like any other (the SDK would raise
`JSONDecodeError`, `TypeError` or `AttributeError`, which a retry cannot fix). So is a reply
whose proposals fit the schema but not `bounds` (absurd numbers, unstorable characters,
oversized fields).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anthropic
from anthropic.types import Message
from pydantic import SecretStr, ValidationError

from charter.reasoners import bounds
from charter.reasoners.base import (
    ModelRefused,
    ReasonerRejected,
    ReasonerUnavailable,
    Reasoning,
    UnparseableReply,
)
from charter.reasoners.prompt import (
    TOOL_NAME,
    ProposalBatch,
    observation_message,
    system_blocks,
    tool_definition,
)
from charter.reasoners.reply_stream import BoundedReplies, UnreadableBody
from charter.runtime.retry_after import retry_after_seconds
from schemas import Constitution, Observation, ProposedAction, TokenUsage

#: Statuses for which the same request can never succeed.
_REFUSED = {400, 401, 403, 404, 413, 422}
#: Raw replies are kept for the human who reviews the escalation; bound what history carries.
RAW_REPLY_LIMIT = 8000
_PROBLEM_LIMIT = 20
#: A reply is read up to this, on the wire and decompressed, and no further: `max_tokens`
#: keeps a real one far smaller.
MAX_REPLY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """One answer of the Messages API: the message, or why its envelope could not be read."""

    message: Message | None
    raw: str
    """The reply for the human who reviews an escalation: bounded, storable."""
    problems: list[str] = field(default_factory=list)


def _usage(reply: Reply, model: str) -> TokenUsage:
    message = reply.message
    if message is None:
        return TokenUsage(model=model, requests=1)
    u = message.usage
    return TokenUsage(
        model=bounds.printable(message.model or model, 100),
        requests=1,
        input_tokens=max(u.input_tokens or 0, 0),
        cache_creation_input_tokens=max(u.cache_creation_input_tokens or 0, 0),
        cache_read_input_tokens=max(u.cache_read_input_tokens or 0, 0),
        output_tokens=max(u.output_tokens or 0, 0),
    )


def _storable(node: Any) -> Any:
    """`node` with every string made storable (the corrective request echoes the reply)."""
    if isinstance(node, str):
        return bounds.printable(node, RAW_REPLY_LIMIT)
    if isinstance(node, dict):
        return {bounds.printable(str(k), 200): _storable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_storable(v) for v in node]
    return node


def _content(message: Message) -> list[dict[str, Any]]:
    blocks = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
    result: list[dict[str, Any]] = _storable(blocks)
    return result


def _bounded(text: str) -> str:
    return text if len(text) <= RAW_REPLY_LIMIT else text[:RAW_REPLY_LIMIT] + "…[truncated]"


def _raw(message: Message) -> str:
    # ensure_ascii: NULs and lone surrogates are escaped, so the text can be stored.
    return _bounded(
        json.dumps(
            {"stop_reason": message.stop_reason, "content": _content(message)}, sort_keys=True
        )
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_reply(body: bytes) -> Reply:
    """A 200 body as a `Reply`; never raises: what cannot be read becomes its problems."""
    if len(body) > MAX_REPLY_BYTES:
        return Reply(
            None,
            _bounded(bounds.printable(body[:RAW_REPLY_LIMIT].decode("utf-8", "replace"), 10**6)),
            [f"the reply is {len(body):,} bytes; at most {MAX_REPLY_BYTES:,} are read"],
        )
    raw = _bounded(bounds.printable(body.decode("utf-8", "replace"), 10**7))
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return Reply(None, raw, [f"the reply is not JSON: {bounds.printable(str(exc), 200)}"])
    if not isinstance(data, dict):
        return Reply(None, raw, ["the reply is not a JSON object"])
    try:
        message = Message.model_validate(data)
    except ValidationError as exc:
        problems = [
            bounds.printable(f"reply.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
            for e in exc.errors()[:_PROBLEM_LIMIT]
        ]
        return Reply(None, raw, problems)
    except (ValueError, TypeError, RecursionError) as exc:  # a validator that raised oddly
        return Reply(None, raw, [f"the reply could not be read: {type(exc).__name__}"])
    return Reply(message, _raw(message))


def _error_detail(exc: anthropic.APIStatusError) -> tuple[str, str]:
    """The provider's error type and message, from the response body only (never headers)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    kind = bounds.printable(str(error.get("type") or "api_error"), 64)
    message = bounds.printable(str(error.get("message") or exc.message), 500)
    return kind, message


def _call_problems(message: Message) -> list[str]:
    """Why the tool calls of a reply are not the one call it must make; empty when they are."""
    calls = [b for b in message.content if b.type == "tool_use"]
    if message.stop_reason == "max_tokens":
        return ["the reply was cut off at max_tokens"]
    if not calls:
        return [f"the reply did not call {TOOL_NAME} (stop_reason {message.stop_reason})"]
    problems = [
        f"the reply called {bounds.printable(b.name, 64)!r}, a tool it was not offered"
        for b in calls
        if b.name != TOOL_NAME
    ]
    if len(calls) > 1:
        problems.append(f"the reply made {len(calls)} tool calls; exactly one is read")
    return problems


def read_reply(reply: Reply) -> tuple[list[ProposedAction] | None, list[str], str | None]:
    """Proposals from a reply, or the problems that make it unreadable, and the tool call id.

    Raises `ModelRefused` when the model declined to answer (`stop_reason` refusal): that is
    shown to a human as it is, never corrected nor read as "nothing to do"."""
    message = reply.message
    if message is None:
        return None, reply.problems, None
    if message.stop_reason == "refusal":
        raise ModelRefused(raw_reply=reply.raw)
    call = next((b for b in message.content if b.type == "tool_use"), None)
    if problems := _call_problems(message):
        return None, problems, call.id if call is not None else None
    assert call is not None and call.type == "tool_use"
    try:
        batch = ProposalBatch.model_validate(call.input)
    except ValidationError as exc:
        problems = [
            bounds.printable(f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}")
            for e in exc.errors()[:_PROBLEM_LIMIT]
        ]
        return None, problems, call.id
    except (ValueError, TypeError, RecursionError) as exc:
        return None, [f"(input): could not be read ({type(exc).__name__})"], call.id
    proposals = list(batch.proposals)
    problems = bounds.problems(proposals)[:_PROBLEM_LIMIT]
    if problems:
        return None, problems, call.id
    return proposals, [], call.id


def _correction(reply: Reply, problems: list[str], call_id: str | None) -> list[dict[str, Any]]:
    """The turns that tell the model what was wrong with its reply."""
    text = (
        f"Your {TOOL_NAME} input was not valid:\n- "
        + "\n- ".join(problems)
        + f"\nCall {TOOL_NAME} again with input that matches its schema exactly."
    )
    content = _content(reply.message) if reply.message is not None else []
    assistant = {"role": "assistant", "content": content}
    if call_id is not None:
        result = {"type": "tool_result", "tool_use_id": call_id, "is_error": True, "content": text}
        return [assistant, {"role": "user", "content": [result]}]
    turns = [assistant] if content else []
    return [*turns, {"role": "user", "content": [{"type": "text", "text": text}]}]


def _request_failure(
    exc: anthropic.APIConnectionError | anthropic.APIStatusError, timeout: timedelta
) -> ReasonerUnavailable | ReasonerRejected:
    """What a failed Messages API request means for the run: a refusal of the request itself
    (not retried), or the model unavailable for now (retried, then a human decides)."""
    if isinstance(exc, anthropic.APIStatusError):
        kind, detail = _error_detail(exc)
        text = f"Messages API answered {exc.status_code} {kind}: {detail}"
        if exc.status_code in _REFUSED:
            return ReasonerRejected(text, status=exc.status_code, error_type=kind)
        wait = retry_after_seconds(exc.response.headers.get("retry-after"))
        return ReasonerUnavailable(text, status=exc.status_code, retry_after=wait)
    if isinstance(exc, anthropic.APITimeoutError):
        text = f"the Messages API did not finish its reply within {timeout.total_seconds():g}s"
    else:
        text = f"could not reach the Messages API: {type(exc.__cause__ or exc).__name__}"
    return ReasonerUnavailable(text, status=None, retry_after=None)


class ClaudeReasoner:
    name = "claude"

    def __init__(
        self,
        *,
        api_key: SecretStr,
        model: str,
        max_tokens: int,
        timeout: timedelta,
        base_url: str | None = None,
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.timeout = timeout
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key.get_secret_value(),
            base_url=base_url,
            timeout=timeout.total_seconds(),
            max_retries=0,  # Temporal's retry policy owns retries
            http_client=anthropic.DefaultAsyncHttpxClient(
                transport=BoundedReplies(MAX_REPLY_BYTES)
            ),
        )

    async def _create(self, constitution: Constitution, messages: list[dict[str, Any]]) -> Reply:
        """One request, from connect to the reply's last byte within `timeout` of wall-clock
        time: the SDK's timeout bounds each read, so a reply dripped a byte at a time would
        never trip it."""
        try:
            async with asyncio.timeout(self.timeout.total_seconds()):
                body = await self._send(constitution, messages)
        except TimeoutError:
            text = f"the Messages API did not finish its reply within {self.timeout.total_seconds():g}s"
            raise ReasonerUnavailable(text, status=None, retry_after=None) from None
        except anthropic.APIConnectionError as exc:
            if isinstance(exc.__cause__, UnreadableBody):
                return Reply(None, "", [bounds.printable(str(exc.__cause__))])
            raise _request_failure(exc, self.timeout) from None
        except anthropic.APIStatusError as exc:
            raise _request_failure(exc, self.timeout) from None
        return parse_reply(body)

    async def _send(self, constitution: Constitution, messages: list[dict[str, Any]]) -> bytes:
        # The SDK's overloads want its TypedDicts; these dicts are built to the same shape.
        # The raw response: Charter reads the body itself (see the module docstring).
        create: Any = self._client.messages.with_raw_response.create
        response = await create(
            model=self.model,
            max_tokens=self.max_tokens,
            system=system_blocks(constitution),
            tools=[tool_definition()],
            tool_choice={"type": "tool", "name": TOOL_NAME},
            messages=messages,
            timeout=self.timeout.total_seconds(),
        )
        body: bytes = await response.read()
        return body

    async def _ask(
        self, constitution: Constitution, messages: list[dict[str, Any]], usage: TokenUsage | None
    ) -> tuple[Reply, TokenUsage, tuple[list[ProposedAction] | None, list[str], str | None]]:
        reply = await self._create(constitution, messages)
        spent = _usage(reply, self.model) if usage is None else usage + _usage(reply, self.model)
        try:
            return reply, spent, read_reply(reply)
        except ModelRefused as exc:
            exc.usage = spent
            raise

    async def reason(self, observation: Observation, constitution: Constitution) -> Reasoning:
        messages = [observation_message(observation)]
        first, usage, (proposals, problems, call_id) = await self._ask(constitution, messages, None)
        if proposals is not None:
            return Reasoning(proposals=proposals, usage=usage)
        # One corrective retry, in the same activity attempt: the model sees its own reply
        # and what was wrong with it.
        correction = messages + _correction(first, problems, call_id)
        second, usage, (proposals, again, _) = await self._ask(constitution, correction, usage)
        if proposals is not None:
            return Reasoning(proposals=proposals, usage=usage)
        raise UnparseableReply(
            problems=[f"attempt 1: {p}" for p in problems] + [f"attempt 2: {p}" for p in again],
            raw_replies=[first.raw, second.raw],
            usage=usage,
        )

    async def propose(
        self, observation: Observation, constitution: Constitution
    ) -> list[ProposedAction]:
        return (await self.reason(observation, constitution)).proposals
