"""Task queues the test workers listen on."""

from __future__ import annotations

#: The session worker's queue (the `worker` fixture); tests that start runs for it use it.
TASK_QUEUE = "charter-test"
