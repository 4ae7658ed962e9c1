"""The Claude reasoner: the Messages API through the `anthropic` SDK, with a forced tool call.

Retries belong to Temporal, not to the SDK (`max_retries=0`): one activity attempt makes at
most one request, plus at most one corrective request when the reply does not parse. A
transient failure raises `ReasonerUnavailable` (the activity is retried with backoff); a
refused request raises `ReasonerRejected` (not retried). A reply that is still unreadable
after the corrective request raises `UnparseableReply` with the raw replies, which the run
escalates; nothing is executed from it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import anthropic
from anthropic.types import Message
from pydantic import SecretStr, ValidationError

from charter.reasoners.base import (
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
from schemas import Constitution, Observation, ProposedAction, TokenUsage

#: Statuses for which the same request can never succeed.
_REFUSED = {400, 401, 403, 404, 413, 422}
#: Raw replies are kept for the human who reviews the escalation; bound what history carries.
RAW_REPLY_LIMIT = 8000
_PROBLEM_LIMIT = 20


def _usage(message: Message, model: str) -> TokenUsage:
    u = message.usage
    return TokenUsage(
        model=message.model or model,
        requests=1,
        input_tokens=u.input_tokens or 0,
        cache_creation_input_tokens=u.cache_creation_input_tokens or 0,
        cache_read_input_tokens=u.cache_read_input_tokens or 0,
        output_tokens=u.output_tokens or 0,
    )


def _content(message: Message) -> list[dict[str, Any]]:
    return [block.model_dump(mode="json", exclude_none=True) for block in message.content]


def _raw(message: Message) -> str:
    text = json.dumps(
        {"stop_reason": message.stop_reason, "content": _content(message)}, sort_keys=True
    )
    return text if len(text) <= RAW_REPLY_LIMIT else text[:RAW_REPLY_LIMIT] + "…[truncated]"


def _error_detail(exc: anthropic.APIStatusError) -> tuple[str, str]:
    """The provider's error type and message, from the response body only (never headers)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    kind = str(error.get("type") or "api_error")
    message = str(error.get("message") or exc.message)[:500]
    return kind, message


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return min(float(value), 300.0) if value is not None else None
    except ValueError:
        return None


def read_reply(message: Message) -> tuple[list[ProposedAction] | None, list[str], str | None]:
    """Proposals from a reply, or the problems that make it unreadable, and the tool call id."""
    call = next((b for b in message.content if b.type == "tool_use" and b.name == TOOL_NAME), None)
    if call is None:
        problems = [f"the reply did not call {TOOL_NAME} (stop_reason {message.stop_reason})"]
        return None, problems, None
    if message.stop_reason == "max_tokens":
        return None, ["the reply was cut off at max_tokens"], call.id
    try:
        batch = ProposalBatch.model_validate(call.input)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}"
            for e in exc.errors()[:_PROBLEM_LIMIT]
        ]
        return None, problems, call.id
    return list(batch.proposals), [], call.id


def _correction(message: Message, problems: list[str], call_id: str | None) -> list[dict[str, Any]]:
    """The turns that tell the model what was wrong with its reply."""
    text = (
        f"Your {TOOL_NAME} input was not valid:\n- "
        + "\n- ".join(problems)
        + f"\nCall {TOOL_NAME} again with input that matches its schema exactly."
    )
    assistant = {"role": "assistant", "content": _content(message)}
    if call_id is not None:
        result = {"type": "tool_result", "tool_use_id": call_id, "is_error": True, "content": text}
        return [assistant, {"role": "user", "content": [result]}]
    turns = [assistant] if message.content else []
    return [*turns, {"role": "user", "content": [{"type": "text", "text": text}]}]


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
        )

    async def _create(self, constitution: Constitution, messages: list[dict[str, Any]]) -> Message:
        # The SDK's overloads want its TypedDicts; these dicts are built to the same shape.
        create: Any = self._client.messages.create
        try:
            message: Message = await create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=system_blocks(constitution),
                tools=[tool_definition()],
                tool_choice={"type": "tool", "name": TOOL_NAME},
                messages=messages,
                timeout=self.timeout.total_seconds(),
            )
            return message
        except anthropic.APITimeoutError:
            raise ReasonerUnavailable(
                f"the Messages API did not answer within {self.timeout.total_seconds():g}s",
                status=None,
                retry_after=None,
            ) from None
        except anthropic.APIConnectionError as exc:
            raise ReasonerUnavailable(
                f"could not reach the Messages API: {type(exc.__cause__ or exc).__name__}",
                status=None,
                retry_after=None,
            ) from None
        except anthropic.APIStatusError as exc:
            kind, detail = _error_detail(exc)
            text = f"Messages API answered {exc.status_code} {kind}: {detail}"
            if exc.status_code in _REFUSED:
                raise ReasonerRejected(text, status=exc.status_code, error_type=kind) from None
            raise ReasonerUnavailable(
                text, status=exc.status_code, retry_after=_retry_after(exc)
            ) from None

    async def reason(self, observation: Observation, constitution: Constitution) -> Reasoning:
        messages = [observation_message(observation)]
        first = await self._create(constitution, messages)
        usage = _usage(first, self.model)
        proposals, problems, call_id = read_reply(first)
        if proposals is not None:
            return Reasoning(proposals=proposals, usage=usage)
        # One corrective retry, in the same activity attempt: the model sees its own reply
        # and what was wrong with it.
        second = await self._create(constitution, messages + _correction(first, problems, call_id))
        usage = usage + _usage(second, self.model)
        proposals, again, _ = read_reply(second)
        if proposals is not None:
            return Reasoning(proposals=proposals, usage=usage)
        raise UnparseableReply(
            problems=[f"attempt 1: {p}" for p in problems] + [f"attempt 2: {p}" for p in again],
            raw_replies=[_raw(first), _raw(second)],
            usage=usage,
        )

    async def propose(
        self, observation: Observation, constitution: Constitution
    ) -> list[ProposedAction]:
        return (await self.reason(observation, constitution)).proposals
