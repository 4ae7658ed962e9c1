"""What changed between two constitution versions, rule by rule."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas import ConstitutionDocument


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["added", "removed", "changed"]
    subject: str
    """`rule deny-already-paid`, `action type run_payroll`, `defaults`."""
    fields: dict[str, tuple[Any, Any]] = {}
    """For `changed`: field -> (before, after)."""


def _fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        k: (before.get(k), after.get(k))
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    }


def _compared(
    subject: str, before: BaseModel | None, after: BaseModel | None, *, exclude_none: bool
) -> Change | None:
    """How one action type or rule changed between the versions; None if it did not."""
    if before is None:
        return Change(kind="added", subject=subject)
    if after is None:
        return Change(kind="removed", subject=subject)
    if before == after:
        return None
    return Change(
        kind="changed",
        subject=subject,
        fields=_fields(
            before.model_dump(mode="json", exclude_none=exclude_none),
            after.model_dump(mode="json", exclude_none=exclude_none),
        ),
    )


def diff(a: ConstitutionDocument, b: ConstitutionDocument) -> list[Change]:
    changes: list[Change | None] = []
    da = a.defaults.model_dump(mode="json", exclude_none=True)
    db = b.defaults.model_dump(mode="json", exclude_none=True)
    if da != db:
        changes.append(Change(kind="changed", subject="defaults", fields=_fields(da, db)))
    for name in sorted(set(a.action_types) | set(b.action_types)):
        before, after = a.action_types.get(name), b.action_types.get(name)
        changes.append(_compared(f"action type {name}", before, after, exclude_none=False))
    ra = {r.id: r for r in a.rules}
    rb = {r.id: r for r in b.rules}
    for rule_id in [*ra, *(r for r in rb if r not in ra)]:
        before_rule, after_rule = ra.get(rule_id), rb.get(rule_id)
        changes.append(_compared(f"rule {rule_id}", before_rule, after_rule, exclude_none=True))
    return [c for c in changes if c is not None]
