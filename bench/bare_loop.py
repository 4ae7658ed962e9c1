"""The baseline of bench/agent_loop.py: a workflow that runs four no-op activities in turn.

It lives in a module of its own (not the benchmark script, which runs as `__main__`) so the
workflow sandbox can import it like any workflow module.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

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
