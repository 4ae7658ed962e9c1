"""The Plaid sync's cursor and lines kept in Charter's database, per tenant and Item, each
read or write in a short transaction of its own (no Plaid call is made inside one)."""

from __future__ import annotations

from charter.connectors.plaid.bank import BankTransaction
from charter.storage import Database, bank_feed


class StoredFeed:
    def __init__(self, db: Database, tenant_id: str) -> None:
        self._db = db
        self._tenant_id = tenant_id

    async def cursor(self, item_id: str) -> str:
        async with self._db.tenant(self._tenant_id) as conn:
            return await bank_feed.cursor(conn, self._tenant_id, item_id)

    async def apply(
        self,
        item_id: str,
        since: str,
        until: str,
        upserted: list[BankTransaction],
        removed: set[str],
    ) -> None:
        rows = [
            {
                "transaction_id": t.transaction_id,
                "account_id": t.account_id,
                "amount": t.amount,
                "currency": t.currency,
                "description": t.description,
                "booked_on": t.on,
                "pending": t.pending,
            }
            for t in upserted
        ]
        async with self._db.tenant(self._tenant_id) as conn:
            # False: a read beside this one moved the cursor on; its lines are the newer.
            await bank_feed.apply(
                conn,
                self._tenant_id,
                item_id,
                since=since,
                until=until,
                upserted=rows,
                removed=removed,
            )

    async def lines(self, item_id: str) -> list[BankTransaction]:
        async with self._db.tenant(self._tenant_id) as conn:
            rows = await bank_feed.lines(conn, self._tenant_id, item_id)
        return [
            BankTransaction(
                transaction_id=r["transaction_id"],
                account_id=r["account_id"],
                amount=r["amount"],
                currency=r["currency"],
                description=r["description"],
                on=r["booked_on"],
                pending=r["pending"],
            )
            for r in rows
        ]
