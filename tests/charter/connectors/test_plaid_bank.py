"""Plaid read as Plaid documents it, through plaid-python against the stand-in: cash only
from depository accounts, in their own currency, spendable where Plaid knows it; the
transactions synced from a stored cursor, by transaction id, started again when they change
during a pagination, and a long backlog carried over to the next read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr

from charter.connectors.base import ProviderUnavailable
from charter.connectors.payables import bank_paid
from charter.connectors.plaid import BankTransaction, PlaidBank, PlaidSettings
from charter.connectors.plaid.feed import StoredFeed
from charter.storage import Database
from charter.storage.credential_vault import Credential, CredentialInfo, CredentialSecret
from tests.support.standins.plaid import PlaidStandIn
from tests.support.standins.serving import serving


def _credential(connector: str, secret: str) -> Credential:
    now = datetime.now(UTC)
    info = CredentialInfo(
        tenant_id="t",
        credential_id=f"cred-{connector}",
        connector=connector,
        scope="read",
        kind="api_key",
        label=connector,
        kek_version=None,
        created_by="test",
        created_at=now,
        updated_at=now,
        revoked_at=None,
    )
    return Credential(info=info, secret=CredentialSecret(api_key=SecretStr(secret)))


@pytest.fixture
async def bank() -> AsyncIterator[PlaidStandIn]:
    standin = PlaidStandIn()
    async with serving(standin):
        yield standin


def reader(standin: PlaidStandIn, feed: StoredFeed | None = None) -> PlaidBank:
    return PlaidBank(
        PlaidSettings(client_id=standin.client_id, host=standin.base_url),
        _credential("plaid", standin.secret),
        _credential("plaid-item", standin.link()),
        feed,
    )


async def test_cash_is_depository_money_per_currency_and_spendable(bank: PlaidStandIn) -> None:
    bank.add_account("Operating", "10000.00", available="9000.00")  # a hold on 1,000
    bank.add_account("Card", "2500.00", kind="credit", subtype="credit card")  # owed
    bank.add_account("Loan", "84362.00", kind="loan", subtype="student")
    bank.add_account("Berlin", "3000.00", "EUR")
    bank.add_account("Savings", "700.00", available=None)  # Plaid knows no available
    bank.add_account("New", None, available=None)  # nor either balance yet
    accounts, _ = await reader(bank).read()
    assert sorted((a.name, a.currency, a.balance) for a in accounts) == [
        ("Berlin", "EUR", Decimal("3000.0")),
        ("Operating", "USD", Decimal("9000.0")),
        ("Savings", "USD", Decimal("700.0")),
    ]


async def test_lines_are_kept_by_transaction_id_from_a_stored_cursor(
    bank: PlaidStandIn, db: Database, tenant: str
) -> None:
    account = bank.add_account("Operating", "10000.00")
    bank.add_outflow(account, "500.00", "ACH FIGMA QB-3")
    bank.add_outflow(account, "42.17", "COFFEE")
    bank.add_outflow(
        account,
        "1200.00",
        "AWS",
    )
    feed = StoredFeed(db, tenant)
    plaid = reader(bank, feed)
    _, lines = await plaid.read()
    assert sorted(t.amount for t in lines) == [
        Decimal("42.17"),
        Decimal("500.0"),
        Decimal("1200.0"),
    ]
    # A pending payment posts (reported again, modified), the coffee is reversed (removed):
    # the next read asks only for what changed, from where the last one stopped.
    aws = next(t for t in bank.transactions if t["name"] == "AWS")
    bank.modify(aws["transaction_id"], amount=1250.0, pending=False)
    coffee = next(t for t in bank.transactions if t["name"] == "COFFEE")
    bank.remove(coffee["transaction_id"])
    bank.sync_requests.clear()
    _, lines = await plaid.read()
    assert bank.sync_requests[0] == "3"  # the stored cursor, not the first page
    assert sorted((t.description, t.amount) for t in lines) == [
        ("ACH FIGMA QB-3", Decimal("500.0")),
        ("AWS", Decimal("1250.0")),
    ]
    # Another reader of the same tenant (another worker) goes on from the same cursor.
    bank.sync_requests.clear()
    _, again = await reader(bank, StoredFeed(db, tenant)).read()
    assert len(again) == 2


async def test_a_pagination_the_data_changed_under_is_started_again(bank: PlaidStandIn) -> None:
    account = bank.add_account("Operating", "10000.00")
    for n in range(5):
        bank.add_outflow(account, f"{n + 1}.00", f"LINE {n}")
    bank.mutations = 1
    _, lines = await reader(bank).read()
    assert len(lines) == 5
    # The first page twice: the pagination began again from its first cursor.
    assert bank.sync_requests.count("") == 2
    bank.mutations = 10
    with pytest.raises(ProviderUnavailable, match="changed during each of 3 paginations"):
        await reader(bank).read()


async def test_a_backlog_longer_than_a_read_goes_on_at_the_next(
    bank: PlaidStandIn, db: Database, tenant: str
) -> None:
    account = bank.add_account("Operating", "10000.00")
    bank.page_size = 1
    for n in range(55):
        bank.add_outflow(account, "1.00", f"LINE {n}")
    plaid = reader(bank, StoredFeed(db, tenant))
    with pytest.raises(ProviderUnavailable, match="more than 50 pages"):
        await plaid.read()
    _, lines = await plaid.read()
    assert len(lines) == 55


@pytest.mark.parametrize(
    ("description", "amount", "counts"),
    [
        ("ACH DEBIT ACME INV-1", "100.00", True),
        ("INV-1: design work", "100.00", True),
        ("ACH DEBIT ACME INV-10", "100.00", False),
        ("ACH DEBIT ACME INV-1042", "100.00", False),
        ("ACH DEBIT ACME INV-1-A", "100.00", False),
        ("XINV-1", "100.00", False),
        ("ACH DEBIT ACME INV-1", "99.99", False),  # another amount: not this bill's payment
    ],
)
def test_a_bank_line_pays_a_bill_only_by_its_exact_reference_and_amount(
    description: str, amount: str, counts: bool
) -> None:
    line = BankTransaction(
        transaction_id="tx",
        account_id="acc",
        amount=Decimal(amount),
        currency="USD",
        description=description,
        on=datetime.now(UTC).date(),
        pending=False,
    )
    paid = bank_paid([line], "INV-1", Decimal("100.00"), "USD")
    assert paid == (Decimal(amount) if counts else Decimal(0))
    assert bank_paid([line], "INV-1", Decimal("100.00"), "EUR") == 0
