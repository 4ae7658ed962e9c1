"""`charter rates set|list`: the exchange rates a tenant's limits convert other currencies with.

A limit is in one currency; a payment or a day's spend in another counts against it at the
tenant's rate, as the run's observation recorded it. A currency without a rate (or with one
quoted more than a week before the observation) cannot be counted, so a proposal that would
need it goes to a human. Rates are the owner's to set, like the law.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from charter.services import exchange_rates
from charter_cli._arguments import add_json, add_member, add_tenant
from charter_cli._common import CliError, admin_dsn, as_cli_errors, console, print_json
from charter_cli._registration import Subcommands, command, command_group
from schemas import ExchangeRate


def register(sub: Subcommands) -> None:
    group = command_group(
        sub, "rates", help="the exchange rates limits convert other currencies with"
    )
    put = command(group, "set", cmd_set)
    put.add_argument("currency", help="the currency quoted, e.g. EUR")
    put.add_argument("rate", help="what one unit of it is worth in --base, e.g. 1.0850")
    put.add_argument("--base", default="USD", help="the currency it is quoted in (default USD)")
    put.add_argument("--source", required=True, help="who quoted it, e.g. ecb or treasury")
    put.add_argument("--as-of", help="when it was quoted, ISO 8601 (default now)")
    add_tenant(put)
    add_member(put, "member", "the member setting it: must be an active owner of the tenant")

    listing = command(group, "list", cmd_list)
    add_tenant(listing)
    add_json(listing)


def _rate(args: argparse.Namespace, now: datetime) -> ExchangeRate:
    try:
        value = Decimal(args.rate)
    except InvalidOperation:
        raise CliError(f"rate {args.rate!r} is not a number, e.g. 1.0850") from None
    try:
        as_of = datetime.fromisoformat(args.as_of) if args.as_of else now
    except ValueError:
        raise CliError(f"--as-of {args.as_of!r} is not an ISO 8601 instant") from None
    try:
        return ExchangeRate(
            currency=args.currency,
            base=args.base,
            rate=value,
            source=args.source,
            as_of=as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC),
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise CliError(f"{problem['loc'][0]}: {problem['msg']}") from None


async def cmd_set(args: argparse.Namespace) -> int:
    """set what one unit of a currency is worth in another (owners only, audited)"""
    now = datetime.now(UTC)
    rate = _rate(args, now)
    if rate.currency == rate.base:
        raise CliError(f"{rate.currency} is quoted in itself; give another --base")
    dsn = await admin_dsn(args, "rates set")
    with as_cli_errors(exchange_rates.RateRefused):
        await exchange_rates.set_rate(dsn, args.tenant, rate, by=args.member, now=now)
    console.print(
        f"{args.tenant}: 1 {rate.currency} = {rate.rate} {rate.base} "
        f"({rate.source}, {rate.as_of.isoformat()})"
    )
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    """the tenant's exchange rates, with their source and when they were quoted"""
    rates = await exchange_rates.listing(await admin_dsn(args, "rates list"), args.tenant)
    if args.json:
        print_json([r.model_dump(mode="json") for r in rates])
        return 0
    table = Table("currency", "base", "rate", "source", "as of")
    for r in rates:
        table.add_row(
            *(Text(v) for v in (r.currency, r.base, str(r.rate), r.source, r.as_of.isoformat()))
        )
    console.print(table)
    return 0
