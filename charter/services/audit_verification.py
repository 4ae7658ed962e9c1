"""Verify the audit chains against what is recorded outside PostgreSQL, then sign their heads.

One implementation for `charter audit verify|checkpoint` and the `AuditCheckpoint` workflow's
activity: each chain is recomputed with `charter.audit.chain` (no code shared with the
writer), checked against the signed checkpoints already in the sink and against the spend
ledger, and only a chain that verifies gets a new signed checkpoint. Signing a broken chain
would launder the damage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import SecretStr

from charter.audit.chain import Anchor, ChainReport
from charter.audit.checkpoints import Checkpoint, load_signing_key, sign, verified_anchor
from charter.audit.ledger_replay import differences
from charter.audit.sinks import CheckpointSink
from charter.services.audit_ranges import walk_chain
from charter.storage import Database


@dataclass(frozen=True)
class SigningKeySource:
    """Where the checkpoint signing key comes from: the environment or a key file, never the
    database. `create` lets the CLI make a key file on first use; a worker never does."""

    secret: SecretStr | None
    key_file: Path
    create: bool = False

    def load(self, *, prior_exists: bool) -> Ed25519PrivateKey:
        # A new key beside existing checkpoints would orphan them: only ever the first key.
        return load_signing_key(self.secret, self.key_file, create=self.create and not prior_exists)


def anchors_from(
    checkpoints: Iterable[Checkpoint], public_key: Ed25519PublicKey
) -> dict[str, list[Anchor]]:
    """Every checkpoint, signature-checked (CheckpointError on a bad one, never skipped)."""
    anchors: dict[str, list[Anchor]] = {}
    for checkpoint in checkpoints:
        anchor = verified_anchor(public_key, checkpoint)
        anchors.setdefault(anchor.tenant_id, []).append(anchor)
    return anchors


async def verify_tenants(
    db: Database,
    tenants: list[str] | None = None,
    anchors: dict[str, list[Anchor]] | None = None,
) -> list[ChainReport]:
    reports = []
    for tenant in tenants or await db.tenant_ids():
        # Sequentially, or in ranges side by side on a long chain: the same report.
        report, rebuilt, stored = await walk_chain(db, tenant, (anchors or {}).get(tenant, []))
        # The spend ledger must be what the trail says it is: limits are enforced against it.
        problems = differences(rebuilt, stored)
        if report.ok and problems:
            report = report.model_copy(update={"ok": False, "problem": "; ".join(problems)})
        reports.append(report)
    return reports


@dataclass(frozen=True)
class CheckpointRun:
    reports: list[ChainReport]
    signed: list[Checkpoint]

    @property
    def broken(self) -> list[ChainReport]:
        return [r for r in self.reports if not r.ok]


def describe_broken(reports: Iterable[ChainReport]) -> str:
    """One line per broken chain: the tenant, the first bad seq and what is wrong."""
    return "; ".join(
        f"{r.tenant_id}"
        + (f" at seq {r.first_bad_seq}" if r.first_bad_seq is not None else "")
        + f": {r.problem}"
        for r in reports
    )


async def checkpoint(
    db: Database, sink: CheckpointSink, keys: SigningKeySource, tenants: list[str] | None
) -> CheckpointRun:
    """Verify each chain (one tenant's, or every tenant's) against the sink's checkpoints,
    then append a signed checkpoint of the head of each chain that verifies and is not empty.

    Raises CheckpointError (a key or a prior checkpoint unusable) and the sink's
    SinkUnavailable; a broken chain is reported in the result, not raised."""
    tenants = tenants or await db.tenant_ids()
    # File and object-store clients block: keep them off the event loop.
    prior = await asyncio.to_thread(sink.prior, tenants)
    key = keys.load(prior_exists=bool(prior))
    reports = await verify_tenants(db, tenants, anchors_from(prior, key.public_key()))
    signed = [
        sign(key, r.tenant_id, r.head_seq, r.head_hash) for r in reports if r.ok and r.head_seq
    ]
    if signed:
        await asyncio.to_thread(sink.append, signed)
    return CheckpointRun(reports=reports, signed=signed)
