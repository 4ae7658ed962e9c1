"""Whether a constitution version is law: made by the owner, or proven by the approval it came from.

The application role cannot insert a constitution version; the one it may add, an amendment
an approval carries, goes through a definer function that marks it `amendment`. Such a
version is law only if it is exactly what its decision asked for: a `decision` row naming
it, whose signed statement verifies (the member's key, bound to the run, proposal and
approved parameters) and carries the amendment request, and the document recomputed from
the previous version (law itself) and that statement, deterministically, has the version's
hash. Anything else, a stolen worker's "every action allowed" included, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from charter.crypto.statements import StatementInvalid
from charter.governance.amendments import AmendmentRefused, amend
from charter.governance.constitution import content_hash
from charter.services import proofs
from charter.storage import constitution_versions, runs
from schemas import Constitution, DecisionStatement, Proposal, Verdict


class LawUnproven(Exception):
    """A constitution version that nothing proves; the message names it and why."""


@dataclass(frozen=True)
class _Origin:
    """What an amendment version was made from."""

    statement: DecisionStatement
    proposal: Proposal
    verdict: Verdict
    vendor_id: str | None


#: Versions already proven, by (tenant, version, content hash): rows never change, so a
#: version proven once stays proven.
_PROVEN: set[tuple[str, int, str]] = set()


async def check_law(conn: asyncpg.Connection, tenant_id: str, versions: list[int]) -> None:
    """Every version in `versions` (and each amendment it rests on) is law; LawUnproven if
    one is not."""
    for version in versions:
        await _check_version(conn, tenant_id, version)


async def unproven_versions(conn: asyncpg.Connection, tenant_id: str) -> list[str]:
    """One line per version of the tenant's constitution that is not law."""
    problems = []
    for info in await constitution_versions.history(conn, tenant_id):
        problem = await why_unproven(conn, tenant_id, info.version)
        if problem is not None:
            problems.append(f"{tenant_id}: {problem}")
    return problems


async def why_unproven(conn: asyncpg.Connection, tenant_id: str, version: int) -> str | None:
    """Why a version is not law, or None when it is."""
    try:
        await _check_version(conn, tenant_id, version)
    except LawUnproven as exc:
        return str(exc)
    return None


async def _check_version(conn: asyncpg.Connection, tenant_id: str, version: int) -> None:
    # Down the chain of amendments to the owner's version they rest on, then back up.
    pending: list[Constitution] = []
    while True:
        row = await conn.fetchrow(
            "SELECT made_by FROM charter.constitutions WHERE tenant_id = $1 AND version = $2",
            tenant_id,
            version,
        )
        if row is None:
            raise LawUnproven(f"constitution v{version} does not exist")
        constitution = await _get(conn, tenant_id, version)
        if row["made_by"] == "owner" or _key(constitution) in _PROVEN:
            break
        pending.append(constitution)
        version -= 1
        if version < 1:
            raise LawUnproven("the first constitution version is not the owner's")
    for constitution in reversed(pending):
        await _check_amendment(conn, constitution)
        _PROVEN.add(_key(constitution))


def _key(constitution: Constitution) -> tuple[str, int, str]:
    return (constitution.tenant_id, constitution.version, constitution.content_hash)


async def _get(conn: asyncpg.Connection, tenant_id: str, version: int) -> Constitution:
    try:
        return await constitution_versions.get(conn, tenant_id, version)
    except RuntimeError as exc:  # the document does not match its hash
        raise LawUnproven(str(exc)) from None


async def _check_amendment(conn: asyncpg.Connection, constitution: Constitution) -> None:
    """The amendment version is exactly the previous version amended by its decision."""
    tenant_id, version = constitution.tenant_id, constitution.version
    previous = await _get(conn, tenant_id, version - 1)
    rules = constitution.document.rules
    origin_rule = rules[-1].amendment if rules else None
    if origin_rule is None:
        raise LawUnproven(f"constitution v{version} is marked an amendment but adds none")
    origin = await _origin(conn, tenant_id, version, origin_rule.exception_id)
    try:
        recomputed = amend(
            previous.document,
            proposal=origin.proposal,
            verdict=origin.verdict,
            request=origin.statement.amendment,  # type: ignore[arg-type]
            approver=origin.statement.member_id,
            exception_id=origin_rule.exception_id,
            vendor_id=origin.vendor_id,
        )
    except AmendmentRefused as exc:
        raise LawUnproven(
            f"constitution v{version}: its decision makes no amendment: {exc}"
        ) from None
    if content_hash(recomputed) != constitution.content_hash:
        raise LawUnproven(
            f"constitution v{version} is not the amendment its signed decision asked for"
        )


async def _origin(
    conn: asyncpg.Connection, tenant_id: str, version: int, exception_id: str
) -> _Origin:
    """The verified decision that asked for amendment `version`, and what it approved."""
    exception = await runs.get_exception(conn, tenant_id, exception_id)
    row = await conn.fetchrow(
        "SELECT workflow_id, proposal_id, approver, statement, signature FROM charter.decisions "
        "WHERE tenant_id = $1 AND amendment_version = $2 AND outcome = 'approve'",
        tenant_id,
        version,
    )
    if exception is None or row is None or row["statement"] is None or row["signature"] is None:
        raise LawUnproven(f"constitution v{version} has no signed decision behind it")
    try:
        statement, _ = await proofs.verified(conn, tenant_id, row["statement"], row["signature"])
    except StatementInvalid as exc:
        raise LawUnproven(f"constitution v{version}: its decision does not verify: {exc}") from None
    subject = (statement.workflow_id, statement.proposal_id, statement.member_id)
    if (
        statement.amendment is None
        or statement.outcome != "approve"
        or subject != (row["workflow_id"], row["proposal_id"], row["approver"])
        or (exception["workflow_id"], exception["proposal_id"]) != subject[:2]
    ):
        raise LawUnproven(f"constitution v{version}: its decision asked for no such amendment")
    proposal, verdict = await _approved(conn, tenant_id, statement, version)
    observed = (exception.get("context") or {}).get("observed", {})
    vendor_id = (observed.get("vendor") or {}).get("vendor_id")
    return _Origin(statement, proposal, verdict, vendor_id if isinstance(vendor_id, str) else None)


async def _approved(
    conn: asyncpg.Connection, tenant_id: str, statement: DecisionStatement, version: int
) -> tuple[Proposal, Verdict]:
    """The parameters the statement approved (by their signed digest: the proposal, or an
    edit of it) and the gate's verdict on the proposal."""
    stored = await runs.get_proposal(conn, tenant_id, statement.workflow_id, statement.proposal_id)
    if stored is None:
        raise LawUnproven(f"constitution v{version}: its decision's proposal is not recorded")
    proposal, verdict = stored
    if runs.proposal_digest(proposal) != statement.digest:
        edit = await runs.get_edit(
            conn, tenant_id, statement.workflow_id, statement.proposal_id, statement.digest
        )
        if edit is None:
            raise LawUnproven(f"constitution v{version}: the approved parameters are not recorded")
        proposal = edit[0]
    return proposal, verdict
