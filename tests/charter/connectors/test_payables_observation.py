"""The payables observation from Plaid, QuickBooks Online and Modern Treasury stand-ins.

Each provider is reached through its official SDK; the read activity runs as it does in a
worker (Temporal's activity environment), holding read-scoped credentials only. The gate
then judges proposals against that observation under Acme's constitution.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import NamedTuple

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities import Deps
from activities.read import ReadActivities
from charter.connectors.quickbooks.payments import request_id
from charter.demo.seed import constitution_source, seed
from charter.governance import gate
from charter.governance.facts import facts_for
from charter.presentation.report import invoice_label
from charter.reasoners import OfflineReasoner
from charter.services.books_closing import (
    BILL_PAYMENT_INTENT,
    BILL_PAYMENT_MISSING,
    BILL_PAYMENT_RECORDED,
)
from charter.services.reconcile import reconcile_tenant
from charter.storage import Database, audit_trail, plaid_cursors
from charter.storage import connector_config as config
from charter.storage import credential_vault as creds
from schemas import Observation, ObserveInput, ProposalState, RunRef
from tests.charter.connectors.test_payment_worker_killed import worker_process
from tests.support.constitutions import constitution, proposal
from tests.support.paying import pay_through
from tests.support.running import start
from tests.support.standins.modern_treasury import ModernTreasuryStandIn
from tests.support.standins.plaid import PlaidStandIn
from tests.support.standins.quickbooks import QuickBooksStandIn
from tests.support.standins.serving import serving
from tests.support.told import Told
from tests.support.vault import session_vault
from worker import build_worker


@pytest.fixture
async def qbo(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[QuickBooksStandIn]:
    # The stand-in speaks plain HTTP on loopback; requests-oauthlib refuses that unless told.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    standin = QuickBooksStandIn()
    figma = standin.add_vendor("Figma")
    bluebird = standin.add_vendor("Bluebird Design Studio")
    stranger = standin.add_vendor("Stranger Supplies")
    atelier = standin.add_vendor("Atelier Lumière")
    standin.add_bill("QB-1", figma, "1440.00", memo="Annual seats")
    standin.add_bill("QB-2", figma, "800.00", balance="0")  # paid, as QuickBooks shows
    standin.add_bill("QB-3", figma, "500.00")  # paid, as only the bank shows
    standin.add_bill("QB-4", bluebird, "900.00")
    standin.add_bill("QB-5", stranger, "300.00")
    standin.add_bill("QB-6", atelier, "1000.00", currency="EUR")
    async with serving(standin):
        yield standin


@pytest.fixture
async def plaid() -> AsyncIterator[PlaidStandIn]:
    standin = PlaidStandIn()
    operating = standin.add_account("Operating ••4021", "182450.00")
    standin.add_account("Reserve ••7710", "600000.00")
    standin.add_outflow(operating, "500.00", "ACH DEBIT FIGMA INC QB-3")
    standin.add_outflow(operating, "42.17", "COFFEE")
    standin.add_outflow(operating, "1200.00", "AWS")
    async with serving(standin):
        yield standin


async def _add(
    db: Database,
    tenant: str,
    connector: str,
    secret: creds.CredentialSecret,
    scope: creds.Scope = "read",
) -> None:
    async with db.tenant(tenant) as conn:
        await creds.add(
            conn,
            session_vault().keys,
            tenant_id=tenant,
            connector=connector,
            scope=scope,
            secret=secret,
            created_by="test",
        )


async def real_books(
    db: Database,
    tenant: str,
    qbo: QuickBooksStandIn,
    plaid: PlaidStandIn,
    mt: ModernTreasuryStandIn,
    *,
    expired: bool = False,
    books_write: bool = False,
) -> None:
    """Bank from Plaid, bills from QuickBooks, payments (and verification) from Modern Treasury.
    `books_write`: QuickBooks write credentials too, and the account bill payments are
    recorded from, so a payment made closes its bill in the books."""
    async with db.tenant(tenant) as conn:
        for capability, provider, settings in (
            ("bank", "plaid", {"client_id": plaid.client_id, "host": plaid.base_url}),
            ("bills", "quickbooks", quickbooks_settings(qbo, books_write=books_write)),
        ):
            await config.configure(
                conn,
                tenant_id=tenant,
                capability=capability,  # type: ignore[arg-type]
                provider=provider,
                settings=settings,
                created_by="test",
            )
    await _add(db, tenant, "plaid", creds.CredentialSecret(api_key=plaid.secret))
    await _add(db, tenant, "plaid-item", creds.CredentialSecret(api_key=plaid.link()))
    await _add(db, tenant, "quickbooks-app", creds.CredentialSecret(api_key=qbo.client_secret))
    await _add(
        db, tenant, "quickbooks", creds.CredentialSecret.model_validate(qbo.grant(expired=expired))
    )
    if books_write:
        await add_books_writer(db, tenant, qbo)
    await pay_through(db, tenant, mt)


def quickbooks_settings(qbo: QuickBooksStandIn, *, books_write: bool) -> dict[str, str]:
    return {
        "realm_id": qbo.realm_id,
        "client_id": qbo.client_id,
        "environment": qbo.discovery_url,
        "api_url": qbo.base_url,
        **({"payment_account_id": "35"} if books_write else {}),
    }


async def pay_bill_140(client: Client, tenant: str) -> ProposalState:
    """A payables run on Figma's bill 140 (DocNumber QB-1), executed."""
    handle = await start(client, tenant, "payables", focus=["140"])
    (ps,) = (await asyncio.wait_for(handle.result(), timeout=60)).proposals
    assert ps.status == "executed" and ps.action is not None, ps.failure
    return ps


async def add_books_writer(db: Database, tenant: str, qbo: QuickBooksStandIn) -> None:
    """QuickBooks write credentials: a token set of their own, and the app's secret."""
    app = creds.CredentialSecret(api_key=qbo.client_secret)
    await _add(db, tenant, "quickbooks-app", app, "write")
    tokens = creds.CredentialSecret.model_validate(qbo.grant())
    await _add(db, tenant, "quickbooks", tokens, "write")


async def observe(db: Database, tenant: str, focus: list[str] | None = None) -> Observation:
    activities = ReadActivities(
        Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner())
    )
    run = RunRef(tenant_id=tenant, agent="payables", workflow_id=f"wf-{tenant}", run_id="r1")
    result: Observation = await ActivityEnvironment().run(
        activities.observe, ObserveInput(run=run, focus=focus or [])
    )
    return result


class Books(NamedTuple):
    """A tenant and the three providers' stand-ins it will read from."""

    db: Database
    tenant: str
    qbo: QuickBooksStandIn
    plaid: PlaidStandIn
    mt: ModernTreasuryStandIn


@pytest.fixture
def books(
    db: Database,
    tenant: str,
    qbo: QuickBooksStandIn,
    plaid: PlaidStandIn,
    mt_verifies: ModernTreasuryStandIn,
) -> Books:
    return Books(db, tenant, qbo, plaid, mt_verifies)


@pytest.fixture
def mt_verifies(mt: ModernTreasuryStandIn) -> ModernTreasuryStandIn:
    """At the payments provider: Figma and Atelier verified, Bluebird pending, no Stranger."""
    mt.counterparties.clear()
    mt.add_counterparty("Figma")
    mt.add_counterparty("Atelier Lumière")
    mt.add_counterparty("Bluebird Design Studio", verification="pending_verification")
    return mt


async def test_two_tenants_with_different_connectors_read_their_own_books(
    db: Database,
    admin_dsn: str,
    tenant: str,
    qbo: QuickBooksStandIn,
    plaid: PlaidStandIn,
    mt_verifies: ModernTreasuryStandIn,
) -> None:
    other = f"t-{uuid.uuid4().hex[:10]}"
    await seed(
        db, other, template="initech", actor="test", keys=session_vault().keys, admin_dsn=admin_dsn
    )
    await real_books(db, tenant, qbo, plaid, mt_verifies)

    real = await observe(db, tenant)
    demo = await observe(db, other)

    assert real.source == "plaid+quickbooks" and demo.source == "demo-books"
    assert [(a.name, a.balance) for a in real.bank_accounts] == [
        ("Operating ••4021", Decimal("182450.00")),
        ("Reserve ••7710", Decimal("600000.00")),
    ]
    assert [i.invoice_id for i in real.invoices] == ["140", "141", "142", "143", "144", "145"]
    assert {v.name: v.verified for v in real.vendors} == {
        "Figma": True,
        "Bluebird Design Studio": False,
        "Stranger Supplies": False,
        "Atelier Lumière": True,
    }
    assert [i.invoice_id for i in demo.invoices] == ["INV-77", "INV-78"]
    assert {a.account_id for a in demo.bank_accounts} == {"operating"}
    # Decimal amounts in each bill's own currency; paid as QuickBooks or the bank show it.
    by_id = {i.invoice_id: i for i in real.invoices}
    assert by_id["145"].currency == "EUR" and by_id["145"].amount == Decimal("1000.00")
    assert (by_id["141"].status, by_id["141"].amount_paid) == ("paid", Decimal("800.00"))
    assert (by_id["142"].status, by_id["142"].amount_paid) == ("open", Decimal("500.00"))
    assert by_id["140"].amount_paid == Decimal("0")
    # Paged: Plaid answered /transactions/sync two transactions at a time.
    assert len(plaid.transactions) > plaid.page_size


CASES = [
    # (what, proposal fields, outcome, rule that decides)
    ("open bill of a verified vendor", {"reference": "140", "counterparty": "Figma", "amount": "1440.00"}, "execute", "allow-verified-vendor-bills"),
    ("paid in QuickBooks", {"reference": "141", "counterparty": "Figma", "amount": "800.00"}, "deny", "deny-already-paid"),
    ("paid per the bank", {"reference": "142", "counterparty": "Figma", "amount": "500.00"}, "deny", "deny-already-paid"),
    ("vendor without a verified account", {"reference": "143", "counterparty": "Bluebird Design Studio", "amount": "900.00"}, "escalate", None),
    ("vendor unknown to the payments provider", {"reference": "144", "counterparty": "Stranger Supplies", "amount": "300.00"}, "escalate", None),
    ("bill unknown to the books", {"reference": "999", "counterparty": "Figma", "amount": "300.00"}, "deny", "deny-unknown-or-overpaid-invoice"),
    ("currency mismatch", {"reference": "145", "counterparty": "Atelier Lumière", "amount": "1000.00", "currency": "USD"}, "deny", "currency_mismatch"),
    ("in the bill's currency", {"reference": "145", "counterparty": "Atelier Lumière", "amount": "1000.00", "currency": "EUR"}, "escalate", None),  # acme's daily cap counts USD only
]  # fmt: skip


async def test_the_gate_judges_provider_facts_as_it_judges_the_demo_books(
    db: Database,
    tenant: str,
    qbo: QuickBooksStandIn,
    plaid: PlaidStandIn,
    mt_verifies: ModernTreasuryStandIn,
) -> None:
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    observation = await observe(db, tenant)
    law = constitution(constitution_source("acme"))
    for what, fields, outcome, rule in CASES:
        p = proposal(law, **{**fields, "amount": Decimal(fields["amount"])})
        verdict = gate.evaluate(law, p, observation)
        assert verdict.outcome == outcome, (what, verdict.explanation)
        if rule is not None:
            # A rule of the constitution, or a check the gate makes before any rule.
            decided_by = [m.rule_id for m in verdict.matched] + [str(c) for c in verdict.causes]
            assert rule in decided_by, (what, decided_by)


async def test_an_expired_quickbooks_token_is_refreshed_and_stored_inside_the_activity(
    db: Database,
    tenant: str,
    qbo: QuickBooksStandIn,
    plaid: PlaidStandIn,
    mt_verifies: ModernTreasuryStandIn,
) -> None:
    await real_books(db, tenant, qbo, plaid, mt_verifies, expired=True)
    async with db.tenant(tenant) as conn:
        before = await session_vault().scoped("read").obtain_for(conn, tenant, "quickbooks")
    assert (await observe(db, tenant, ["140"])).invoices[0].invoice_id == "140"
    assert qbo.refreshes == 1
    async with db.tenant(tenant) as conn:
        after = await session_vault().scoped("read").obtain_for(conn, tenant, "quickbooks")
    # The rotated refresh token is the one stored (the old one no longer works).
    assert after.secret.refresh_token != before.secret.refresh_token
    assert after.secret.refresh_token is not None
    assert after.secret.refresh_token.get_secret_value() in qbo.refresh_tokens
    await observe(db, tenant, ["140"])
    assert qbo.refreshes == 1, "a fresh token is used as it is"


async def test_revoked_credentials_fail_the_read_with_a_clear_error(
    db: Database,
    tenant: str,
    qbo: QuickBooksStandIn,
    plaid: PlaidStandIn,
    mt_verifies: ModernTreasuryStandIn,
) -> None:
    await real_books(db, tenant, qbo, plaid, mt_verifies, expired=True)
    qbo.revoke_all()
    with pytest.raises(Exception, match="QuickBooks refused to refresh credential cred-") as raised:
        await observe(db, tenant)
    assert type(raised.value).__name__ == "CredentialUnavailable"

    # QuickBooks reconnected; now the bank connection needs its user again.
    await _add(db, tenant, "quickbooks", creds.CredentialSecret.model_validate(qbo.grant()))
    plaid.login_required = True
    with pytest.raises(Exception, match="Plaid: ITEM_LOGIN_REQUIRED") as raised:
        await observe(db, tenant)
    assert type(raised.value).__name__ == "CredentialUnavailable"


async def test_a_run_against_the_three_providers_pays_once_and_a_revoked_one_pays_nothing(
    client: Client,
    worker: Worker,
    db: Database,
    tenant: str,
    qbo: QuickBooksStandIn,
    plaid: PlaidStandIn,
    mt_verifies: ModernTreasuryStandIn,
) -> None:
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    handle = await start(client, tenant, "payables", focus=["140"])
    (ps,) = (await asyncio.wait_for(handle.result(), timeout=60)).proposals
    assert ps.status == "executed" and ps.action is not None
    (order,) = mt_verifies.payment_orders
    assert order["id"] == ps.action.connector_reference and order["amount"] == 144000

    qbo.revoke_all()
    failed = await start(client, tenant, "payables", focus=["140"])
    with pytest.raises(WorkflowFailureError) as raised:
        await asyncio.wait_for(failed.result(), timeout=60)
    cause = str(raised.value.cause.cause)  # type: ignore[union-attr]
    assert cause.startswith("CredentialUnavailable: QuickBooks rejected credential")
    assert len(mt_verifies.payment_orders) == 1


async def test_a_throttled_quickbooks_read_is_retryable_then_reads(
    db: Database,
    tenant: str,
    qbo: QuickBooksStandIn,
    plaid: PlaidStandIn,
    mt_verifies: ModernTreasuryStandIn,
) -> None:
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    qbo.throttle = 1
    with pytest.raises(ApplicationError, match="ThrottleExceeded") as raised:
        await observe(db, tenant)
    assert raised.value.type == "ProviderUnavailable" and not raised.value.non_retryable
    assert [i.invoice_id for i in (await observe(db, tenant, ["143"])).invoices] == ["143"]


async def _entries(db: Database, tenant: str, kind: str) -> list[dict[str, object]]:
    async with db.tenant(tenant) as conn:
        return [e.snapshot async for e in audit_trail.entries(conn, tenant) if e.kind == kind]


async def test_a_payment_made_closes_its_bill_in_quickbooks_and_the_next_run_leaves_it(
    client: Client,
    worker: Worker,
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    await real_books(db, tenant, qbo, plaid, mt_verifies, books_write=True)
    ps = await pay_bill_140(client, tenant)
    (order,) = mt_verifies.payment_orders
    # One BillPayment against the bill, for the amount paid, under the payment's request id.
    (payment,) = qbo.bill_payments
    assert payment["Line"][0]["LinkedTxn"][0] == {"TxnId": "140", "TxnType": "Bill", "TxnLineId": 0}
    assert Decimal(str(payment["TotalAmt"])) == Decimal("1440.00")
    assert payment["VendorRef"]["value"] == qbo.bill("140")["VendorRef"]["value"]
    assert payment["CheckPayment"]["BankAccountRef"]["value"] == "35"
    assert list(qbo.by_request_id) == [request_id(ps.action.idempotency_key)]
    assert qbo.bill("140")["Balance"] == 0
    (recorded,) = await _entries(db, tenant, BILL_PAYMENT_RECORDED)
    assert recorded["bill_payment_id"] == payment["Id"]
    assert recorded["payment_key"] == ps.action.idempotency_key
    assert order["id"] == recorded["payment_reference"]

    (bill,) = (await observe(db, tenant, ["140"])).invoices
    assert (bill.status, bill.amount_paid) == ("paid", Decimal("1440.00"))
    again = await start(client, tenant, "payables", focus=["140"])
    assert (await asyncio.wait_for(again.result(), timeout=60)).proposals == []
    assert len(mt_verifies.payment_orders) == 1 and len(qbo.bill_payments) == 1


async def test_a_bill_payment_whose_answer_was_lost_is_not_recorded_twice(
    client: Client,
    worker: Worker,
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    await real_books(db, tenant, qbo, plaid, mt_verifies, books_write=True)
    # Intuit applies the create and the answer is lost (a 500 with its transient fault).
    qbo.lose_bill_payment_answers = 1
    await pay_bill_140(client, tenant)
    assert len(mt_verifies.payment_orders) == 1
    # The act was retried and sent the same requestid: Intuit answered the first one's.
    assert len(qbo.bill_payments) == 1
    assert qbo.bill("140")["Balance"] == 0
    assert len(await _entries(db, tenant, BILL_PAYMENT_INTENT)) == 2
    (recorded,) = await _entries(db, tenant, BILL_PAYMENT_RECORDED)
    assert recorded["bill_payment_id"] == qbo.bill_payments[0]["Id"]


async def test_reconcile_records_the_bill_payment_a_payment_made_without(
    client: Client,
    worker: Worker,
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    # Paid with read-only QuickBooks credentials: the payment stands, the BillPayment missing.
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    ps = await pay_bill_140(client, tenant)
    assert qbo.bill_payments == [] and qbo.bill("140")["Balance"] == 1440
    (missing,) = await _entries(db, tenant, BILL_PAYMENT_MISSING)
    assert "no QuickBooks write credential" in str(missing["reason"])

    readers, books = session_vault().scoped("read"), session_vault().scoped("write")
    unsettled = await reconcile_tenant(db, tenant, readers, books)
    assert [(r.outcome, r.idempotency_key) for r in unsettled] == [
        ("bill_payment_missing", ps.action.idempotency_key)
    ]
    async with db.tenant(tenant) as conn:
        await config.configure(
            conn,
            tenant_id=tenant,
            capability="bills",
            provider="quickbooks",
            settings=quickbooks_settings(qbo, books_write=True),
            created_by="test",
        )
    await add_books_writer(db, tenant, qbo)
    (repaired,) = await reconcile_tenant(db, tenant, readers, books)
    (payment,) = qbo.bill_payments
    assert (repaired.outcome, repaired.reference) == ("bill_payment_recorded", payment["Id"])
    assert qbo.bill("140")["Balance"] == 0
    assert await reconcile_tenant(db, tenant, readers, books) == []
    assert await reconcile_tenant(db, tenant, readers) == [], "without books, nothing to do"


async def test_bills_are_known_by_their_quickbooks_id_and_one_without_a_due_date_is_due_on_entry(
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    figma = qbo.vendors[0]["Id"]
    stranger = qbo.vendors[2]["Id"]
    mine = qbo.add_bill("1001", figma, "120.00")
    theirs = qbo.add_bill("1001", stranger, "75.00", no_due_date=True)
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    by_id = {i.invoice_id: i for i in (await observe(db, tenant)).invoices}
    # Two vendors' bills "1001": two invoices, never one reference.
    assert (by_id[mine].number, by_id[theirs].number) == ("1001", "1001")
    # A human sees the vendor's number, the id beside it.
    assert invoice_label(by_id[mine].model_dump()) == f"1001 (id {mine})"
    assert (by_id[mine].vendor_name, by_id[mine].amount) == ("Figma", Decimal("120.00"))
    assert (by_id[theirs].vendor_name, by_id[theirs].amount) == ("Stranger Supplies", Decimal("75"))
    # No DueDate: due on its transaction date, as QuickBooks treats a bill without terms.
    assert by_id[theirs].due_date.isoformat() == qbo.bill(theirs)["TxnDate"]
    (focused,) = (await observe(db, tenant, [theirs])).invoices
    assert focused.vendor_name == "Stranger Supplies"


async def test_intuits_transient_faults_are_retryable_not_a_reconnect(
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    await real_books(db, tenant, qbo, plaid, mt_verifies, expired=True)
    qbo.token_unavailable = 1
    with pytest.raises(ApplicationError, match="token endpoint answered 503") as raised:
        await observe(db, tenant)
    assert raised.value.type == "ProviderUnavailable" and not raised.value.non_retryable
    qbo.transient_faults = 1
    with pytest.raises(ApplicationError, match=r"\(10000\)") as raised:
        await observe(db, tenant)
    assert raised.value.type == "ProviderUnavailable" and not raised.value.non_retryable
    assert [i.invoice_id for i in (await observe(db, tenant, ["143"])).invoices] == ["143"]
    assert qbo.refreshes == 1


async def test_concurrent_reads_refresh_the_quickbooks_token_once(
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    await real_books(db, tenant, qbo, plaid, mt_verifies, expired=True)
    # Each read finds the stored token expiring; Intuit rotates the refresh token, so a
    # second refresh with the old one would be refused (invalid_grant).
    read = await asyncio.gather(*(observe(db, tenant, ["140"]) for _ in range(3)))
    assert [o.invoices[0].invoice_id for o in read] == ["140"] * 3
    assert qbo.refreshes == 1
    async with db.tenant(tenant) as conn:
        stored = await session_vault().scoped("read").obtain_for(conn, tenant, "quickbooks")
    assert stored.secret.refresh_token is not None
    assert qbo.refresh_tokens == {stored.secret.refresh_token.get_secret_value()}


async def test_cash_is_depository_accounts_in_their_currency_spendable_and_null_safe(
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    plaid.add_account("Amex ••1008", "5120.00", kind="credit", subtype="credit card")
    plaid.add_account("Term loan", "250000.00", kind="loan", subtype="commercial")
    plaid.add_account("Brokerage", "90000.00", kind="investment", subtype="brokerage")
    plaid.add_account("Paris ••0042", "30000.00", "EUR")
    plaid.add_account("Payroll ••3300", "9000.00", available="7500.00")  # holds pending
    plaid.add_account("New ••5511", None, available=None)  # the bank reports neither yet
    plaid.add_account("Sweep ••6600", "1000.00", available=None)
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    accounts = {a.name: (a.currency, a.balance) for a in (await observe(db, tenant)).bank_accounts}
    assert accounts == {
        "Operating ••4021": ("USD", Decimal("182450.00")),
        "Reserve ••7710": ("USD", Decimal("600000.00")),
        "Paris ••0042": ("EUR", Decimal("30000.00")),
        "Payroll ••3300": ("USD", Decimal("7500.00")),
        "New ••5511": ("USD", Decimal("0")),
        "Sweep ••6600": ("USD", Decimal("1000.00")),
    }
    # The gate's total cash is the proposal's currency's alone.
    observation = await observe(db, tenant)
    law = constitution(constitution_source("acme"))
    usd = proposal(law, reference="140", counterparty="Figma", amount=Decimal("1440.00"))
    eur = proposal(law, reference="145", counterparty="Atelier Lumière", amount=Decimal("1000"))
    eur = eur.model_copy(update={"currency": "EUR"})
    assert facts_for(usd, observation)["total_cash"] == Decimal("790950.00")
    assert facts_for(eur, observation)["total_cash"] == Decimal("30000.00")


async def test_transactions_sync_restarts_on_mutation_and_applies_changes_by_id(
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    operating = plaid.accounts[0]["account_id"]
    # QB-1's payment was first booked short, then corrected; a stray line was withdrawn.
    paid = plaid.add_outflow(operating, "1000.00", "ACH DEBIT FIGMA INC QB-1")
    stray = plaid.add_outflow(operating, "300.00", "ACH DEBIT STRANGER QB-5")
    plaid.modify(paid, "1440.00")
    plaid.remove(stray)
    plaid.mutate_during_pagination = 1
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    by_id = {i.invoice_id: i for i in (await observe(db, tenant)).invoices}
    assert by_id["140"].amount_paid == Decimal("1440.00")
    assert by_id["144"].amount_paid == Decimal("0")
    # Paging restarted from the cursor it began with, once, after the mutation.
    assert plaid.sync_requests[:3] == ["", "2", ""]


async def test_a_sync_past_its_page_bound_is_retryable(
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    operating = plaid.accounts[0]["account_id"]
    for n in range(50 * plaid.page_size):
        plaid.add_outflow(operating, "1.00", f"CARD {n}")
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    with pytest.raises(ApplicationError, match="more than 50 pages") as raised:
        await observe(db, tenant)
    assert raised.value.type == "ProviderUnavailable" and not raised.value.non_retryable
    # What the bounded read reached was stored: the next one goes on from there, and sees all.
    asked = len(plaid.sync_requests)
    await observe(db, tenant)
    assert plaid.sync_requests[asked] == str(50 * plaid.page_size)
    async with db.tenant(tenant) as conn:
        stored = await plaid_cursors.load(conn, tenant, "item-standin")
    assert (stored.cursor, len(stored.transactions)) == (str(len(plaid.changes)), 103)


async def test_the_sync_goes_on_from_the_cursor_stored_for_the_tenant_and_item(
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    first = await observe(db, tenant)
    assert plaid.sync_requests[0] == ""
    reached = str(len(plaid.changes))
    async with db.tenant(tenant) as conn:
        stored = await plaid_cursors.load(conn, tenant, "item-standin")
    assert stored.cursor == reached and len(stored.transactions) == 3

    operating = plaid.accounts[0]["account_id"]
    coffee = next(t["transaction_id"] for t in plaid.transactions if t["name"] == "COFFEE")
    plaid.remove(coffee)
    plaid.add_outflow(operating, "1440.00", "ACH DEBIT FIGMA INC QB-1")
    asked = len(plaid.sync_requests)
    second = await observe(db, tenant)
    # Only the changes since the stored cursor were asked for, and applied to what it held.
    assert plaid.sync_requests[asked] == reached
    assert len(plaid.sync_requests) == asked + 1
    by_id = {i.invoice_id: i for i in second.invoices}
    assert by_id["140"].amount_paid == Decimal("1440.00")
    assert by_id["142"].amount_paid == Decimal("500.00"), "kept from the stored state"
    assert {i.invoice_id for i in first.invoices} == set(by_id)
    async with db.tenant(tenant) as conn:
        after = await plaid_cursors.load(conn, tenant, "item-standin")
    assert coffee not in after.transactions and len(after.transactions) == 3


async def test_a_bank_line_pays_a_bill_only_by_its_exact_number_and_amount(
    books: Books,
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    figma = qbo.vendors[0]["Id"]
    ten = qbo.add_bill("QB-10", figma, "1440.00")
    operating = plaid.accounts[0]["account_id"]
    plaid.add_outflow(operating, "1440.00", "ACH DEBIT FIGMA INC QB-10")
    plaid.add_outflow(operating, "450.00", "ACH DEBIT BLUEBIRD QB-4")  # not the bill's amount
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    by_id = {i.invoice_id: i for i in (await observe(db, tenant)).invoices}
    assert by_id[ten].amount_paid == Decimal("1440.00")
    assert by_id["140"].amount_paid == Decimal("0"), "QB-10's payment is not QB-1's"
    assert by_id["143"].amount_paid == Decimal("0")
    assert by_id["142"].amount_paid == Decimal("500.00")


async def test_a_worker_killed_after_the_bill_payment_was_sent_records_one(
    client: Client, admin_dsn: str, books: Books
) -> None:
    db, tenant, qbo, plaid, mt_verifies = books
    queue = f"charter-kill-{uuid.uuid4().hex[:8]}"
    await real_books(db, tenant, qbo, plaid, mt_verifies, books_write=True)
    qbo.hang_bill_payment_answers = 1
    async with worker_process(client, admin_dsn, queue) as first:
        handle = await start(client, tenant, "payables", focus=["140"], task_queue=queue)
        await asyncio.wait_for(qbo.bill_payment_applied.wait(), timeout=60)
        os.kill(first.pid, signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    # Paid, and the BillPayment made at Intuit; Charter holds only its intent.
    assert len(mt_verifies.payment_orders) == 1 and len(qbo.bill_payments) == 1
    assert len(await _entries(db, tenant, BILL_PAYMENT_INTENT)) == 1
    assert await _entries(db, tenant, BILL_PAYMENT_RECORDED) == []

    async with worker_process(client, admin_dsn, queue):
        # The killed attempt times out (start-to-close) and the retry lands here.
        result = await asyncio.wait_for(handle.result(), timeout=180)
    (ps,) = result.proposals
    assert ps.status == "executed" and ps.action is not None
    assert ps.action.status == "already_executed"
    # The retry sent the same requestid: Intuit answered the BillPayment it had made.
    assert len(qbo.bill_payments) == 1 and qbo.bill("140")["Balance"] == 0
    (recorded,) = await _entries(db, tenant, BILL_PAYMENT_RECORDED)
    assert recorded["bill_payment_id"] == qbo.bill_payments[0]["Id"]
    assert len(mt_verifies.payment_orders) == 1


async def test_a_payment_the_books_cannot_record_is_told_to_the_tenant(
    client: Client, books: Books
) -> None:
    """Paid with read-only QuickBooks credentials: the money moved, the BillPayment is
    missing, and the tenant's channel hears it with what to run."""
    db, tenant, qbo, plaid, mt_verifies = books
    await real_books(db, tenant, qbo, plaid, mt_verifies)
    told = Told()
    queue = f"books-told-{uuid.uuid4().hex[:6]}"
    deps = Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner(), notifier=told)
    async with build_worker(client, deps, queue):
        handle = await start(client, tenant, "payables", focus=["140"], task_queue=queue)
        (ps,) = (await asyncio.wait_for(handle.result(), timeout=60)).proposals
    assert ps.status == "executed" and ps.action is not None, ps.failure
    [alert] = [a for a in told.alerts if a.tenant_id == tenant]
    assert alert.text.startswith(f"bill 140 is paid ({ps.action.connector_reference}) but")
    assert "no QuickBooks write credential" in alert.text
    assert "charter actions reconcile" in alert.text
