"""An authorised action the provider's answer leaves to a human: recorded, and put to them.

A provider's refusal (a 4xx) and a provider that kept turning requests away wrote nothing:
the intent is closed like any refusal and its reservation freed, unless an earlier attempt
under the same key has an unknown outcome. An unknown outcome past the key's retention
closes nothing: the intent stays pending, the spend stays reserved, and reconciliation
lists it until a human settles it.
"""

from __future__ import annotations

import asyncpg

from activities._action_records import record_refusal
from activities._audit import record
from activities._provider_writes import Escalation
from activities._send_back import send_back
from charter.services.execution import ExecutionCheck
from charter.storage.provider_writes import OpenAttempts
from schemas import ActInput, Verdict

#: What the exception says the human is asked, per kind of escalation.
_ASKED = {
    "provider_refused": "the provider refused the approved payment: nothing was paid",
    "provider_unavailable": "the provider kept turning the payment away: nothing was paid",
    "outcome_unknown": "nobody knows whether the payment was made: settle it first",
}


async def escalate(
    conn: asyncpg.Connection,
    req: ActInput,
    key: str,
    check: ExecutionCheck,
    verdict: Verdict,
    escalation: Escalation,
    earlier: OpenAttempts,
    *,
    actor: str,
) -> str:
    """Record the escalation and open its exception, in the caller's transaction; its id."""
    detail = {
        "kind": escalation.kind,
        "idempotency_key": key,
        "message": str(escalation),
        "asked": _ASKED[escalation.kind],
        **escalation.detail,
    }
    wrote_nothing = escalation.kind != "outcome_unknown" and not earlier.attempts
    if wrote_nothing:
        await record_refusal(conn, req, key, {"reason": str(escalation), **detail}, actor=actor)
    else:
        await record(conn, req.run, "action_escalated", detail, actor=actor)
    return await send_back(conn, req, check, verdict, escalation=detail)
