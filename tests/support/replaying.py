"""Replaying committed histories: load one, read the patch markers it holds, and replay many
at once keeping each one's failure."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Plugin, Replayer

#: The marker the SDK's core records for `workflow.patched` and `workflow.deprecate_patch`;
#: its `patch-data` detail is JSON the core writes itself, never through the payload codec.
PATCH_MARKER = "core_patch"


def load(path: Path) -> WorkflowHistory:
    """The history committed at `path`, named by its file."""
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


def patch_markers(history: WorkflowHistory) -> dict[str, bool]:
    """Each patch whose marker the history holds, and whether it was recorded deprecated."""
    markers: dict[str, bool] = {}
    for event in history.events:
        if not event.HasField("marker_recorded_event_attributes"):
            continue
        marker = event.marker_recorded_event_attributes
        if marker.marker_name != PATCH_MARKER:
            continue
        data = json.loads(marker.details["patch-data"].payloads[0].data)
        markers[data["id"]] = data["deprecated"]
    return markers


async def replay_failures(
    histories: Sequence[WorkflowHistory], workflows: Sequence[type], plugins: Sequence[Plugin]
) -> dict[str, Exception]:
    """Each history's failure to replay, by its name; those that replay are absent."""

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    failures: dict[str, Exception] = {}
    replayer = Replayer(workflows=workflows, plugins=plugins)
    async with replayer.workflow_replay_iterator(each()) as results:
        async for result in results:
            if result.replay_failure is not None:
                failures[result.history.workflow_id] = result.replay_failure
    return failures
