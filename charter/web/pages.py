"""The inbox's pages: open exceptions, one exception, and the read-only views (the
constitution with its history and diffs; a run's audit trail with the chain's status)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from charter.governance.constitution_diff import diff
from charter.services import audit_verification, proof_audit
from charter.slack import cards
from charter.storage import audit_trail, constitution_versions, runs
from charter.web import exception_view, sessions
from charter.web.context import WebContext, context
from charter.web.deciding_flow import exception_state
from charter.web.security import Refused, csrf_token
from schemas import ConstitutionDocument


async def _who(request: Request) -> tuple[WebContext, str, sessions.SignedIn]:
    """The context, the tenant of the path, and the member signed in for it."""
    ctx = context(request)
    tenant = request.path_params["tenant"]
    who = await sessions.signed_in(request, ctx.db, tenant, ctx.settings.session_minutes)
    return ctx, tenant, who


def _render(
    request: Request, template: str, who: sessions.SignedIn, values: dict[str, Any]
) -> Response:
    shown = {
        "tenant": who.tenant_id,
        "member": who.member_id,
        "csrf": csrf_token(request.session),
        **values,
    }
    return context(request).templates.TemplateResponse(request, template, shown)


async def inbox(request: Request) -> Response:
    ctx, tenant, who = await _who(request)
    async with ctx.db.tenant(tenant) as conn:
        rows = await runs.list_exceptions(conn, tenant, status="open")
    return _render(request, "inbox.html", who, {"rows": exception_view.inbox(rows)})


def run_link(ctx: WebContext, workflow_id: str) -> str:
    return cards.run_url(ctx.temporal_ui_url, ctx.namespace, workflow_id)


async def exception_page(request: Request) -> Response:
    ctx, tenant, who = await _who(request)
    exception_id = request.path_params["exception"]
    state = await exception_state(ctx, tenant, exception_id)
    view = exception_view.view(state)
    values = {
        "view": view,
        "exception_id": exception_id,
        "workflow_id": state.workflow_id,
        "temporal_link": run_link(ctx, state.workflow_id),
    }
    return _render(request, "exception.html", who, values)


def changes_shown(
    before: ConstitutionDocument, after: ConstitutionDocument
) -> list[dict[str, Any]]:
    """What changed from one version to the next, rule by rule, as inert text."""
    text = exception_view.text
    return [
        {
            "kind": c.kind,
            "subject": text(c.subject, 200),
            "fields": [(text(k, 80), text(b, 300), text(a, 300)) for k, (b, a) in c.fields.items()],
        }
        for c in diff(before, after)
    ]


async def constitution_page(request: Request) -> Response:
    ctx, tenant, who = await _who(request)
    async with ctx.db.tenant(tenant) as conn:
        versions = await constitution_versions.history(conn, tenant)
        documents = [await constitution_versions.get(conn, tenant, v.version) for v in versions]
    changes: list[list[dict[str, Any]]] = [[]] + [
        changes_shown(before.document, after.document) for before, after in pairwise(documents)
    ]
    rows = [
        {
            "version": v.version,
            "hash": v.content_hash[:12],
            "source": exception_view.text(v.source, 40),
            "by": exception_view.text(v.created_by, 80),
            "note": exception_view.text(v.note, 300),
            "at": cards.when(v.created_at),
            "rules": v.rules,
            "changes": changes[i],
        }
        for i, v in enumerate(versions)
    ]
    return _render(request, "constitution.html", who, {"versions": list(reversed(rows))})


async def _chain_status(ctx: WebContext, tenant: str) -> tuple[bool, str]:
    """Whether the tenant's chain verifies (hashes, spend ledger, decision proofs)."""
    report = (await audit_verification.verify_tenants(ctx.db, [tenant]))[0]
    if not report.ok:
        return False, audit_verification.describe_broken([report])
    problems = await proof_audit.tenant_proof_problems(ctx.db, tenant)
    if problems:
        return False, "; ".join(problems[:5])
    return True, f"{report.entries} entries verify, head seq {report.head_seq}"


async def run_audit_page(request: Request) -> Response:
    ctx, tenant, who = await _who(request)
    workflow_id = request.path_params["workflow_id"]
    if not workflow_id.startswith(f"charter/{tenant}/"):
        raise Refused("no such run for this tenant", status=404)
    async with ctx.db.tenant(tenant) as conn:
        trail = [
            {
                "seq": e.seq,
                "kind": e.kind,
                "at": e.occurred_at[:19].replace("T", " "),
                "actor": exception_view.text(e.actor, 80),
                "hash": e.hash[:12],
            }
            async for e in audit_trail.entries(conn, tenant)
            if e.workflow_id == workflow_id
        ]
    ok, summary = await _chain_status(ctx, tenant)
    values = {
        "workflow_id": workflow_id,
        "trail": trail,
        "chain_ok": ok,
        "chain_summary": exception_view.text(summary, 2000),
        "temporal_link": run_link(ctx, workflow_id),
    }
    return _render(request, "audit.html", who, values)
