"""`charter temporal setup` prepares a server started with no Charter flags at all: after
it, a run's search attributes work. Run twice, it changes nothing. (Through the CLI's `main`
in this process, with the environment a child would get.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities import Deps
from charter.config.settings import Settings
from charter.reasoners import OfflineReasoner
from charter.stack.embedded import temporal_binary
from charter.storage import Database
from charter.temporal import search_attributes as sa
from charter.temporal.namespace import ensure_namespace
from charter.temporal.plugin import CharterPlugin
from tests.support.cli import operator_env, run_main
from tests.support.running import start
from tests.support.vault import session_vault
from worker import build_worker


@pytest.fixture(scope="module")
async def bare_server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server as a cluster operator would hand it over: no `--search-attribute` flags."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        plugins=[CharterPlugin.from_settings(Settings())],
    ) as environment:
        yield environment


async def _custom_attributes(client: Client) -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return dict(listed.custom_attributes)


async def test_setup_creates_the_namespace_and_makes_search_attributes_work(
    tmp_path: Path, bare_server: WorkflowEnvironment, db: Database, tenant: str
) -> None:
    address = bare_server.client.service_client.config.target_host
    namespace = f"charter-{uuid.uuid4().hex[:8]}"
    env = operator_env(tmp_path, TEMPORAL_ADDRESS=address, TEMPORAL_NAMESPACE=namespace)
    setup = ("temporal", "setup", "--create-namespace")

    ran = await run_main(*setup, env=env)
    assert ran.code == 0, ran.output
    assert f"created namespace {namespace}" in ran.out
    assert "registered search attributes" in ran.out and "CharterTenant" in ran.out

    client = await Client.connect(
        address, namespace=namespace, plugins=[CharterPlugin.from_settings(Settings())]
    )
    assert {key.name for key in sa.ALL} <= set(await _custom_attributes(client))

    ran = await run_main(*setup, env=env)  # again: nothing to do
    assert ran.code == 0, ran.output
    assert "already present" in ran.out and "created" not in ran.out

    queue = f"setup-{tenant}"
    worker = build_worker(
        client, Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()), queue
    )
    async with worker:
        handle = await start(client, tenant, "payables", task_queue=queue, focus=["INV-1041"])
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.proposals[0].status == "executed"

    async def listed() -> list[str]:
        query = f"CharterTenant = '{tenant}' AND CharterOutcomes = 'executed'"
        return [w.id async for w in client.list_workflows(query)]

    for _ in range(100):  # visibility is eventually consistent
        if await listed():
            break
        await asyncio.sleep(0.1)
    assert await listed() == [handle.id]


async def test_setup_refuses_a_conflicting_type(
    tmp_path: Path, bare_server: WorkflowEnvironment
) -> None:
    namespace = f"conflict-{uuid.uuid4().hex[:8]}"
    address = bare_server.client.service_client.config.target_host
    client = await Client.connect(address, namespace=namespace)
    assert await ensure_namespace(client, timedelta(days=1))
    # Someone else's attribute under one of Charter's names, with another type.
    clash = AddSearchAttributesRequest(
        namespace=namespace,
        search_attributes={"CharterStage": IndexedValueType.INDEXED_VALUE_TYPE_INT},
    )
    for _ in range(100):  # a new namespace is usable once the server's cache refreshes
        try:
            await client.operator_service.add_search_attributes(clash)
            break
        except RPCError:
            await asyncio.sleep(0.2)
    env = operator_env(tmp_path, TEMPORAL_ADDRESS=address, TEMPORAL_NAMESPACE=namespace)
    ran = await run_main("temporal", "setup", env=env)
    assert ran.code == 2
    assert "CharterStage exists in namespace" in ran.out and "INDEXED_VALUE_TYPE_INT" in ran.out
    # Nothing was added next to the conflict.
    assert "CharterTenant" not in await _custom_attributes(client)
