"""Rolling-window spend and declared limits: pure, shared by the gate and the act activity.

The sums come from Charter's ledger of executed actions and live reservations
(`charter.storage.ledger`), never from the model or the connector. In a condition they read
as `spend.<dimension>("<window>")`: the dimension picks which sum applies to the proposal
being judged (its payee, its agent, its action type, autonomous executions, everything),
the window how far back it looks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

from charter.governance.exchange import Rates
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


@dataclass
class _Tally:
    """What one limit counts, in its currency: spend converted with the observation's rates
    (`rates` None: as limits counted before they converted, the limit's currency only)."""

    currency: str
    rates: Rates | None
    spent: Decimal = Decimal(0)
    used: set[str] = field(default_factory=set)
    unpriced: set[str] = field(default_factory=set)

    def counted(self, amount: Decimal, currency: str) -> Decimal | None:
        """`amount` of `currency` in the limit's currency; None (noted unpriced) if no rate."""
        if self.rates is None:
            return amount if currency == self.currency else None
        converted = self.rates.convert(amount, currency, self.currency)
        if converted is None:
            self.unpriced.add(currency)
            return None
        self.used.update(converted.rates)
        return converted.amount

    def add(self, amount: Decimal, currency: str) -> None:
        if amount:  # nothing spent needs no rate
            self.spent += self.counted(amount, currency) or Decimal(0)


def _in_scope(
    scope: str, other: ProposedAction, other_payee: str, proposal: ProposedAction, payee: str
) -> bool:
    """Whether an earlier proposal of the run counts in the same sum as `proposal`."""
    return {
        "total": True,
        "autonomous": True,
        "counterparty": other_payee == payee,
        "agent": True,
        "action": other.action == proposal.action,
    }[scope]


def _tally(
    limit: Limit,
    proposal: ProposedAction,
    *,
    agent: str,
    payee: str,
    snapshot: SpendSnapshot | None,
    earlier: Sequence[tuple[ProposedAction, str]],
    rates: Rates | None,
) -> _Tally:
    """The spend `limit` already counts for `proposal`: the ledger's, every currency, then
    the earlier proposals of the run."""
    tally = _Tally(limit.currency, rates)
    if snapshot is not None:
        totals = snapshot.windows.get(limit.window, _NOTHING_SPENT)
        base = spent(totals, limit.scope, proposal, agent, payee)
        # Before limits converted, the snapshot's sums counted as the limit's currency.
        tally.add(base, limit.currency if rates is None else snapshot.currency)
        if rates is not None:
            for currency, windows in sorted(snapshot.other_currencies.items()):
                tally.add(
                    spent(
                        windows.get(limit.window, _NOTHING_SPENT),
                        limit.scope,
                        proposal,
                        agent,
                        payee,
                    ),
                    currency,
                )
    for other, other_payee in earlier:
        if other.amount is None or not _in_scope(limit.scope, other, other_payee, proposal, payee):
            continue
        if rates is None and other.currency != limit.currency:
            continue  # as before limits converted: not counted
        tally.add(other.amount, other.currency)
    return tally


def breaches(
    document: ConstitutionDocument,
    proposal: ProposedAction,
    *,
    agent: str,
    payee: str,
    snapshot: SpendSnapshot | None,
    autonomous: bool,
    earlier: Sequence[tuple[ProposedAction, str]] = (),
    rates: Rates | None = None,
) -> list[LimitBreach]:
    """Every applicable limit `proposal` does not fit under.

    `earlier`: proposals (with their payees) already committed but not in the snapshot, e.g.
    those of the same run gated before this one. An `autonomous` limit counts only actions
    executed without a human, so it binds only when `autonomous`. Amounts in another
    currency than the limit's are converted with `rates` (the observation's); with any
    amount no rate converts, the proposal does not fit. `rates` None: as limits were judged
    before they converted (runs recorded then replay so): only the limit's currency counts,
    and a proposal in another does not fit.
    """
    found: list[LimitBreach] = []
    spenders = spending_actions(document)
    counted_earlier = [(p, who) for p, who in earlier if p.action in spenders]
    for limit in applicable(document, proposal):
        if limit.scope == "autonomous" and not autonomous:
            continue
        assert proposal.amount is not None
        tally = _tally(
            limit,
            proposal,
            agent=agent,
            payee=payee,
            snapshot=snapshot,
            earlier=counted_earlier,
            rates=rates,
        )
        amount = tally.counted(proposal.amount, proposal.currency)
        if amount is None or tally.unpriced or tally.spent + amount > limit.amount:
            found.append(_breach(limit, proposal, tally, amount))
    return found


def _breach(
    limit: Limit, proposal: ProposedAction, tally: _Tally, amount: Decimal | None
) -> LimitBreach:
    assert proposal.amount is not None
    mixed = tally.rates is not None and (proposal.currency != limit.currency or tally.used)
    return LimitBreach(
        limit_id=limit.id,
        scope=limit.scope,
        window=limit.window,
        limit=limit.amount,
        spent=tally.spent,
        amount=proposal.amount,
        currency=proposal.currency,
        on_exceed=limit.on_exceed,
        approvals_may_exceed=limit.approvals_may_exceed,
        limit_currency=limit.currency if mixed or tally.unpriced else None,
        converted=amount if proposal.currency != limit.currency else None,
        rates=sorted(tally.used),
        unpriced=sorted(tally.unpriced),
    )


def mixes_currencies(
    document: ConstitutionDocument,
    proposal: ProposedAction,
    snapshot: SpendSnapshot | None,
    earlier: Sequence[ProposedAction] = (),
) -> bool:
    """Whether a limit on `proposal` would count money in a currency other than its own:
    only then does converting change how limits judge."""
    seen = {proposal.currency, *(p.currency for p in earlier if p.amount is not None)}
    if snapshot is not None:
        seen |= {snapshot.currency, *snapshot.other_currencies}
    return any(seen - {limit.currency} for limit in applicable(document, proposal))


def describe(breach: LimitBreach) -> str:
    where = f"limit {breach.limit_id} ({breach.scope}, {breach.window})"
    if breach.unpriced:
        return (
            f"{where}: no usable rate from {', '.join(breach.unpriced)} to "
            f"{breach.limit_currency}, so the limit cannot count it"
        )
    unit = f" {breach.limit_currency}" if breach.limit_currency else ""
    amount = f"{breach.amount} {breach.currency}"
    if breach.converted is not None:
        amount += f" (= {breach.converted}{unit})"
    rates = f" at {'; '.join(breach.rates)}" if breach.rates else ""
    return (
        f"{where}: {breach.spent}{unit} already spent + {amount} would exceed "
        f"{breach.limit}{unit}{rates}"
    )
