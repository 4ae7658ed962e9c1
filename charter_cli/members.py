"""`charter members add|list|roles|revoke|set-slack|enroll|front-door`: who may decide, and their keys.

Membership and keys are administration: every command here runs as the owner role on the
administrator connection, never as the application role (which can read public keys, never
write one), through `charter.services.membership` and `charter.services.key_enrolment`.
`enroll` keeps the private key on this machine, readable by its owner only.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from rich.table import Table
from rich.text import Text

from charter.config.settings import Settings
from charter.crypto.statements import front_door_key
from charter.governance.approvals import APPROVER_ROLES
from charter.services import key_enrolment, membership
from charter.storage.member_keys import MemberKey
from charter.web.config import WebSettings
from charter_cli._arguments import add_actor, add_json, add_tenant
from charter_cli._common import CliError, admin_dsn, as_cli_errors, console, print_json
from charter_cli._registration import Subcommands, command, command_group

T = TypeVar("T")

#: A role is a name the constitution's rules may ask for; these two may decide at all.
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def register(sub: Subcommands) -> None:
    actions = command_group(sub, "members", help="add, list and revoke members; enrol signing keys")
    _register_roster(actions)
    _register_keys(actions)


def _register_roster(actions: Subcommands) -> None:
    add = command(actions, "add", cmd_add)
    add_tenant(add)
    add.add_argument("member_id")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument(
        "--roles",
        default="approver",
        help="comma-separated (approver, owner, viewer, or a role the constitution names)",
    )
    add.add_argument("--slack", default=None, help="the member's Slack user id")
    add_actor(add, "adding")

    lst = command(actions, "list", cmd_list)
    add_tenant(lst)
    add_json(lst)

    roles = command(actions, "roles", cmd_roles)
    add_tenant(roles)
    roles.add_argument("member_id")
    roles.add_argument("roles", help="comma-separated")
    add_actor(roles, "changing it")

    revoke = command(actions, "revoke", cmd_revoke)
    add_tenant(revoke)
    revoke.add_argument("member_id", nargs="?", help="the member (omit with --key)")
    revoke.add_argument("--key", metavar="KEY_ID", help="revoke one key (a front door's too)")
    revoke.add_argument("--for-cause", action="store_true")
    revoke.add_argument("--keys-only", action="store_true", help="keep the membership")
    revoke.add_argument("--reason", default="")
    add_actor(revoke, "revoking")

    slack = command(actions, "set-slack", cmd_set_slack)
    add_tenant(slack)
    slack.add_argument("member_id")
    slack.add_argument("slack_user_id")
    add_actor(slack, "changing it")


def _register_keys(actions: Subcommands) -> None:
    enroll = command(actions, "enroll", cmd_enroll)
    add_tenant(enroll)
    enroll.add_argument("member_id")
    add_actor(enroll, "enrolling")

    invite = command(actions, "invite-passkey", cmd_invite_passkey)
    add_tenant(invite)
    invite.add_argument("member_id")
    invite.add_argument(
        "--hours", type=int, default=24, help="how long the link stays usable (1 to 168)"
    )
    add_actor(invite, "inviting")

    door = command(actions, "front-door", cmd_front_door)
    add_tenant(door)
    door.add_argument("name", choices=["slack"])
    add_actor(door, "registering")


def _roles(text: str) -> list[str]:
    roles = sorted({r.strip() for r in text.split(",") if r.strip()})
    bad = [r for r in roles if not _ROLE.match(r)]
    if bad or not roles:
        raise CliError(
            f"invalid role {', '.join(bad) or '(none)'}: lower-case names, comma-separated"
        )
    return roles


async def _admin_dsn(args: argparse.Namespace) -> str:
    # Keys and memberships are the owner's to change, never the application role's.
    return await admin_dsn(args, "members commands")


def _actor(args: argparse.Namespace) -> str:
    """Who changed the roster, as the audit trail records it."""
    return f"cli:{args.actor}"


async def _as_owner(
    args: argparse.Namespace, change: Callable[..., Awaitable[T]], *values: Any, **options: Any
) -> T:
    """`change(admin_dsn, tenant, *values, actor=..., **options)`: a roster or key change
    made on the administrator connection for `--tenant` by `--as`; what the membership and
    key services refuse is the command's one-line error."""
    dsn = await _admin_dsn(args)
    with as_cli_errors(membership.MembershipRefused, key_enrolment.EnrolmentRefused):
        return await change(dsn, args.tenant, *values, actor=_actor(args), **options)


async def cmd_add(args: argparse.Namespace) -> int:
    """add a member of a tenant"""
    roles = _roles(args.roles)
    await _as_owner(
        args,
        membership.add,
        args.member_id,
        display_name=args.name,
        roles=roles,
        slack_user_id=args.slack,
    )
    console.print(f"added {args.member_id} ({', '.join(roles)}) to {args.tenant}")
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    """members, roles, Slack ids and keys"""
    listed = await membership.listing(await _admin_dsn(args), args.tenant)
    rows, keys = listed.members, listed.keys
    if args.json:
        print_json(_listing_json(listed))
        return 0
    table = Table("member", "name", "roles", "slack", "active", "keys")
    for r in rows:
        mine = [
            k.key_id + (" (revoked)" if k.revoked_at else "")
            for k in keys
            if k.member_id == r["member_id"]
        ]
        roles = list(r["roles"])
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


def _key_json(key: MemberKey) -> dict[str, Any]:
    # Public keys only ever, and the ids that name them.
    return {
        "key_id": key.key_id,
        "public_key": key.public_key,
        "registered_at": key.registered_at,
        "revoked_at": key.revoked_at,
        "revoked_for_cause": key.revoked_for_cause,
    }


def _listing_json(listed: membership.Roster) -> Any:
    rows, keys = listed.members, listed.keys
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
    """replace a member's roles"""
    roles = _roles(args.roles)
    await _as_owner(args, membership.set_roles, args.member_id, roles)
    console.print(f"{args.member_id}: {', '.join(roles)}")
    return 0


async def cmd_set_slack(args: argparse.Namespace) -> int:
    """set (or clear with '') a member's Slack id"""
    slack_id = args.slack_user_id.strip() or None
    await _as_owner(args, membership.set_slack, args.member_id, slack_id)
    console.print(f"{args.member_id}: Slack id {slack_id or '(none)'}")
    return 0


async def cmd_revoke(args: argparse.Namespace) -> int:
    """deactivate a member and revoke their keys

    With --for-cause (a lost or stolen key), nothing the member's keys ever signed counts any
    more; without it, statements signed before now still verify.
    """
    if (args.member_id is None) == (args.key is None):
        raise CliError("name a member, or a key with --key")
    revoked = await _as_owner(
        args,
        membership.revoke,
        member_id=args.member_id,
        key_id=args.key,
        for_cause=args.for_cause,
        keys_only=args.keys_only,
        reason=args.reason,
    )
    cause = " for cause" if args.for_cause else ""
    console.print(
        f"revoked{cause}: {args.member_id or args.key}"
        + (" (membership kept)" if args.keys_only else "")
        + (f"; keys {', '.join(revoked.keys)}" if revoked.keys else "; no active key")
    )
    return 0


async def cmd_enroll(args: argparse.Namespace) -> int:
    """create a signing key pair for a member on this machine

    Writes the private key (mode 0600) under CHARTER_MEMBER_KEY_DIR or the user's config
    directory and registers the public key. `charter decide --as` signs with it.
    """
    folder = Settings().member_key_folder
    key_id = await _as_owner(args, key_enrolment.enrol_member, args.member_id, folder=folder)
    console.print(
        f"enrolled {args.member_id} in {args.tenant}: key {key_id}; private key in {folder}"
    )
    return 0


async def cmd_invite_passkey(args: argparse.Namespace) -> int:
    """a one-time link for a member to enrol a passkey in the web inbox

    The owner's invitation, audited; the link is printed once (only its digest is stored)
    and enrols one passkey for this member at CHARTER_WEB_ORIGIN. Revoke a passkey like any
    key: `charter members revoke --key`.
    """
    if not 1 <= args.hours <= 168:
        raise CliError("--hours must be between 1 and 168")
    invitation = await _as_owner(
        args, key_enrolment.invite_passkey, args.member_id, valid_for=timedelta(hours=args.hours)
    )
    link = f"{WebSettings().public_origin()}/t/{args.tenant}/enrol/{invitation.token}"
    console.print(
        f"passkey invitation for {args.member_id} in {args.tenant}, usable once until "
        f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC:"
    )
    print(link)
    return 0


async def cmd_front_door(args: argparse.Namespace) -> int:
    """register this machine's front-door key (the Slack app's) for a tenant

    The front door signs decisions on behalf of the member its user maps to; they count only
    for a member whose registered id there matches.
    """
    key = front_door_key(args.name, Settings().member_key_folder)
    key_id = await _as_owner(args, key_enrolment.register_front_door, args.name, key)
    console.print(f"registered the {args.name} front door for {args.tenant}: key {key_id}")
    return 0
