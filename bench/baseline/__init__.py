"""The baseline of bench/agent_loop.py: a workflow that runs four no-op activities in turn.

It lives in a package of its own: the workflow sandbox imports a workflow's module by name,
which the benchmark script (run as `__main__`) is not, and `make bench` runs every
bench/*.py file.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from charter.temporal import search_attributes as sa

_NAMES = ("bare_start", "bare_observe", "bare_reason", "bare_finish")


def _noop(name: str):  # type: ignore[no-untyped-def]
    @activity.defn(name=name)
    async def noop(value: str) -> str:
        return value

    return noop


NOOP_ACTIVITIES = [_noop(name) for name in _NAMES]


@workflow.defn(name="BareLoop")
class BareLoop:
    @workflow.run
    async def run(self, value: str) -> str:
        for name in _NAMES:
            value = await workflow.execute_activity(
                name, value, result_type=str, start_to_close_timeout=timedelta(seconds=60)
            )
        return value


@workflow.defn(name="BareWait")
class BareWait:
    """The parked baseline: one no-op activity, then wait for a signal that never comes.
    It sets the same search attributes as a parked AgentLoop so the bench counts both alike."""

    def __init__(self) -> None:
        self._done = False

    @workflow.signal
    def done(self) -> None:
        self._done = True

    @workflow.run
    async def run(self, tag: str) -> str:
        value: str = await workflow.execute_activity(
            _NAMES[0], tag, result_type=str, start_to_close_timeout=timedelta(seconds=60)
        )
        workflow.upsert_search_attributes(
            [sa.TENANT.value_set(tag), sa.STAGE.value_set("awaiting_decision")]
        )
        await workflow.wait_condition(lambda: self._done)
        return value
