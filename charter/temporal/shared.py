"""Immutable values that many cached workflows hold, held once per worker process.

Every parked run of a tenant holds the constitution it pinned (about 20 KiB once parsed),
and the runs of one tenant pin the same few versions. A run keeps the process's copy of an
equal constitution instead of its own: equal in every field, so nothing the workflow
computes from it changes (replay included). Frozen models, never mutated by anyone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from schemas import Constitution

#: Versions held at once (least recently used go first); beyond it a run keeps its own.
MAX_CONSTITUTIONS = 256

_constitutions: OrderedDict[tuple[str, int, str], Constitution] = OrderedDict()
# Workflow tasks run on several threads.
_lock = threading.Lock()


def shared_constitution(constitution: Constitution) -> Constitution:
    """The process's copy of a constitution equal to this one (this one, the first time)."""
    key = (constitution.tenant_id, constitution.version, constitution.content_hash)
    with _lock:
        held = _constitutions.get(key)
        if held is not None and held == constitution:
            _constitutions.move_to_end(key)
            return held
        _constitutions[key] = constitution
        _constitutions.move_to_end(key)
        while len(_constitutions) > MAX_CONSTITUTIONS:
            _constitutions.popitem(last=False)
        return constitution
