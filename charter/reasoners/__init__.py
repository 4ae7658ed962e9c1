"""Reasoners turn an observation and a constitution into proposals."""

from charter.reasoners.base import (
    MeteredReasoner,
    ModelRefused,
    Reasoner,
    ReasonerError,
    ReasonerRejected,
    ReasonerUnavailable,
    Reasoning,
    RetryBudget,
    UnparseableReply,
    reason_with,
)
from charter.reasoners.offline import OfflineReasoner

__all__ = [
    "MeteredReasoner",
    "ModelRefused",
    "OfflineReasoner",
    "Reasoner",
    "ReasonerError",
    "ReasonerRejected",
    "ReasonerUnavailable",
    "Reasoning",
    "RetryBudget",
    "UnparseableReply",
    "reason_with",
]
