"""The Modern Treasury stand-in behaves as the provider documents, seen through the SDK.

The exactly-once tests lean on these behaviours; if the stand-in drifted from them, those
tests would prove less than they claim.
"""

from __future__ import annotations

from typing import Any

import modern_treasury as mt_sdk
import pytest

from tests.support.standins.modern_treasury import ModernTreasuryStandIn


def sdk(mt: ModernTreasuryStandIn, scope: str = "write") -> mt_sdk.AsyncModernTreasury:
    return mt_sdk.AsyncModernTreasury(
        api_key=mt.add_key(scope),
        organization_id=mt.organization_id,
        base_url=mt.base_url,
        max_retries=0,
    )


def order(mt: ModernTreasuryStandIn, amount: int, **metadata: str) -> dict[str, Any]:
    return {
        "amount": amount,
        "direction": "credit",
        "type": "ach",
        "originating_account_id": mt.internal_accounts[0]["id"],
        "receiving_account_id": mt.counterparties[0]["accounts"][0]["id"],
        "metadata": metadata,
    }


async def test_idempotency_key_same_body_same_order_other_body_refused(
    mt: ModernTreasuryStandIn,
) -> None:
    async with sdk(mt) as client:
        first = await client.payment_orders.create(**order(mt, 100), idempotency_key="k1")
        again = await client.payment_orders.create(**order(mt, 100), idempotency_key="k1")
        assert again.id == first.id and len(mt.payment_orders) == 1
        with pytest.raises(mt_sdk.UnprocessableEntityError) as refused:
            await client.payment_orders.create(**order(mt, 200), idempotency_key="k1")
        assert refused.value.body["errors"]["parameter"] == "Idempotency-Key"  # type: ignore[index]
        mt.forget_idempotency_keys = True
        await client.payment_orders.create(**order(mt, 100), idempotency_key="k1")
    assert len(mt.payment_orders) == 2, "a forgotten key creates anew: hence the lookup"


async def test_pages_and_metadata_filters(mt: ModernTreasuryStandIn) -> None:
    async with sdk(mt) as client:
        for i in range(5):
            await client.payment_orders.create(**order(mt, 100 + i, bill="B1" if i % 2 else "B2"))
        seen = [o.amount async for o in client.payment_orders.list(per_page=2)]
        assert seen == [100, 101, 102, 103, 104]
        assert mt.requests.count(("GET", "/api/payment_orders")) == 3
        b1 = [o.amount async for o in client.payment_orders.list(metadata={"bill": "B1"})]
        assert b1 == [101, 103]


async def test_authentication_and_read_only_keys(mt: ModernTreasuryStandIn) -> None:
    async with sdk(mt, "read") as reader:
        assert [o async for o in reader.payment_orders.list()] == []
        with pytest.raises(mt_sdk.PermissionDeniedError):
            await reader.payment_orders.create(**order(mt, 100))
    async with mt_sdk.AsyncModernTreasury(
        api_key="stolen", organization_id=mt.organization_id, base_url=mt.base_url
    ) as stranger:
        with pytest.raises(mt_sdk.AuthenticationError):
            await stranger.counterparties.list()
    assert mt.payment_orders == []
