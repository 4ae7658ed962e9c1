"""The spend ledger, rebuilt from the audit trail: `charter audit verify` checks they match.

Every ledger transition is committed with an audit entry in the same transaction: a
reservation with its `action_intent` (`at_execution.reserved`), execution with
`action_result`, a release with `reservation_released`. So the trail alone says what each
row must be, and a row changed behind the application's back shows as a difference.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from charter.audit.chain import AuditEntry, ChainEntry

Ledger = dict[str, tuple[str, Decimal]]


def ledger_from_audit(entries: Iterable[AuditEntry | ChainEntry]) -> Ledger:
    """`{idempotency_key: (state, amount)}` as the trail records it."""
    rebuilt: Ledger = {}
    for entry in entries:
        add_to_ledger(rebuilt, entry)
    return rebuilt


class LedgerEvent(NamedTuple):
    """What one entry does to the ledger: its kind, its idempotency key and, for an intent
    that reserved, the amount as text. Ranges of a chain verified apart hand these over in
    order, so the ledger is rebuilt exactly as from the whole trail."""

    kind: str
    key: str
    reserved: str | None


LEDGER_KINDS = frozenset({"action_intent", "action_result", "reservation_released"})


def ledger_event(entry: AuditEntry | ChainEntry) -> LedgerEvent | None:
    """The entry's ledger event, or None if it has none."""
    key = entry.snapshot.get("idempotency_key")
    if not isinstance(key, str) or entry.kind not in LEDGER_KINDS:
        return None
    reserved = None
    if entry.kind == "action_intent":
        check = entry.snapshot.get("at_execution") or {}
        amount = (entry.snapshot.get("proposal") or {}).get("amount")
        if check.get("reserved") and amount is not None:
            reserved = str(amount)
    return LedgerEvent(entry.kind, key, reserved)


def apply_to_ledger(rebuilt: Ledger, event: LedgerEvent) -> None:
    key = event.key
    if event.kind == "action_intent":
        if event.reserved is not None:
            rebuilt[key] = ("reserved", Decimal(event.reserved))
    elif event.kind == "action_result" and key in rebuilt:
        rebuilt[key] = ("executed", rebuilt[key][1])
    elif event.kind == "reservation_released" and key in rebuilt:
        rebuilt[key] = ("released", rebuilt[key][1])


def add_to_ledger(rebuilt: Ledger, entry: AuditEntry | ChainEntry) -> None:
    """One entry's part of `ledger_from_audit`, for a caller that streams the trail and
    keeps no entry once it has been read."""
    if (event := ledger_event(entry)) is not None:
        apply_to_ledger(rebuilt, event)


def differences(rebuilt: Ledger, stored: Ledger) -> list[str]:
    """Each key whose stored row differs from the trail's, in words."""
    problems = []
    for key in sorted(set(rebuilt) | set(stored)):
        want, have = rebuilt.get(key), stored.get(key)
        if want != have:
            problems.append(
                f"spend ledger {key}: the audit trail says {_show(want)}, the ledger holds "
                f"{_show(have)}"
            )
    return problems


def _show(row: tuple[str, Decimal] | None) -> str:
    return "nothing" if row is None else f"{row[0]} {row[1]}"
