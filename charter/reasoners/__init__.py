"""Reasoners turn an observation and a constitution into proposals."""

from charter.reasoners.base import Reasoner
from charter.reasoners.offline import OfflineReasoner

__all__ = ["OfflineReasoner", "Reasoner"]
