"""The rule for retiring a patch (docs/architecture.md, "Retiring a patch"), shown on one
small workflow in its four generations (tests/support/patch_generations.py): which recorded
histories each generation replays, and which it refuses with a nondeterminism error.

The histories under tests/histories/patch_retirement/ were each recorded by its generation;
re-record them with
`CHARTER_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/workflows/test_patch_retirement.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.workflow import NondeterminismError

from charter.config.settings import Settings
from charter.temporal.plugin import CharterPlugin
from tests.support.patch_generations import ACTIVITIES, GENERATIONS, PATCH, WORKFLOW_TYPE
from tests.support.replaying import load, patch_markers, replay_failures

HISTORIES = Path(__file__).parent.parent / "histories" / "patch_retirement"

#: What each generation's code replays, by the generation that recorded the history. Each
#: replays its neighbours' histories, so a deployment can go back one step; the deprecated
#: code refuses a history that passed the patch under the original code, and the removed
#: code one holding the patched code's marker.
REPLAYS = {
    "original": {"original"},
    "patched": {"original", "patched", "deprecated"},
    "deprecated": {"patched", "deprecated", "removed"},
    "removed": {"deprecated", "removed"},
}

#: The patch markers each generation records: none before the patch and after its removal.
MARKERS: dict[str, dict[str, bool]] = {
    "original": {},
    "patched": {PATCH: False},
    "deprecated": {PATCH: True},
    "removed": {},
}


@pytest.mark.skipif(
    not os.environ.get("CHARTER_RECORD_HISTORIES"),
    reason="set CHARTER_RECORD_HISTORIES=1 to re-record",
)
async def test_record_each_generation(time_env: WorkflowEnvironment) -> None:
    HISTORIES.mkdir(exist_ok=True)
    for name, generation in GENERATIONS.items():
        queue = f"patch-retirement-{name}"
        async with Worker(
            time_env.client, task_queue=queue, workflows=[generation], activities=ACTIVITIES
        ):
            handle = await time_env.client.start_workflow(
                WORKFLOW_TYPE, "Ada", id=f"patch-retirement-{name}", task_queue=queue
            )
            await handle.result()
            history = await handle.fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json(), encoding="utf-8")


def test_each_history_was_recorded_by_its_generation() -> None:
    assert sorted(p.stem for p in HISTORIES.glob("*.json")) == sorted(GENERATIONS)
    for name, markers in MARKERS.items():
        assert patch_markers(load(HISTORIES / f"{name}.json")) == markers, name


@pytest.mark.parametrize("generation", list(GENERATIONS))
async def test_each_generation_replays_its_neighbours_and_refuses_the_rest(
    generation: str,
) -> None:
    histories = [load(HISTORIES / f"{name}.json") for name in GENERATIONS]
    refused = await replay_failures(
        histories, [GENERATIONS[generation]], [CharterPlugin.from_settings(Settings())]
    )
    assert set(GENERATIONS) - set(refused) == REPLAYS[generation]
    assert all(isinstance(failure, NondeterminismError) for failure in refused.values())
