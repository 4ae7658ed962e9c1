"""The bare baseline's activities: the same external work as a Charter run, nothing else.

They read the same books through the same connector, ask the same reasoner, and write the
same rows (the connector's write and the action row), each in one tenant transaction. What
they leave out is what Charter adds: the audit trail, the pinned run record, the gate's
verdict rows, act's re-check of the authorisation and its write-ahead intent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from bench.baseline.models import BareActInput, BareReasonInput, BareRunInput
from charter.config.settings import Settings
from charter.connectors.demo import DemoBooksReader, DemoBooksWriter
from charter.connectors.demo_auth import READ_CONNECTORS, WRITE_CONNECTOR, obtain
from charter.reasoners import Reasoner, reason_with
from charter.storage import Database, constitution_versions, runs
from charter.storage.credential_vault import CredentialVault
from schemas import Observation, Proposal


class BareActivities:
    def __init__(self, db: Database, reasoner: Reasoner) -> None:
        self._db = db
        self._reasoner = reasoner
        vault = CredentialVault(Settings())
        self._read, self._write = vault.scoped("read"), vault.scoped("write")

    @activity.defn(name="bare_observe")
    async def observe(self, req: BareRunInput) -> Observation:
        async with self._db.tenant(req.tenant_id) as conn:
            credentials = {
                connector: await obtain(self._read, conn, req.tenant_id, connector)
                for connector in READ_CONNECTORS.get(req.agent, ())
            }
        async with self._db.tenant(req.tenant_id) as conn:
            reader = DemoBooksReader(conn, req.tenant_id, credentials)
            return await reader.snapshot(req.agent, req.focus)

    @activity.defn(name="bare_reason")
    async def reason(self, req: BareReasonInput) -> list[Proposal]:
        # The reasoner is shown the constitution in Charter too; reading it is part of the work.
        async with self._db.tenant(req.tenant_id) as conn:
            constitution = await constitution_versions.get(conn, req.tenant_id)
        reasoning = await reason_with(self._reasoner, req.observation, constitution)
        return [
            Proposal(proposal_id=f"p{n}", **proposed.model_dump())
            for n, proposed in enumerate(reasoning.proposals, 1)
        ]

    @activity.defn(name="bare_act")
    async def act(self, req: BareActInput) -> str:
        proposal = req.proposal
        key = runs.idempotency_key_for(req.workflow_id, proposal)
        async with self._db.tenant(req.tenant_id) as conn:
            credential = await obtain(
                self._write, conn, req.tenant_id, WRITE_CONNECTOR[proposal.action]
            )
        async with self._db.tenant(req.tenant_id) as conn:
            reference = await DemoBooksWriter(conn, req.tenant_id, credential).execute(
                proposal, key
            )
            await conn.execute(
                "INSERT INTO charter.actions (tenant_id, idempotency_key, workflow_id, "
                "proposal_id, action, proposal, authorisation, connector_reference, "
                "executed_at) VALUES ($1,$2,$3,$4,$5,$6::jsonb,'{}'::jsonb,$7,now())",
                req.tenant_id,
                key,
                req.workflow_id,
                proposal.proposal_id,
                proposal.action,
                proposal.model_dump_json(),
                reference,
            )
        return reference

    def all(self) -> list[Callable[..., Any]]:
        return [self.observe, self.reason, self.act]
