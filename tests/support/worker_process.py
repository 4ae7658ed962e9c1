"""A Charter worker in a process of its own, for tests that kill it with SIGKILL.

    python -m tests.support.worker_process TEMPORAL_TARGET APP_DSN TASK_QUEUE

Prints "ready" once it polls. Keys come from the environment the test process set up.
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client

from activities import Deps
from charter.config.settings import Settings
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from charter.temporal.plugin import CharterPlugin
from tests.support.vault import session_vault
from worker import build_worker


async def serve(target: str, dsn: str, task_queue: str) -> None:
    client = await Client.connect(target, plugins=[CharterPlugin.from_settings(Settings())])
    db = await Database.connect(dsn)
    try:
        async with build_worker(
            client, Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()), task_queue
        ):
            print("ready", flush=True)
            await asyncio.Event().wait()
    finally:
        await db.close()


if __name__ == "__main__":
    asyncio.run(serve(*sys.argv[1:4]))
