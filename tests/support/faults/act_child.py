"""A worker process that runs one act and stops dead at a chosen point, to be SIGKILLed.

    python -m tests.support.faults.act_child DSN POINT  < ActInput as JSON

POINT `reserved`: the reservation is written and its transaction (with the intent) is not
committed yet, the tenant's spend lock held. POINT `committed`: the intent and the
reservation are committed, the books not written yet. At the point the process prints
`stopped POINT` and waits for the signal; the parent kills it there.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities import ActActivities, Deps
from charter.reasoners import OfflineReasoner
from charter.storage import Database, ledger
from schemas import ActInput
from tests.support.vault import session_vault


async def _stop_here(point: str) -> None:
    print(f"stopped {point}", flush=True)
    await asyncio.Event().wait()  # until the parent's SIGKILL


async def main(dsn: str, point: str, raw: str) -> None:
    if point == "reserved":
        reserve = ledger.reserve

        async def reserve_then_stop(*args: Any, **kwargs: Any) -> None:
            await reserve(*args, **kwargs)
            await _stop_here(point)

        ledger.reserve = reserve_then_stop  # type: ignore[assignment]
    elif point == "committed":

        async def stop_before_the_credential(*args: Any, **kwargs: Any) -> Any:
            await _stop_here(point)

        # The write credential is asked for only once the intent is committed (the route is
        # looked up before that too: for the payment's key and the provider's circuit).
        ActActivities._route_and_credential = stop_before_the_credential  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown point {point!r}: reserved | committed")
    db = await Database.connect(dsn)
    act = ActActivities(Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()))
    await ActivityEnvironment().run(act.act, ActInput.model_validate_json(raw))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.stdin.read()))
