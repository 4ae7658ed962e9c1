"""Workflows. Nothing here does I/O: every side effect is an activity."""

from workflows.agent_loop import AgentLoop

__all__ = ["AgentLoop"]
