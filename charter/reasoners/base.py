"""The reasoner interface. The Claude reasoner and the offline reasoner both implement it.

A reasoner's output is a claim. Nothing it says is trusted by the gate: facts come from the
observation, authority comes from the constitution.

`propose` is the whole interface. A reasoner backed by a paid model also implements
`reason`, which reports token usage beside the proposals; `reason_with` calls whichever the
reasoner has, so the activity treats both kinds alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, runtime_checkable

from schemas import Constitution, Observation, ProposedAction, TokenUsage


class Reasoner(Protocol):
    name: str

    async def propose(
        self, observation: Observation, constitution: Constitution
    ) -> list[ProposedAction]: ...


@dataclass(frozen=True)
class Reasoning:
    proposals: list[ProposedAction]
    usage: TokenUsage | None = None


@runtime_checkable
class MeteredReasoner(Protocol):
    name: str

    async def reason(self, observation: Observation, constitution: Constitution) -> Reasoning: ...


async def reason_with(
    reasoner: Reasoner, observation: Observation, constitution: Constitution
) -> Reasoning:
    if isinstance(reasoner, MeteredReasoner):
        return await reasoner.reason(observation, constitution)
    return Reasoning(proposals=await reasoner.propose(observation, constitution))


@dataclass(frozen=True)
class RetryBudget:
    """How long a run keeps asking a model before a human is told instead.

    One budget for every failure kind (an error status, a refused connection, a request or
    an attempt past its deadline, a worker lost mid-attempt), counted from the first attempt
    of the reason activity: after `attempts` attempts, or once `time` has passed, the run
    escalates "model unavailable" and proposes nothing. An attempt may start a request until
    `time` is spent and is cut off `request` after that, so a run escalates at the latest
    `time + request` after its first attempt (plus the audit write), whatever the model does.
    `attempt` bounds one attempt (a request and its corrective request), below the
    workflow's start-to-close timeout of the activity."""

    attempts: int = 8
    time: timedelta = timedelta(minutes=15)
    request: timedelta = timedelta(minutes=2)
    attempt: timedelta = timedelta(minutes=4, seconds=30)
    first_backoff: timedelta = timedelta(seconds=1)
    longest_backoff: timedelta = timedelta(seconds=30)

    def backoff(self, attempt: int) -> timedelta:
        """The wait after failed attempt `attempt` (1-based): doubling, capped."""
        doubled: timedelta = self.first_backoff * (2 ** min(attempt - 1, 30))
        return min(doubled, self.longest_backoff)


class ReasonerError(Exception):
    """Base of what a reasoner raises. Messages never contain credentials."""


class ReasonerUnavailable(ReasonerError):
    """Transient: rate limited, overloaded, a server error, a timeout. Worth retrying."""

    def __init__(self, message: str, *, status: int | None, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ReasonerRejected(ReasonerError):
    """The provider refused the request itself (bad request, authentication, permission).

    Retrying the same request cannot succeed, so this is not retried.
    """

    def __init__(self, message: str, *, status: int, error_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type

    @property
    def authentication(self) -> bool:
        return self.status in (401, 403)


@dataclass
class UnparseableReply(ReasonerError):
    """The model answered, twice, with something that is not a valid set of proposals."""

    problems: list[str]
    raw_replies: list[str]
    usage: TokenUsage | None = field(default=None)

    def __str__(self) -> str:
        return "the reasoner's reply could not be read as proposals: " + "; ".join(
            self.problems[-3:]
        )


@dataclass
class ModelRefused(ReasonerError):
    """The model declined to answer (`stop_reason: refusal`). Shown to a human as it is."""

    raw_reply: str
    usage: TokenUsage | None = field(default=None)

    def __str__(self) -> str:
        return "the model refused to answer (stop_reason refusal): " + self.raw_reply[:500]
