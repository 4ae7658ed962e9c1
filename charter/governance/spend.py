"""Rolling-window spend and declared limits: pure, shared by the gate and the act activity.

The sums come from Charter's ledger of executed actions and live reservations
(`charter.storage.ledger`), never from the model or the connector. In a condition they read
as `spend.<dimension>("<window>")`: the dimension picks which sum applies to the proposal
being judged (its payee, its agent, its action type, autonomous executions, everything),
the window how far back it looks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

from schemas import (
    ConstitutionDocument,
    Invoice,
    Limit,
    LimitBreach,
    LimitScope,
    ProposedAction,
    SpendSnapshot,
    SpendTotals,
    SpendWindow,
)

SPEND_DIMENSIONS: tuple[str, ...] = get_args(LimitScope)
SPEND_WINDOWS: tuple[str, ...] = get_args(SpendWindow)

#: Window lengths of `schemas.SpendWindow`.
WINDOWS: dict[str, timedelta] = {
    "P1D": timedelta(days=1),
    "P7D": timedelta(days=7),
    "P30D": timedelta(days=30),
}


def totals(rows: Sequence[Mapping[str, Any]], now: datetime) -> dict[str, SpendTotals]:
    """Sum ledger rows (`at`, `amount`, `action`, `payee`, `agent`, `autonomous`) per window.

    A window is everything after `now - length`: an amount reserved exactly one window ago
    has left it. An amount is placed in time when it was reserved (under the lock), and
    windows are absolute durations, so no time zone moves an edge.
    """
    out: dict[str, SpendTotals] = {}
    for window, length in WINDOWS.items():
        total = autonomous = Decimal(0)
        by: dict[str, dict[str, Decimal]] = {"counterparty": {}, "agent": {}, "action": {}}
        for r in rows:
            if not r["at"] > now - length:
                continue
            amount = Decimal(r["amount"])
            total += amount
            if r["autonomous"]:
                autonomous += amount
            for dimension, key in (
                ("counterparty", r["payee"]),
                ("agent", r["agent"]),
                ("action", r["action"]),
            ):
                by[dimension][key] = by[dimension].get(key, Decimal(0)) + amount
        out[window] = SpendTotals(total=total, autonomous=autonomous, **by)
    return out


#: A window with no spend in it. Frozen, so one instance serves every lookup (building one
#: per lookup copied its empty maps each time, a tenth of the gate's time).
_NOTHING_SPENT = SpendTotals()


def payee_of(proposal: ProposedAction, invoice: Invoice | None) -> str:
    """Who a proposal really pays: the invoice's vendor id when it names an invoice, else
    its words. Stable identities, not display names, are what spend is counted by."""
    return f"vendor:{invoice.vendor_id}" if invoice else f"name:{proposal.counterparty or ''}"


def spent(
    totals: SpendTotals, scope: str, proposal: ProposedAction, agent: str, payee: str
) -> Decimal:
    """The sum of one scope that concerns `proposal`."""
    if scope == "total":
        return totals.total
    if scope == "autonomous":
        return totals.autonomous
    by_key = {
        "counterparty": (totals.counterparty, payee),
        "agent": (totals.agent, agent),
        "action": (totals.action, proposal.action),
    }
    table, key = by_key[scope]
    return table.get(key, Decimal(0))


def spend_facts(
    snapshot: SpendSnapshot | None, proposal: ProposedAction, agent: str, payee: str
) -> dict[str, dict[str, Decimal]]:
    """`{dimension: {window: amount}}` for one proposal; empty without a snapshot, so a
    condition that asks fails (closed) instead of seeing zero."""
    if snapshot is None:
        return {}
    return {
        dimension: {
            window: spent(
                snapshot.windows.get(window, _NOTHING_SPENT), dimension, proposal, agent, payee
            )
            for window in SPEND_WINDOWS
        }
        for dimension in SPEND_DIMENSIONS
    }


def _lookup(dimension: str) -> Callable[[Any, Any], Any]:
    def fact(receiver: Any, window: Any) -> Any:
        if not isinstance(receiver, dict) or dimension not in receiver:
            raise ValueError(f"{dimension}() is a spend fact: call it as spend.{dimension}(...)")
        if window not in receiver[dimension]:
            raise ValueError(f"unknown spend window {window!r}; known: {', '.join(SPEND_WINDOWS)}")
        return receiver[dimension][window]

    return fact


#: The CEL functions behind `spend.<dimension>(window)`.
CEL_FUNCTIONS: dict[str, Callable[[Any, Any], Any]] = {d: _lookup(d) for d in SPEND_DIMENSIONS}


def spending_actions(document: ConstitutionDocument) -> set[str]:
    return {name for name, t in document.action_types.items() if t.spends}


def applicable(document: ConstitutionDocument, proposal: ProposedAction) -> list[Limit]:
    """The limits that count `proposal`: a declared limit on a spending action type."""
    if proposal.action not in spending_actions(document) or proposal.amount is None:
        return []
    return [
        limit
        for limit in document.limits or []
        if "*" in limit.applies_to or proposal.action in limit.applies_to
    ]


def breaches(
    document: ConstitutionDocument,
    proposal: ProposedAction,
    *,
    agent: str,
    payee: str,
    snapshot: SpendSnapshot | None,
    autonomous: bool,
    earlier: Sequence[tuple[ProposedAction, str]] = (),
) -> list[LimitBreach]:
    """Every applicable limit `proposal` does not fit under.

    `earlier`: proposals (with their payees) already committed but not in the snapshot, e.g.
    those of the same run gated before this one. An `autonomous` limit counts only actions
    executed without a human, so it binds only when `autonomous`. A proposal in another
    currency than the limit's cannot be counted against it, so it does not fit.
    """
    found: list[LimitBreach] = []
    spenders = spending_actions(document)
    for limit in applicable(document, proposal):
        if limit.scope == "autonomous" and not autonomous:
            continue
        assert proposal.amount is not None
        totals = snapshot.windows.get(limit.window, _NOTHING_SPENT) if snapshot else _NOTHING_SPENT
        already = spent(totals, limit.scope, proposal, agent, payee)
        for other, other_payee in earlier:
            if other.amount is None or other.currency != limit.currency:
                continue
            if other.action not in spenders:
                continue
            same = {
                "total": True,
                "autonomous": True,
                "counterparty": other_payee == payee,
                "agent": True,
                "action": other.action == proposal.action,
            }[limit.scope]
            if same:
                already += other.amount
        if proposal.currency != limit.currency or already + proposal.amount > limit.amount:
            found.append(
                LimitBreach(
                    limit_id=limit.id,
                    scope=limit.scope,
                    window=limit.window,
                    limit=limit.amount,
                    spent=already,
                    amount=proposal.amount,
                    currency=proposal.currency,
                    on_exceed=limit.on_exceed,
                    approvals_may_exceed=limit.approvals_may_exceed,
                )
            )
    return found


def describe(breach: LimitBreach) -> str:
    return (
        f"limit {breach.limit_id} ({breach.scope}, {breach.window}): {breach.spent} already "
        f"spent + {breach.amount} {breach.currency} would exceed {breach.limit}"
    )
