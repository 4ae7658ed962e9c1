"""What an exception page shows, as plain strings for the templates: everything the Slack card
shows, and for a proposal sent back each fact as approved and as now.

The rule book's own answers (the quorum, who may approve, whether an amendment is offered,
whether the action is irreversible) come from the card's functions, so the inbox never
offers a decision the card would not. Every untrusted string goes through `inert` here and
through the templates' HTML autoescaping there: nothing a memo says is markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from charter.governance import approvals
from charter.presentation.inert import inert
from charter.presentation.report import CAUSE_WORDS, money
from charter.slack import cards
from charter.storage.slack_cards import CardState


def text(value: Any, limit: int = 2000) -> str:
    shown = inert(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    state: str
    title: str


@dataclass(frozen=True)
class Choices:
    """The decisions the rule book allows on this exception now."""

    open: bool
    approve: bool
    amend: bool
    edit: bool
    confirm_amount: str | None
    """An irreversible approval is confirmed by typing this amount."""


@dataclass(frozen=True)
class ExceptionView:
    exception_id: str
    agent: str
    status: str
    recommends: str
    amount: str
    confidence: str
    rationale: str
    observed: list[str]
    rules: list[Rule]
    why: list[str]
    constitution: str
    decisions: list[str]
    changed: list[tuple[str, str, str]]
    result: str
    expires_at: str
    choices: Choices
    notes: list[str] = field(default_factory=list)


def recommendation(p: dict[str, Any]) -> str:
    parts = [text(p.get("action"), 64)]
    if p.get("amount") is not None:
        parts.append(money(p.get("amount"), p.get("currency", "USD")))
    if p.get("counterparty"):
        parts.append("to " + text(p["counterparty"], 200))
    if p.get("reference"):
        parts.append(f"(ref {text(p['reference'], 64)})")
    return " ".join(parts)


def observed(seen: dict[str, Any]) -> list[str]:
    """The card's lines of what the agent observed, inert for HTML (the template escapes)."""
    return cards.observed_lines(seen, escape=text, strong=lambda words: words)


def rules(v: dict[str, Any], titles: dict[str, str]) -> list[Rule]:
    matched = v.get("matched", [])
    out = [
        Rule(text(m["rule_id"], 80), f"{m['effect']}, matched", text(m["title"], 300))
        for m in matched
    ]
    if not any(m["effect"] == "allow" for m in matched):
        out.append(Rule("", "", "No rule allows this action."))
    seen = {m["rule_id"] for m in matched}
    out += [
        Rule(text(r, 80), "evaluated, did not match", text(titles.get(r, ""), 300))
        for r in v.get("evaluated", [])
        if r not in seen
    ]
    out += [Rule(text(e["rule_id"], 80), "could not be evaluated", "") for e in v.get("errors", [])]
    return out


def why(p: dict[str, Any], v: dict[str, Any]) -> list[str]:
    lines = []
    for cause in v.get("causes", []):
        words = CAUSE_WORDS.get(cause, cause)
        if cause == "below_confidence" and v.get("threshold") is not None:
            words += (
                f": confidence {float(p['confidence']):.2f} < threshold {float(v['threshold']):.2f}"
            )
        if cause == "irreversible":
            words += ": it cannot be undone, so it always needs a human"
        lines.append(words)
    return lines or [text(v.get("explanation", ""), 500)]


def decision_lines(state: CardState) -> list[str]:
    lines = []
    for d in state.decisions:
        verb = "Approved" if d.outcome == "approve" else "Rejected"
        line = f"{verb} by {text(d.display_name, 120)} ({d.approver}) at {cards.when(d.decided_at)}"
        if d.reason:
            line += f": “{text(d.reason, 500)}”"
        if d.amendment_version:
            line += f" — constitution amended to v{d.amendment_version}"
        lines.append(line)
    return lines


def changed_facts(context: dict[str, Any]) -> list[tuple[str, str, str]]:
    """For a proposal sent back at execution: (fact, as approved, as now)."""
    changed = (context.get("at_execution") or {}).get("changed") or {}
    return [
        (text(name, 80), text(values.get("approved"), 200), text(values.get("now"), 200))
        for name, values in sorted(changed.items())
    ]


def result(state: CardState) -> str:
    if state.executed_reference:
        return f"Executed (connector reference {text(state.executed_reference, 80)})."
    return {
        "expired": "Expired without a decision. Nothing was executed.",
        "rejected": "Rejected. Nothing was executed.",
        "approved": "Approved: executing…",
        "dismissed": "Dismissed. Nothing was executed.",
    }.get(state.status, f"Awaiting a decision until {cards.when(state.expires_at)}.")


def choices(state: CardState) -> Choices:
    open_ = state.status == "open" and not approvals.quorum_met(
        cards.ballots(state), *cards.verdicts(state)
    )
    confirm = None
    if cards.is_irreversible(state):
        confirm = cards.plain_amount(cards.approved_proposal(state).get("amount"))
    return Choices(
        open=open_,
        approve=open_,
        amend=open_ and cards.amendable(state),
        # An edit must come with the first approval (the workflow refuses it after one).
        edit=open_ and state.edit is None and not state.decisions,
        confirm_amount=confirm,
    )


def notes(state: CardState) -> list[str]:
    out = []
    required = cards.approvals_required(state)
    if required > 1:
        approved = sum(1 for d in state.decisions if d.outcome == "approve")
        out.append(f"Approvals: {approved} of {required}")
    requirements = cards.role_requirements(state)
    if requirements and state.status == "open":
        out.append("Who may approve: members with the role " + cards.roles_text(requirements))
    if state.edit is not None:
        original = state.context["proposal"]
        out.append(
            f"Approved with an edit: {recommendation(state.edit['proposal'])} (proposed "
            f"{money(original.get('amount'), original.get('currency', 'USD'))}). Approvals "
            "are for the edited parameters."
        )
    supersedes = state.context.get("supersedes")
    if supersedes:
        out.append(
            f"Sent back at execution: the facts {text(supersedes, 40)} was approved on changed."
        )
    return out


def view(state: CardState) -> ExceptionView | None:
    """The page of an exception with a proposal; None for an unreadable reasoner reply."""
    if cards.is_reasoning_failure(state):
        return None
    ctx = state.context
    p, v = cards.approved_proposal(state), ctx["verdict"]
    return ExceptionView(
        exception_id=state.exception_id,
        agent=text(state.agent, 64),
        status=state.status,
        recommends=recommendation(p),
        amount=money(p.get("amount"), p.get("currency", "USD")),
        confidence=f"{float(ctx['proposal']['confidence']):.2f}",
        rationale=text(ctx["proposal"].get("rationale", ""), 1500),
        observed=observed(ctx.get("observed", {})),
        rules=rules(v, state.rule_titles),
        why=why(ctx["proposal"], v),
        constitution=f"v{v['constitution_version']} ({v['constitution_hash'][:12]})",
        decisions=decision_lines(state),
        changed=changed_facts(ctx),
        result=result(state),
        expires_at=cards.when(state.expires_at),
        choices=choices(state),
        notes=notes(state),
    )


@dataclass(frozen=True)
class InboxRow:
    exception_id: str
    agent: str
    recommends: str
    amount: str
    age: str
    expires: str


def age(opened_at: datetime, now: datetime) -> str:
    minutes = int((now - opened_at).total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def inbox(rows: list[dict[str, Any]], now: datetime | None = None) -> list[InboxRow]:
    """Open exceptions, oldest first and, of the same age, largest first."""
    now = now or datetime.now(UTC)

    def order(r: dict[str, Any]) -> tuple[datetime, Decimal]:
        amount = (r["context"].get("proposal") or {}).get("amount")
        return r["opened_at"], -Decimal(str(amount if amount is not None else 0))

    out = []
    for r in sorted(rows, key=order):
        p = r["context"].get("proposal") or {}
        unreadable = r["context"].get("kind") == "reasoning_failure"
        out.append(
            InboxRow(
                exception_id=r["exception_id"],
                agent=text(r["agent"], 64),
                recommends="(the reasoner's reply could not be read)"
                if unreadable
                else recommendation(p),
                amount="-" if unreadable else money(p.get("amount"), p.get("currency", "USD")),
                age=age(r["opened_at"], now),
                expires=cards.when(r["expires_at"]),
            )
        )
    return out
