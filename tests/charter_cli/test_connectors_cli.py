"""`charter connectors add|list|remove` and `charter actions reconcile`, end to end."""

from __future__ import annotations

import pytest

from charter.connectors.modern_treasury import PROVIDER
from charter.connectors.modern_treasury.payments import KEY_FIELD, REFERENCE_FIELD
from charter.storage import Database, actions, audit_trail
from charter_cli._common import CliError
from tests.support.cli import charter
from tests.support.paying import pay_through, pending
from tests.support.standins.modern_treasury import ModernTreasuryStandIn


@pytest.mark.usefixtures("cli_env")
async def test_connectors_add_list_remove(
    db: Database, tenant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await charter("connectors", "list", "--tenant", tenant) == 0
    assert capsys.readouterr().out.count("demo-books (default)") == 3

    with pytest.raises(CliError, match="originating_account_id: Field required"):
        await charter(
            "connectors", "add", "--tenant", tenant, "--capability", "payments",
            "--provider", PROVIDER, "--set", "organization_id=org-1",
        )  # fmt: skip
    with pytest.raises(CliError, match="cannot serve 'bank'"):
        await charter(
            "connectors", "add", "--tenant", tenant, "--capability", "bank",
            "--provider", PROVIDER, "--set", "organization_id=org-1",
        )  # fmt: skip
    assert await charter(
        "connectors", "add", "--tenant", tenant, "--capability", "payments",
        "--provider", PROVIDER, "--set", "organization_id=org-1",
        "--set", "originating_account_id=ia-1", "--as", "maya",
    ) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "now served by modern-treasury" in out and "no active read or write credential" in out

    assert await charter("connectors", "list", "--tenant", tenant) == 0
    out = capsys.readouterr().out
    assert "modern-treasury" in out and "originating_account_id=ia-1" in out
    assert "missing read, write" in out and out.count("demo-books (default)") == 2

    assert (
        await charter("connectors", "remove", "--tenant", tenant, "--capability", "payments") == 0
    )
    with pytest.raises(CliError, match="no connector configured"):
        await charter("connectors", "remove", "--tenant", tenant, "--capability", "payments")
    async with db.tenant(tenant) as conn:
        kinds = [e.kind async for e in audit_trail.entries(conn, tenant)]
    assert kinds[-2:] == ["connector_configured", "connector_removed"]


async def _intent(db: Database, tenant: str, key: str, workflow_id: str) -> None:
    async with db.tenant(tenant) as conn:
        await audit_trail.append(
            conn,
            tenant,
            "action_intent",
            {
                "idempotency_key": key,
                "attempt": 1,
                "proposal": {
                    "proposal_id": "p1",
                    "action": "schedule_payment",
                    "amount": "1440.00",
                    "currency": "USD",
                    "counterparty": "Figma",
                    "reference": "INV-1042",
                    "confidence": 0.9,
                    "rationale": "due",
                },
                "authorisation": {
                    "kind": "gate",
                    "verdict": {
                        "proposal_id": "p1",
                        "outcome": "execute",
                        "constitution_version": 1,
                        "constitution_hash": "test",
                        "evaluated": [],
                        "matched": [],
                        "confidence": 0.9,
                        "explanation": "test",
                    },
                },
            },
            actor="agent:payables",
            workflow_id=workflow_id,
            run_id="r1",
        )


@pytest.mark.usefixtures("cli_env")
async def test_reconcile_records_what_the_provider_holds_and_leaves_the_rest(
    db: Database,
    tenant: str,
    mt: ModernTreasuryStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await pay_through(db, tenant, mt)
    paid, unpaid = "a" * 32, "b" * 32
    # A worker was killed after the provider created this order, before the result.
    order = mt._order(
        {
            "type": "ach",
            "amount": 144000,
            "direction": "credit",
            "originating_account_id": mt.internal_accounts[0]["id"],
            "receiving_account_id": mt.counterparties[1]["accounts"][0]["id"],
            "metadata": {KEY_FIELD: paid, REFERENCE_FIELD: "INV-1042"},
        }
    )
    mt.payment_orders.append(order)
    await _intent(db, tenant, paid, "wf-paid")
    await _intent(db, tenant, unpaid, "wf-unpaid")
    assert await pending(db, tenant) == [paid, unpaid]

    assert await charter("actions", "reconcile", "--tenant", tenant) == 1
    out = capsys.readouterr().out
    assert "recorded" in out and order["id"] in out and "absent" in out
    assert await pending(db, tenant) == [unpaid]
    async with db.tenant(tenant) as conn:
        row = await actions.executed(conn, tenant, paid)
    assert row is not None and row["connector_reference"] == order["id"]
    # Reconciliation looked, with the read key; it never wrote at the provider.
    assert ("POST", "/api/payment_orders") not in mt.requests
    assert len(mt.payment_orders) == 1

    # Nothing left that the provider holds: a second pass changes nothing.
    assert await charter("actions", "reconcile", "--tenant", tenant) == 1
    assert await pending(db, tenant) == [unpaid]
