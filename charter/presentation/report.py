"""Readable reports: a table per run, a panel per exception. Used by the CLI and the demo."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from charter.presentation.inert import plain
from schemas import Proposal, ProposalState

STATUS_STYLE = {
    "executed": ("executed", "green"),
    "gated": ("will execute", "green"),
    "approved": ("approved", "green"),
    "awaiting_decision": ("escalated", "yellow"),
    "denied": ("denied", "red"),
    "rejected": ("rejected", "red"),
    "expired": ("expired", "magenta"),
    "failed": ("failed", "red"),
}

CAUSE_WORDS = {
    "irreversible": "irreversible action",
    "outside_bounds": "outside bounds (no rule allows it)",
    "below_confidence": "confidence below threshold",
    "escalation_rule": "a rule requires a human",
    "rule_error": "a rule could not be evaluated",
    "unknown_action": "undeclared action type",
    "citation_mismatch": "the reasoner's citations do not match the rules",
}


def invoice_label(inv: dict[str, Any]) -> str:
    """An invoice as a human knows it: the vendor's number, with the books' id beside it
    where they differ (the id is what identifies it)."""
    number, invoice_id = str(inv.get("number") or ""), str(inv["invoice_id"])
    return invoice_id if not number or number == invoice_id else f"{number} (id {invoice_id})"


def money(amount: Any, currency: str = "USD") -> str:
    if amount is None:
        return "-"
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{float(amount):,.2f}"


def run_table(title: str, proposals: list[ProposalState], caption: str | None = None) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        expand=False,
        show_lines=False,
    )
    table.add_column("#", style="dim")
    table.add_column("action")
    table.add_column("counterparty / ref")
    table.add_column("amount", justify="right")
    table.add_column("conf.", justify="right")
    table.add_column("outcome")
    table.add_column("why")
    for ps in proposals:
        p, v = ps.proposal, ps.verdict
        label, style = STATUS_STYLE.get(ps.status, (ps.status, "white"))
        if v is None:
            why = ""
        elif v.outcome == "deny":
            why = "hard rule: " + ", ".join(m.rule_id for m in v.matched if m.effect == "deny")
            if not v.matched:
                why = v.explanation
        elif v.outcome == "escalate":
            why = "; ".join(CAUSE_WORDS.get(c, c) for c in v.causes)
            if "below_confidence" in v.causes and v.threshold is not None:
                why += f" ({p.confidence:.2f} < {v.threshold:.2f})"
        else:
            why = "allowed by " + ", ".join(m.rule_id for m in v.matched if m.effect == "allow")
        if ps.status == "executed" and ps.action is not None and v and v.outcome == "escalate":
            why = "approved by " + ", ".join(d.approver for d in ps.decisions) + "; " + why
        if ps.status == "failed" and ps.failure:
            why = "not executed: " + ps.failure
        table.add_row(
            p.proposal_id,
            p.action,
            plain(f"{p.counterparty or '-'} / {p.reference or '-'}"),
            money(p.amount, p.currency),
            f"{p.confidence:.2f}",
            Text(label, style=style),
            plain(why),
        )
    return table


def reasoning_failure_panel(row: dict[str, Any]) -> Panel:
    """The reasoner's reply could not be read, so there is no proposal: show the reply raw,
    for a human to judge."""
    ctx = row["context"]
    failure = ctx["failure"]
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("What happened", plain(failure["message"]))
    lines.add_row("Problems", plain("\n".join(failure.get("problems", []))))
    for n, raw in enumerate(failure.get("raw_replies", []), start=1):
        lines.add_row(f"Raw reply {n}", plain(raw))
    lines.add_row("Executed", "nothing: no proposal was gated")
    lines.add_row("Expires", str(row["expires_at"]))
    return Panel(
        Group(lines),
        title=f"[bold]{row['exception_id']}[/] · {ctx['tenant_id']} · {row['agent']} · "
        f"{reasoning_failure_title(failure)} · {row['status']}",
        title_align="left",
        border_style="yellow" if row["status"] == "open" else "dim",
    )


def reasoning_failure_title(failure: dict[str, Any]) -> str:
    """What went wrong with the reasoner, in three words."""
    if failure.get("kind") == "model_unavailable":
        return "model unavailable"
    if failure.get("kind") == "refusal":
        return "the model refused"
    if failure.get("kind") == "books_unavailable":
        return "books unavailable"
    return "unreadable reasoner reply"


def exception_panel(row: dict[str, Any]) -> Panel:
    """An exception with its full context: observed, recommended, rules, why not alone."""
    ctx = row["context"]
    if ctx.get("kind") == "reasoning_failure":
        return reasoning_failure_panel(row)
    p, v, seen = ctx["proposal"], ctx["verdict"], ctx["observed"]
    # What is approved is read from the typed proposal, never from free text; every string
    # below that a reasoner or the books supplied is shown inert.
    typed = Proposal.model_validate(p)
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row(
        "Recommends",
        plain(
            f"{typed.action} {money(typed.amount, typed.currency)} "
            f"to {typed.counterparty or '-'} (ref {typed.reference or '-'})"
        ),
    )
    lines.add_row("Rationale", plain(typed.rationale))
    observed = []
    inv, ven, cam, pay = (
        seen.get("invoice"),
        seen.get("vendor"),
        seen.get("campaign"),
        seen.get("payroll"),
    )
    if inv:
        observed.append(
            f"invoice {invoice_label(inv)} {money(inv['amount'])} due {inv['due_date']}, "
            f"bank shows {money(inv['amount_paid'])} paid; memo: {inv['memo']!r}"
        )
    if ven:
        observed.append(
            f"vendor {ven['name']}: {'verified' if ven['verified'] else 'NOT verified'}"
        )
    if cam:
        observed.append(
            f"campaign {cam['name']} on {cam['platform']}: daily budget {money(cam['daily_budget'])}, "
            f"ROAS {cam['roas']:.2f}"
        )
    if pay:
        observed.append(
            f"payroll {pay['period']}: {pay['employee_count']} employees, {money(pay['total'])}, "
            f"pays {pay['pay_date']}"
        )
    observed.append(f"cash across accounts {money(seen.get('total_cash'))}")
    lines.add_row("Observed", plain("\n".join(observed)))
    rules = [f"{m['rule_id']} ({m['effect']}): {m['title']}" for m in v["matched"]] or [
        "no rule matched"
    ]
    lines.add_row("Rules", plain("\n".join(rules)))
    why = [CAUSE_WORDS.get(c, c) for c in v["causes"]]
    if "below_confidence" in v["causes"]:
        why.append(f"confidence {p['confidence']:.2f} vs threshold {v['threshold']:.2f}")
    lines.add_row("Why not alone", plain("; ".join(why)))
    if v.get("approvals_required", 1) > 1 or v.get("approver_roles"):
        roles = " and ".join("/".join(r) for r in v.get("approver_roles", [])) or "any approver"
        lines.add_row("Needs", f"{v.get('approvals_required', 1)} distinct approvers ({roles})")
    citations = v.get("citations") or {}
    if citations.get("unknown") or citations.get("missing"):
        lines.add_row(
            "Citations",
            f"unknown: {', '.join(citations.get('unknown', [])) or '-'}; "
            f"not cited: {', '.join(citations.get('missing', [])) or '-'}",
        )
    lines.add_row("Constitution", f"v{v['constitution_version']} ({v['constitution_hash'][:12]}…)")
    lines.add_row("Expires", str(row["expires_at"]))
    return Panel(
        Group(lines),
        title=f"[bold]{row['exception_id']}[/] · {ctx['tenant_id']} · {row['agent']} · {row['status']}",
        title_align="left",
        border_style="yellow" if row["status"] == "open" else "dim",
    )
