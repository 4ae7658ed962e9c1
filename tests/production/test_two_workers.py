"""Two worker processes on one task queue serve many runs between them, each exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections import Counter
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.testing import WorkflowEnvironment

from charter.config.settings import app_dsn
from charter.storage import Database, audit_trail
from schemas import AgentRunInput
from starter import start_run
from tests.support.polling import eventually
from tests.support.processes import child, clean_env, worker_py

#: Enough for both workers to take part many times over once both are polling.
RUNS = 60


async def _polling(env: WorkflowEnvironment, queue: str, count: int) -> bool:
    """Whether `count` distinct workers poll `queue` for workflow tasks."""
    request = DescribeTaskQueueRequest(
        namespace=env.client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    response = await env.client.workflow_service.describe_task_queue(request)
    return len({poller.identity for poller in response.pollers}) >= count


@pytest.mark.timeout(600)
async def test_two_workers_serve_each_run_exactly_once(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment, db: Database, tenant: str
) -> None:
    queue = f"pair-{uuid.uuid4().hex[:8]}"
    env_of_workers = clean_env(
        tmp_path,
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        CHARTER_APP_DATABASE_URL=app_dsn(admin_dsn),
        CHARTER_TASK_QUEUE=queue,
        CHARTER_STATE_DIR=str(tmp_path / "state"),
    )
    pipes = {"stdout": asyncio.subprocess.DEVNULL, "stderr": asyncio.subprocess.PIPE}
    # Killed at the end of the block if a SIGTERM did not stop them.
    async with contextlib.AsyncExitStack() as running:
        workers = [
            await running.enter_async_context(
                child(env_of_workers, worker_py(), cwd=tmp_path, **pipes)
            )
            for _ in range(2)
        ]
        try:
            # Both serve before the first run starts, so neither can take every run alone.
            await eventually(lambda: _polling(env, queue, 2), timeout=120, interval=0.5)
            # Runs that read, reason and finish: an invoice nobody sent proposes nothing.
            handles = await asyncio.gather(
                *(
                    start_run(
                        env.client,
                        AgentRunInput(
                            tenant_id=tenant,
                            agent="payables",
                            trigger=f"load-{n}",
                            focus=["INV-0000"],
                        ),
                        task_queue=queue,
                    )
                    for n in range(RUNS)
                )
            )
            results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 480)
            assert len(results) == RUNS and all(r.proposals == [] for r in results)

            histories = await asyncio.gather(*(h.fetch_history() for h in handles))
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            # Each may take its whole shutdown grace (30 s) to let activities finish.
            codes = [await asyncio.wait_for(w.wait(), 60) for w in workers]
    assert codes == [0, 0]

    # Both processes took part: workflow tasks were completed by two worker identities.
    identities = {
        event.workflow_task_completed_event_attributes.identity
        for history in histories
        for event in history.events
        if event.HasField("workflow_task_completed_event_attributes")
    }
    pids = {str(w.pid) for w in workers}
    assert {identity.split("@")[0] for identity in identities} == pids

    # Exactly once: each run observed the books once and finished once, in the audit trail.
    async with db.tenant(tenant) as conn:
        kinds = Counter([(e.workflow_id, e.kind) async for e in audit_trail.entries(conn, tenant)])
    for handle in handles:
        assert kinds[(handle.id, "observed")] == 1, handle.id
    assert len({h.id for h in handles}) == RUNS
