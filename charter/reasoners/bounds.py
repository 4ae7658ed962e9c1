"""What a usable model reply may contain, beyond what its schema says.

The tool schema accepts any `Decimal`, any string and any number of citations; a model (or
whatever answers in its place) can send `"1E+400"`, a NUL, a lone surrogate or a megabyte of
citations, all schema-valid. None of that can be stored (PostgreSQL rejects `\\u0000`, jsonb
turns 1E+400 into infinity) or carried in history (2 MB payload limit), so a reply holding
any of it is unreadable: it escalates at once instead of failing every later step forever.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from schemas import ProposedAction

#: No action of any tenant moves a trillion; an amount beyond it is noise, not a proposal.
MAX_AMOUNT = Decimal(10) ** 12
#: Cents and below: a finer amount is not money any book records.
MAX_AMOUNT_DECIMALS = 6
MAX_CITATIONS = 32
MAX_CITATION_LENGTH = 128
#: What the proposals of one reply may weigh, serialised: far below Temporal's 2 MB payload
#: limit, so the observation, verdicts and proposals of a run fit beside them.
MAX_PROPOSALS_BYTES = 256 * 1024
#: One line of a problem report (a pydantic location can quote a key of any length).
MAX_PROBLEM_LENGTH = 300

# Control characters other than tab and newline, and UTF-16 surrogates (never valid alone).
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def printable(text: str, limit: int = MAX_PROBLEM_LENGTH) -> str:
    """`text` made safe to store and show: unstorable characters escaped, length bounded."""
    safe = _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return safe if len(safe) <= limit else safe[:limit] + "…"


def _strings(proposal: ProposedAction) -> list[tuple[str, str]]:
    named = [
        ("action", proposal.action),
        ("currency", proposal.currency),
        ("counterparty", proposal.counterparty or ""),
        ("reference", proposal.reference or ""),
        ("rationale", proposal.rationale),
    ]
    return named + [(f"citations.{i}", c) for i, c in enumerate(proposal.citations)]


def _amount_problem(amount: Decimal) -> str | None:
    if not amount.is_finite():
        return "is not a finite number"
    if amount > MAX_AMOUNT:
        return f"is beyond {MAX_AMOUNT:,}"
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_AMOUNT_DECIMALS:
        return f"has more than {MAX_AMOUNT_DECIMALS} decimals"
    return None


def problems(proposals: list[ProposedAction]) -> list[str]:
    """Why these schema-valid proposals still cannot be used; empty when they can."""
    found: list[str] = []
    for n, proposal in enumerate(proposals):
        where = f"proposals.{n}"
        if proposal.amount is not None and (problem := _amount_problem(proposal.amount)):
            found.append(f"{where}.amount: {printable(str(proposal.amount), 40)} {problem}")
        if len(proposal.citations) > MAX_CITATIONS:
            found.append(f"{where}.citations: more than {MAX_CITATIONS}")
        for field, text in _strings(proposal):
            if _UNSTORABLE.search(text):
                found.append(f"{where}.{field}: contains a control character or lone surrogate")
            elif field.startswith("citations.") and len(text) > MAX_CITATION_LENGTH:
                found.append(f"{where}.{field}: longer than {MAX_CITATION_LENGTH} characters")
    if not found:
        size = len(json.dumps([p.model_dump(mode="json") for p in proposals]).encode())
        if size > MAX_PROPOSALS_BYTES:
            found.append(f"the proposals weigh {size:,} bytes; at most {MAX_PROPOSALS_BYTES:,}")
    return found
