"""Workflows. Nothing here does I/O: every side effect is an activity."""

from workflows.agent_loop import AgentLoop
from workflows.audit_checkpoint import AuditCheckpoint

__all__ = ["AgentLoop", "AuditCheckpoint"]
