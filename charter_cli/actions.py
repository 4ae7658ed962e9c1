"""`charter actions reconcile`: settle intents whose outcome was never recorded, and flag bills
paid twice; `charter actions cancel-duplicate`: an owner cancels one of a bill's doubled
orders while the provider still allows it."""

from __future__ import annotations

import argparse

from rich.table import Table

from charter.connectors.base import ConnectorError
from charter.services.duplicate_payments import CancelRefused, cancel_duplicate
from charter.services.reconcile import SETTLED, reconcile_tenant
from charter.storage.credential_vault import CredentialVault
from charter.storage.db import TenantRequired, valid_tenant
from charter_cli._arguments import add_json, add_member, add_tenant
from charter_cli._common import admin_dsn, as_cli_errors, connected, console, print_json
from charter_cli._registration import Subcommands, command, command_group


def register(sub: Subcommands) -> None:
    actions = command_group(sub, "actions", help="settle actions whose outcome is unknown")
    reconcile = command(actions, "reconcile", cmd_reconcile)
    add_tenant(reconcile, required=False)
    add_json(reconcile)

    cancel = command(actions, "cancel-duplicate", cmd_cancel_duplicate)
    cancel.add_argument("bill", help="the bill paid twice, e.g. INV-1041")
    cancel.add_argument("order", help="the payment order to cancel (reconcile lists them)")
    add_tenant(cancel)
    add_member(cancel, "member", "the owner deciding it (audited)")


async def cmd_reconcile(args: argparse.Namespace) -> int:
    """ask the providers about every intent without a result, and record what they hold

    For every action intent without a recorded result (a worker killed, a request timed out),
    ask the provider, with a read credential, for a write made under the intent's idempotency
    key; record it if found. A payment made whose bill QuickBooks does not show paid gets
    its BillPayment recorded (with the bills provider's write credential). Exits 1 while
    any intent or BillPayment stays unsettled.
    """
    with as_cli_errors(TenantRequired):
        tenants = [valid_tenant(args.tenant)] if args.tenant else None
    async with connected(args, temporal=False) as s:
        vault = CredentialVault(s.settings)
        readers, books = vault.scoped("read"), vault.scoped("write")
        settled = []
        for tenant in tenants or await s.db.tenant_ids():
            settled.extend(await reconcile_tenant(s.db, tenant, readers, books))
    unsettled = any(r.outcome not in SETTLED for r in settled)
    if args.json:
        print_json(settled)
        return 1 if unsettled else 0
    table = Table(title="action intents without a result", title_justify="left")
    for column in ("tenant", "idempotency key", "workflow", "outcome", "reference", "detail"):
        table.add_column(column, no_wrap=column in ("idempotency key", "reference"))
    for r in settled:
        table.add_row(
            r.tenant_id,
            r.idempotency_key,
            r.workflow_id or "-",
            r.outcome,
            r.reference or "-",
            r.detail,
        )
    console.print(table if settled else "no action intent is without a result")
    return 1 if unsettled else 0


async def cmd_cancel_duplicate(args: argparse.Namespace) -> int:
    """cancel one of a bill's doubled payment orders (owners only, audited)

    Asks the provider first: the order must be one of the bill's live orders, not its only
    one, and not yet sent to the bank. The decision is audited before the provider is asked.
    """
    dsn = await admin_dsn(args, "actions cancel-duplicate")
    async with connected(args, temporal=False) as s:
        vault = CredentialVault(s.settings)
        with as_cli_errors(CancelRefused, ConnectorError):
            done = await cancel_duplicate(
                dsn,
                s.db,
                args.tenant,
                args.bill,
                args.order,
                by=args.member,
                readers=vault.scoped("read"),
                writers=vault.scoped("write"),
            )
    console.print(
        f"{done.order_id} of bill {done.bill}: {done.status}; still paying it: "
        f"{', '.join(done.kept)}"
    )
    return 0
