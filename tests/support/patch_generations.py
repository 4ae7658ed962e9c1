"""One small workflow in the four generations a patch goes through (docs/architecture.md,
"Retiring a patch"): the original code, the change behind `workflow.patched`, the patch
deprecated with `workflow.deprecate_patch`, and the patch removed.

Every generation has the same workflow type, as successive deployments of one workflow do;
each greets through an activity, so the old and the new branch issue different commands
(a different activity type) and a replay on the wrong branch is a nondeterminism.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

WORKFLOW_TYPE = "PatchRetirement"
PATCH = "greet-in-full"
_TIMEOUT = timedelta(seconds=30)


@activity.defn
async def greet_briefly(name: str) -> str:
    return f"Hi {name}"


@activity.defn
async def greet_in_full(name: str) -> str:
    return f"Good morning, {name}"


ACTIVITIES = [greet_briefly, greet_in_full]


async def _briefly(name: str) -> str:
    return await workflow.execute_activity(greet_briefly, name, start_to_close_timeout=_TIMEOUT)


async def _in_full(name: str) -> str:
    return await workflow.execute_activity(greet_in_full, name, start_to_close_timeout=_TIMEOUT)


@workflow.defn(name=WORKFLOW_TYPE)
class Original:
    """Before the change: the brief greeting only."""

    @workflow.run
    async def run(self, name: str) -> str:
        return await _briefly(name)


@workflow.defn(name=WORKFLOW_TYPE)
class Patched:
    """The change behind the patch: new runs greet in full, runs that passed here under the
    original code replay their brief greeting."""

    @workflow.run
    async def run(self, name: str) -> str:
        if workflow.patched(PATCH):
            return await _in_full(name)
        return await _briefly(name)


@workflow.defn(name=WORKFLOW_TYPE)
class Deprecated:
    """The old branch gone; the marker is still written, so the patched generation can
    replay what this one records."""

    @workflow.run
    async def run(self, name: str) -> str:
        workflow.deprecate_patch(PATCH)
        return await _in_full(name)


@workflow.defn(name=WORKFLOW_TYPE)
class Removed:
    """No trace of the patch left."""

    @workflow.run
    async def run(self, name: str) -> str:
        return await _in_full(name)


#: In deployment order.
GENERATIONS: dict[str, type] = {
    "original": Original,
    "patched": Patched,
    "deprecated": Deprecated,
    "removed": Removed,
}
