"""Whom Modern Treasury can pay: counterparties and their verified external accounts.

A payee counts as verified when its counterparty has exactly one external account whose
`verification_status` is `verified` (and which is not discarded): that account is the one
a payment goes to. The observation's `vendor.verified` and the writer's check at the moment
of paying use this same rule.
"""

from __future__ import annotations

from modern_treasury import AsyncModernTreasury
from modern_treasury.types import Counterparty

from charter.connectors.modern_treasury.client import ModernTreasurySettings, client, translated
from charter.storage.credential_vault import Credential


def verified_account(counterparty: Counterparty) -> str | None:
    verified = [
        a.id
        for a in counterparty.accounts
        if a.verification_status == "verified" and a.id and a.discarded_at is None
    ]
    return verified[0] if len(verified) == 1 else None


async def named(mt: AsyncModernTreasury, name: str | None = None) -> list[Counterparty]:
    found = []
    with translated("listing counterparties", writing=False):
        pager = mt.counterparties.list() if name is None else mt.counterparties.list(name=name)
        async for counterparty in pager:
            if name is None or counterparty.name == name:
                found.append(counterparty)
    return found


async def verified_payees(settings: ModernTreasurySettings, credential: Credential) -> set[str]:
    """Names of the counterparties a payment could go to right now (read key suffices)."""
    async with client(settings, credential) as mt:
        everyone = await named(mt)
    names = [c.name for c in everyone if c.name and c.discarded_at is None]
    # A name shared by two counterparties is ambiguous: the writer would refuse it.
    return {
        c.name
        for c in everyone
        if c.name and names.count(c.name) == 1 and verified_account(c) is not None
    }
