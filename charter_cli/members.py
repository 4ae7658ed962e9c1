"""`charter members add|list|roles|revoke|set-slack|enroll|front-door`: who may decide, and their keys.

Membership and keys are administration: every command here runs as the owner role on the
administrator connection, never as the application role (which can read public keys, never
write one). `enroll` keeps the private key on this machine, readable by its owner only.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from charter.crypto.statements import front_door_key, key_dir
from charter.governance.approvals import APPROVER_ROLES
from charter.services import proofs
from charter.storage import audit_trail, member_keys, roster
from charter.storage.member_keys import owner_tenant
from charter_cli._common import CliError, add_json, add_tenant, console, print_json, stack_for

#: A role is a name the constitution's rules may ask for; these two may decide at all.
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("members", help="add, list and revoke members; enrol signing keys")
    actions = group.add_subparsers(dest="members_command", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="add a member of a tenant")
    add_tenant(add)
    add.add_argument("member_id")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument(
        "--roles",
        default="approver",
        help="comma-separated (approver, owner, viewer, or a role the constitution names)",
    )
    add.add_argument("--slack", default=None, help="the member's Slack user id")
    add.add_argument("--as", dest="actor", default="cli", help="who is adding (audited)")
    add.set_defaults(func=cmd_add)

    lst = actions.add_parser("list", help="members, roles, Slack ids and keys")
    add_tenant(lst)
    add_json(lst)
    lst.set_defaults(func=cmd_list)

    roles = actions.add_parser("roles", help="replace a member's roles")
    add_tenant(roles)
    roles.add_argument("member_id")
    roles.add_argument("roles", help="comma-separated")
    roles.add_argument("--as", dest="actor", default="cli", help="who is changing it (audited)")
    roles.set_defaults(func=cmd_roles)

    revoke = actions.add_parser(
        "revoke",
        help="deactivate a member and revoke their keys",
        description="With --for-cause (a lost or stolen key), nothing the member's keys ever "
        "signed counts any more; without it, statements signed before now still verify.",
    )
    add_tenant(revoke)
    revoke.add_argument("member_id", nargs="?", help="the member (omit with --key)")
    revoke.add_argument("--key", metavar="KEY_ID", help="revoke one key (a front door's too)")
    revoke.add_argument("--for-cause", action="store_true")
    revoke.add_argument("--keys-only", action="store_true", help="keep the membership")
    revoke.add_argument("--reason", default="")
    revoke.add_argument("--as", dest="actor", default="cli", help="who is revoking (audited)")
    revoke.set_defaults(func=cmd_revoke)

    slack = actions.add_parser("set-slack", help="set (or clear with '') a member's Slack id")
    add_tenant(slack)
    slack.add_argument("member_id")
    slack.add_argument("slack_user_id")
    slack.add_argument("--as", dest="actor", default="cli", help="who is changing it (audited)")
    slack.set_defaults(func=cmd_set_slack)

    enroll = actions.add_parser(
        "enroll",
        help="create a signing key pair for a member on this machine",
        description="Writes the private key (mode 0600) under CHARTER_MEMBER_KEY_DIR or the "
        "user's config directory and registers the public key. `charter decide --as` signs "
        "with it.",
    )
    add_tenant(enroll)
    enroll.add_argument("member_id")
    enroll.add_argument("--as", dest="actor", default="cli", help="who is enrolling (audited)")
    enroll.set_defaults(func=cmd_enroll)

    door = actions.add_parser(
        "front-door",
        help="register this machine's front-door key (the Slack app's) for a tenant",
        description="The front door signs decisions on behalf of the member its user maps to; "
        "they count only for a member whose registered id there matches.",
    )
    add_tenant(door)
    door.add_argument("name", choices=["slack"])
    door.add_argument("--as", dest="actor", default="cli", help="who is registering (audited)")
    door.set_defaults(func=cmd_front_door)


def _roles(text: str) -> list[str]:
    roles = sorted({r.strip() for r in text.split(",") if r.strip()})
    bad = [r for r in roles if not _ROLE.match(r)]
    if bad or not roles:
        raise CliError(
            f"invalid role {', '.join(bad) or '(none)'}: lower-case names, comma-separated"
        )
    return roles


async def _admin_dsn(args: argparse.Namespace) -> str:
    _, stack = await stack_for(args)
    if stack.admin_dsn is None:
        # Keys and memberships are the owner's to change, never the application role's.
        raise CliError("members commands need the administrator's DATABASE_URL")
    return stack.admin_dsn


async def cmd_add(args: argparse.Namespace) -> int:
    roles = _roles(args.roles)
    async with owner_tenant(await _admin_dsn(args), args.tenant) as conn:
        if not await roster.add(
            conn,
            args.tenant,
            args.member_id,
            display_name=args.name,
            roles=roles,
            slack_user_id=args.slack,
        ):
            raise CliError(f"{args.member_id!r} is already an active member of {args.tenant!r}")
        await audit_trail.append(
            conn,
            args.tenant,
            "member_added",
            {"member_id": args.member_id, "roles": roles, "slack_user_id": args.slack},
            actor=f"cli:{args.actor}",
        )
    console.print(f"added {args.member_id} ({', '.join(roles)}) to {args.tenant}")
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    async with owner_tenant(await _admin_dsn(args), args.tenant) as conn:
        rows = await roster.listing(conn, args.tenant)
        keys = await member_keys.listed(conn, args.tenant)
    if args.json:
        print_json(_listing_json(rows, keys))
        return 0
    table = Table("member", "name", "roles", "slack", "active", "keys")
    for r in rows:
        mine = [
            k.key_id + (" (revoked)" if k.revoked_at else "")
            for k in keys
            if k.member_id == r["member_id"]
        ]
        roles = list(r["roles"])  # type: ignore[call-overload]
        # Text, not markup: names are typed by people and shown verbatim.
        table.add_row(
            *(
                Text(v)
                for v in (
                    str(r["member_id"]),
                    str(r["display_name"]),
                    ", ".join(roles),
                    str(r["slack_user_id"] or ""),
                    "yes" if r["active"] else "no",
                    ", ".join(mine) or ("-" if set(roles) & set(APPROVER_ROLES) else ""),
                )
            )
        )
    for k in keys:
        if k.kind == "front_door":
            state = " (revoked)" if k.revoked_at else ""
            table.add_row(Text(f"({k.front_door} front door)"), "", "", "", "", k.key_id + state)
    console.print(table)
    return 0


def _key_json(key: member_keys.MemberKey) -> dict[str, Any]:
    # Public keys only ever, and the ids that name them.
    return {
        "key_id": key.key_id,
        "public_key": key.public_key,
        "registered_at": key.registered_at,
        "revoked_at": key.revoked_at,
        "revoked_for_cause": key.revoked_for_cause,
    }


def _listing_json(rows: Sequence[Mapping[str, Any]], keys: list[member_keys.MemberKey]) -> Any:
    return {
        "members": [
            {
                "member_id": r["member_id"],
                "display_name": r["display_name"],
                "roles": list(r["roles"]),
                "slack_user_id": r["slack_user_id"],
                "active": r["active"],
                "keys": [_key_json(k) for k in keys if k.member_id == r["member_id"]],
            }
            for r in rows
        ],
        "front_doors": [
            {"front_door": k.front_door, **_key_json(k)} for k in keys if k.kind == "front_door"
        ],
    }


async def cmd_roles(args: argparse.Namespace) -> int:
    roles = _roles(args.roles)
    async with owner_tenant(await _admin_dsn(args), args.tenant) as conn:
        if not await roster.set_roles(conn, args.tenant, args.member_id, roles):
            raise CliError(f"no member {args.member_id!r} in {args.tenant!r}")
        await audit_trail.append(
            conn,
            args.tenant,
            "member_roles_set",
            {"member_id": args.member_id, "roles": roles},
            actor=f"cli:{args.actor}",
        )
    console.print(f"{args.member_id}: {', '.join(roles)}")
    return 0


async def cmd_set_slack(args: argparse.Namespace) -> int:
    slack_id = args.slack_user_id.strip() or None
    async with owner_tenant(await _admin_dsn(args), args.tenant) as conn:
        if not await roster.set_slack(conn, args.tenant, args.member_id, slack_id):
            raise CliError(f"no member {args.member_id!r} in {args.tenant!r}")
        await audit_trail.append(
            conn,
            args.tenant,
            "member_slack_set",
            {"member_id": args.member_id, "slack_user_id": slack_id},
            actor=f"cli:{args.actor}",
        )
    console.print(f"{args.member_id}: Slack id {slack_id or '(none)'}")
    return 0


async def cmd_revoke(args: argparse.Namespace) -> int:
    if (args.member_id is None) == (args.key is None):
        raise CliError("name a member, or a key with --key")
    async with owner_tenant(await _admin_dsn(args), args.tenant) as conn:
        revoked = await member_keys.revoke(
            conn,
            args.tenant,
            member_id=args.member_id,
            key_id=args.key,
            for_cause=args.for_cause,
            reason=args.reason,
        )
        deactivated = (
            args.member_id is not None
            and not args.keys_only
            and await roster.deactivate(conn, args.tenant, args.member_id)
        )
        if not revoked and not deactivated:
            who = args.member_id or args.key
            raise CliError(f"no active member or key {who!r} in {args.tenant!r}")
        await audit_trail.append(
            conn,
            args.tenant,
            "member_revoked",
            {
                "member_id": args.member_id,
                "keys": revoked,
                "for_cause": args.for_cause,
                "deactivated": deactivated,
                "reason": args.reason,
            },
            actor=f"cli:{args.actor}",
        )
    cause = " for cause" if args.for_cause else ""
    console.print(
        f"revoked{cause}: {args.member_id or args.key}"
        + (" (membership kept)" if args.keys_only else "")
        + (f"; keys {', '.join(revoked)}" if revoked else "; no active key")
    )
    return 0


async def cmd_enroll(args: argparse.Namespace) -> int:
    async with owner_tenant(await _admin_dsn(args), args.tenant) as conn:
        try:
            key_id = await proofs.enroll(
                conn, args.tenant, args.member_id, registered_by=f"cli:{args.actor}"
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
        await audit_trail.append(
            conn,
            args.tenant,
            "member_key_registered",
            {"member_id": args.member_id, "key_id": key_id},
            actor=f"cli:{args.actor}",
        )
    console.print(
        f"enrolled {args.member_id} in {args.tenant}: key {key_id}; private key in {key_dir()}"
    )
    return 0


async def cmd_front_door(args: argparse.Namespace) -> int:
    key = front_door_key(args.name)
    async with owner_tenant(await _admin_dsn(args), args.tenant) as conn:
        try:
            key_id = await proofs.enroll_front_door(
                conn, args.tenant, args.name, key, registered_by=f"cli:{args.actor}"
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
        await audit_trail.append(
            conn,
            args.tenant,
            "front_door_key_registered",
            {"front_door": args.name, "key_id": key_id},
            actor=f"cli:{args.actor}",
        )
    console.print(f"registered the {args.name} front door for {args.tenant}: key {key_id}")
    return 0
