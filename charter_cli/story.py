"""`charter demo`: the story a founder understands, told by the real system.

Seeds two companies, runs their agents on Temporal, shows what executed, what escalated
(with full context), what a hard rule denied; approves one exception from the CLI with an
amendment, shows the same class of case no longer escalating, and verifies the audit chain.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from datetime import UTC, datetime
from typing import Any

from rich.rule import Rule
from temporalio.client import Client, WorkflowHandle

from activities import Deps
from charter.audit.chain import ChainReport
from charter.config.settings import Settings
from charter.crypto.providers import default_key_provider
from charter.demo.seed import (
    CAP_INVOICE,
    LATE_INVOICE,
    TENANTS,
    add_invoice,
    enroll_members,
    seed,
)
from charter.presentation.report import exception_panel, run_table
from charter.reasoners import OfflineReasoner
from charter.services import deciding
from charter.services.audit_verification import verify_tenants
from charter.stack.embedded import Stack
from charter.storage import Database, runs
from charter.storage.credential_vault import CredentialVault
from charter.temporal.connection import connect
from charter_cli.audit import reports_table
from charter_cli.runs import ui_link, wait_for_verdicts
from schemas import AgentRunInput, Decision, RunState, workflow_id_for
from starter import start_run
from worker import build_worker
from workflows import AgentLoop


def _say(console: Any, text: str) -> None:
    console.print(text)


async def _start(
    client: Client,
    settings: Settings,
    tag: str,
    tenant: str,
    agent: str,
    focus: list[str] | None = None,
    suffix: str = "",
) -> WorkflowHandle:  # type: ignore[type-arg]

    run = AgentRunInput(
        tenant_id=tenant,
        agent=agent,
        trigger=f"demo-{tag}{suffix}",
        focus=focus or [],
        decision_timeout=settings.decision_timeout,
        reminder_interval=settings.reminder_interval,
    )
    return await start_run(client, run, task_queue=settings.task_queue)


async def _payables_run(
    shown: tuple[Any, Client, Settings, str], tenant: str, invoice: str, suffix: str, caption: str
) -> None:
    """A payables run of `tenant` on one invoice, waited for and shown with the constitution
    version it ran under; `shown` is the story's console, client, settings and tag."""
    console, client, settings, tag = shown
    handle = await _start(client, settings, tag, tenant, "payables", [invoice], suffix)
    state = await wait_for_verdicts(handle)
    title = f"{tenant.capitalize()} · payables · constitution v{state.constitution_version}"
    console.print(run_table(title, state.proposals, caption=caption))


async def _cli(console: Any, *argv: str) -> str:
    """Run a `charter` CLI command in a child process, exactly as a user would.

    Asynchronously: the worker serving the run lives in this process and must keep going.
    """
    console.print(f"[bold cyan]$ charter {' '.join(shlex.quote(a) for a in argv)}[/]")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "charter_cli",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": str(console.width)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode().rstrip()
    if text:
        console.print(text, markup=False, highlight=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`charter {' '.join(argv)}` exited {proc.returncode}")
    return text


async def run_demo(console: Any, settings: Settings, stack: Stack) -> list[ChainReport]:

    tag = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    db = await Database.connect(stack.app_dsn, max_size=8)
    client = await connect(settings, stack.temporal_address)
    worker = build_worker(
        client,
        Deps(db=db, reasoner=OfflineReasoner(), credentials=CredentialVault(settings)),
        settings.task_queue,
    )
    try:
        async with worker:
            return await _story(
                console,
                settings,
                stack,
                db,
                client,
                tag,
                reports_table,
                verify_tenants,
                ui_link,
                wait_for_verdicts,
            )
    finally:
        await db.close()


async def _story(
    console: Any,
    settings: Settings,
    stack: Stack,
    db: Database,
    client: Client,
    tag: str,
    reports_table: Any,
    verify_tenants: Any,
    ui_link: Any,
    wait_for_verdicts: Any,
) -> list[ChainReport]:
    console.print(
        Rule("[bold]Charter demo[/]: AI agents on a company's money, under a constitution")
    )
    if stack.admin_dsn is None:
        raise RuntimeError("the demo enrolls its members' keys: it needs the administrator DSN")
    for tenant in TENANTS:
        version = await seed(
            db, tenant, keys=default_key_provider(settings), admin_dsn=stack.admin_dsn
        )
        await enroll_members(stack.admin_dsn, tenant, folder=settings.member_key_folder)
        console.print(
            f"Seeded [bold]{TENANTS[tenant]['name']}[/] ({tenant}): books reset, "
            f"constitution v{version} in force"
        )

    # -- Run 1 -----------------------------------------------------------------------------
    console.print(Rule("Run 1: the agents read the books and propose"))
    plan = [
        ("acme", "payables"),
        ("acme", "marketing"),
        ("acme", "payroll"),
        ("initech", "payables"),
    ]
    handles = [await _start(client, settings, tag, t, a) for t, a in plan]
    states: list[RunState] = list(await asyncio.gather(*(wait_for_verdicts(h) for h in handles)))
    for (tenant, agent), state in zip(plan, states, strict=True):
        console.print(
            run_table(
                f"{TENANTS[tenant]['name']} · {agent} agent · constitution v{state.constitution_version}",
                state.proposals,
                caption=f"read: {state.observation_summary}",
            )
        )
        console.print()

    # -- Exceptions ------------------------------------------------------------------------
    console.print(Rule("Exceptions: what the agents could not do alone"))
    ours = {h.id for h in handles}
    async with db.tenant("acme") as conn:
        open_rows = [
            r for r in await runs.list_exceptions(conn, "acme") if r["workflow_id"] in ours
        ]
    for row in open_rows:
        console.print(exception_panel(row))

    def find(ref: str) -> dict[str, Any]:
        return next(r for r in open_rows if r["context"]["proposal"].get("reference") == ref)

    bluebird, phishing = find("INV-1043"), find("INV-1045")

    # -- Isolation -------------------------------------------------------------------------
    console.print(Rule("Isolation: Initech's CEO cannot decide Acme's exception"))
    acme_payables = client.get_workflow_handle(bluebird["workflow_id"])
    try:
        await deciding.send(
            client,
            bluebird["workflow_id"],
            Decision(proposal_id=bluebird["proposal_id"], approver="ivy", outcome="approve"),
        )
        raise RuntimeError("isolation failure: a foreign approver was accepted")
    except deciding.DecisionRefused as exc:
        console.print(f"refused by the workflow's validator: [red]{exc}[/]")
    async with db.tenant("initech") as conn:
        visible = await runs.get_exception(conn, "initech", bluebird["exception_id"])
    console.print(
        f"Initech's database session sees Acme's exception: [bold]{visible is not None}[/] "
        "(row-level security)"
    )

    # -- Decisions from the CLI ------------------------------------------------------------
    console.print(Rule("Decisions from the CLI"))
    await _cli(
        console,
        "decide",
        bluebird["exception_id"],
        "approve",
        "--tenant",
        "acme",
        "--as",
        "sam",
        "--reason",
        "Bluebird is our new brand studio; contract signed",
        "--amend",
        "--max-amount",
        "2500",
    )
    await _cli(
        console,
        "decide",
        phishing["exception_id"],
        "reject",
        "--tenant",
        "acme",
        "--as",
        "maya",
        "--reason",
        "Bank-detail change by email: phishing pattern, reported to Cloudflare",
    )

    async def settled() -> RunState:
        while True:
            state: RunState = await acme_payables.query(AgentLoop.state)
            if not any(p.status in ("approved",) for p in state.proposals):
                return state
            await asyncio.sleep(0.2)

    state = await asyncio.wait_for(settled(), 30)
    console.print(run_table("Acme · payables after the decisions", state.proposals))

    # -- Run 2 -----------------------------------------------------------------------------
    console.print(Rule("Run 2: Bluebird sends its next invoice"))
    await add_invoice(db, "acme", LATE_INVOICE)
    shown = (console, client, settings, tag)
    await _payables_run(
        shown,
        "acme",
        LATE_INVOICE[0],
        "-run2",
        "Same vendor class, within the amendment's bound: no exception this time.",
    )
    await _payables_run(
        shown,
        "initech",
        "INV-78",
        "-run2",
        "Acme's amendment is Acme's law only: Initech's Bluebird invoice still escalates.",
    )

    # -- Run 3 -----------------------------------------------------------------------------
    console.print(Rule("Run 3: the day's autonomous cap"))
    await add_invoice(db, "acme", CAP_INVOICE)
    await _payables_run(
        shown,
        "acme",
        CAP_INVOICE[0],
        "-run3",
        "Figma is verified and $1,200 is within its rule, but today's payments "
        "without a human would pass the day's $7,000 cap: a human decides.",
    )

    # -- Audit -----------------------------------------------------------------------------
    console.print(Rule("Audit trail"))
    reports: list[ChainReport] = await verify_tenants(db, list(TENANTS))
    console.print(reports_table(reports))
    still_open = [
        r["exception_id"]
        for r in open_rows
        if r["exception_id"] not in (bluebird["exception_id"], phishing["exception_id"])
    ]
    console.print(
        f"\n{len(still_open)} Acme exceptions still wait for a human (up to "
        f"{settings.decision_timeout.days} days): `charter exceptions list --tenant acme`."
    )
    if stack.codec_url:
        console.print(
            f"Payloads in Temporal are encrypted; the UI decodes them through the codec server "
            f"at {stack.codec_url} for holders of its token ({settings.state_dir / 'codec-token'})."
        )
    console.print(
        f"Every run is in the Temporal UI: [bold]{stack.ui_url}[/] "
        f'(filter: CharterTenant="acme"), e.g.\n'
        f"  {ui_link(stack.ui_url, settings.temporal_namespace, workflow_id_for('acme', 'payables', f'demo-{tag}'))}"
    )
    return reports
