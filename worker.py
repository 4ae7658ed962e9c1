"""The Charter worker: runs `AgentLoop` and its activities on the `charter` task queue.

python worker.py          # uses TEMPORAL_ADDRESS / DATABASE_URL, or the embedded stack
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities import Deps, all_activities
from charter.reasoners import OfflineReasoner, Reasoner
from charter.reasoners.claude import ClaudeReasoner
from charter.runtime import redaction
from charter.runtime.config import Settings
from charter.runtime.embedded import ensure_stack
from charter.runtime.process import exit_now
from charter.slack import SlackSettings, notifier_for
from charter.storage import Database
from charter.temporal.plugin import connect
from workflows import AgentLoop

#: A parked workflow costs memory while cached (bench/agent_loop.py measured ~230 KiB for a
#: parked AgentLoop on a 2-core dev machine, against ~25 KiB for a bare one); bound the cache so
#: thousands of runs waiting on humans do not grow the worker without limit. 500 keeps a full
#: cache near 120 MiB; an evicted run is rebuilt from history when its decision arrives.
MAX_CACHED_WORKFLOWS = 500


def build_worker(
    client: Client,
    deps: Deps,
    task_queue: str = "charter",
    max_cached_workflows: int = MAX_CACHED_WORKFLOWS,
) -> Worker:
    """A worker with every Charter workflow and activity. The plugin comes with the client.

    `max_cached_workflows` is a parameter only for bench/agent_loop.py, which shows the bound
    at work with a smaller cache."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AgentLoop],
        activities=all_activities(deps),
        activity_executor=ThreadPoolExecutor(4),
        max_cached_workflows=max_cached_workflows,
    )


def default_reasoner(settings: Settings | None = None) -> Reasoner:
    """Claude when `ANTHROPIC_API_KEY` is set; the deterministic offline reasoner otherwise."""
    settings = settings or Settings()
    if settings.anthropic_api_key is None:
        return OfflineReasoner()

    return ClaudeReasoner(
        api_key=settings.anthropic_api_key,
        model=settings.model,
        max_tokens=settings.max_tokens,
        timeout=settings.reasoner_timeout,
        base_url=settings.anthropic_base_url,
    )


async def run_worker(
    settings: Settings, temporal_address: str, app_dsn: str, stop: asyncio.Event | None = None
) -> None:

    client = await connect(settings, temporal_address)
    db = await Database.connect(app_dsn)
    try:
        notifier = notifier_for(
            SlackSettings(),
            db,
            ui_url=settings.temporal_ui_url,
            namespace=settings.temporal_namespace,
        )
        deps = Deps(
            db=db,
            reasoner=default_reasoner(settings),
            notifier=notifier,
            max_observation_age=settings.max_observation_age,
        )
        worker = build_worker(client, deps, settings.task_queue)
        async with worker:
            await (stop or asyncio.Event()).wait()
    finally:
        await db.close()


def main() -> None:

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    redaction.install()
    settings = Settings()

    async def serve() -> None:
        stack = await ensure_stack(settings)
        await run_worker(settings, stack.temporal_address, stack.app_dsn)

    asyncio.run(serve())

    exit_now(0)


if __name__ == "__main__":
    main()
