"""What a reasoning step costs and how it can fail, as carried from the reason activity.

Token usage is recorded for every run (audit trail, `charter usage`). A reply that cannot be
read as proposals is not an error to retry forever: after one corrective retry it becomes a
`ReasoningFailure` that the workflow turns into an escalation, with the raw reply attached,
and nothing executes.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from schemas.frozen import FrozenModel

#: The proposal id of the exception that holds an unreadable reply: it has no proposal, and
#: real proposals are numbered from p1.
REASONING_FAILURE_PROPOSAL_ID: Final = "p0"

#: Proposal ids are p1..p999 and exception ids carry them; a reply with more proposals is
#: refused as unreadable rather than cut short (dropping proposals silently would hide what
#: the model asked for).
MAX_PROPOSALS: Final = 999


class TokenUsage(FrozenModel):
    """Tokens a model call consumed, as the provider reported them (summed over requests)."""

    model: str
    requests: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0, description="Uncached input tokens.")
    cache_creation_input_tokens: int = Field(
        default=0, ge=0, description="Input tokens written to the prompt cache."
    )
    cache_read_input_tokens: int = Field(
        default=0, ge=0, description="Input tokens served from the prompt cache."
    )
    output_tokens: int = Field(default=0, ge=0)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            model=self.model,
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class ReasoningFailure(FrozenModel):
    """The reasoner answered, but not with proposals Charter can read, or the model stayed
    unavailable past its retry budget, or (`books_unavailable`) the books' provider did
    before anything was reasoned. Never executed."""

    kind: Literal["unparseable_reply", "model_unavailable", "refusal", "books_unavailable"] = (
        "unparseable_reply"
    )
    message: str
    problems: list[str] = Field(
        default_factory=list, description="Why each attempt was refused, one line per problem."
    )
    raw_replies: list[str] = Field(
        default_factory=list,
        description="The model's replies verbatim (truncated), first attempt and corrective retry.",
    )
    exception_id: str | None = Field(
        default=None, description="The exception a human reviews; set once it is recorded."
    )
