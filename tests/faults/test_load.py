"""A small load run in `make faults`: runs across tenants wait on humans, then every
decision at once by update and by signal, on two worker processes. Nothing lost, nothing
doubled, every decision accepted. (`make load` runs the full size.)"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from charter.config.settings import Settings
from charter.storage import Database
from charter.temporal.plugin import CharterPlugin
from tests.support.faults.load import QUEUE, run_load
from tests.support.faults.servers import Temporal, worker_env


async def test_small_load_loses_and_doubles_nothing(
    dsn: str, temporal: Temporal, fdb: Database, tmp_path: Path
) -> None:
    env = worker_env(dsn, temporal.address, QUEUE, tmp_path / "state")
    client = await Client.connect(
        temporal.address, plugins=[CharterPlugin.from_settings(Settings())]
    )
    report = await run_load(
        runs=40,
        tenants=4,
        workers=2,
        client=client,
        db=fdb,
        worker_env=env,
        logs=tmp_path,
        admin_dsn=dsn,
    )
    print(report.table())
    assert report.completed == 40
    assert report.lost == 0 and report.doubled == 0
    assert report.accepted == 40 and report.refused == 0 and report.timed_out == 0
    assert len(report.latencies) == 40
    assert report.errors == []
