"""The two halves of a connector.

`BooksReader` is all the read activity ever receives: it has no method that changes
anything. `BooksWriter` is obtained only inside the act activity, after the gate and the
recorded approval have been checked.
"""

from __future__ import annotations

from typing import Protocol

from schemas import Observation, Proposal


class ConnectorError(RuntimeError):
    pass


class UnsupportedAction(ConnectorError):
    pass


class ActionRefusedByBooks(ConnectorError):
    """The books no longer allow the action (the invoice was paid meanwhile, say).
    Retrying cannot help; nothing was written."""


class BooksReader(Protocol):
    name: str

    async def snapshot(self, agent: str, focus: list[str]) -> Observation: ...


class BooksWriter(Protocol):
    name: str

    async def execute(self, proposal: Proposal, idempotency_key: str) -> str:
        """Carry out the action once; return the connector's reference for it."""
        ...
