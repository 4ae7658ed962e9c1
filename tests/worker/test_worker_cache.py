"""A worker keeps a workflow cache: a run's start, verdicts and end are local activities,
which a worker without a cache cancels at every eviction and runs again on replay."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from activities import Deps
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from tests.support.vault import session_vault
from worker import build_worker


async def test_a_worker_without_a_cache_is_refused(client: Client, db: Database) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        build_worker(
            client,
            Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()),
            "no-cache",
            0,
        )
    build_worker(
        client,
        Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()),
        "small-cache",
        1,
    )
