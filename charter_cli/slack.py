"""`charter slack` (run the Slack app) and `charter slack configure` (a tenant's channel)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from importlib import resources

import yaml
from pydantic import TypeAdapter, ValidationError

from charter.crypto import statements
from charter.crypto.codec import default_payload_keyring
from charter.crypto.providers import default_key_provider, require_configured_keys
from charter.services import slack_setup
from charter.slack.app import build_app
from charter.slack.config import SlackConfigError, SlackSettings
from charter.slack.server import serve
from charter.storage import slack_cards as store
from charter.storage.key_canaries import check_key_canaries
from charter_cli._arguments import add_tenant
from charter_cli._common import (
    CliError,
    as_cli_errors,
    connected,
    console,
    session,
    stack_for,
    stop_on_signals,
)
from charter_cli._registration import Subcommands, command


def register(sub: Subcommands) -> None:
    # The one group whose action may be left out: `charter slack` alone serves.
    slack = sub.add_parser(
        "slack",
        help="run the Slack app (exception cards and decisions), or configure a tenant",
        description="Without an action: start the Slack app over HTTP or Socket Mode, as "
        "CHARTER_SLACK_MODE says (see README, 'Deciding in Slack').",
    )
    slack.set_defaults(func=cmd_serve)
    slack_sub = slack.add_subparsers(dest="slack_command", metavar="ACTION")
    command(slack_sub, "serve", cmd_serve)
    configure = command(slack_sub, "configure", cmd_configure)
    add_tenant(configure)
    configure.add_argument("--channel", required=True, help="channel id, e.g. C0123ABCD")
    configure.add_argument("--team", help="Slack workspace id (T…); clicks from others are refused")
    configure.add_argument("--backup", metavar="MEMBER", help="backup approver (a member id)")
    configure.add_argument(
        "--backup-after",
        metavar="DURATION",
        help="ISO 8601 duration (PT4H, P1D) before the backup approver is called in",
    )
    where = command(slack_sub, "manifest", cmd_manifest).add_mutually_exclusive_group()
    where.add_argument("--url", help="public HTTPS URL of the Slack endpoint (…/slack/events)")
    where.add_argument("--socket", action="store_true", help="Socket Mode: no public URL")


def cmd_manifest(args: argparse.Namespace) -> int:
    """print the Slack app manifest (paste it into api.slack.com/apps)

    The app manifest in charter/slack/manifest.yaml, with your request URL or switched to
    Socket Mode.
    """
    document = yaml.safe_load(
        (resources.files("charter.slack") / "manifest.yaml").read_text(encoding="utf-8")
    )
    interactivity = document["settings"]["interactivity"]
    if args.socket:
        document["settings"]["socket_mode_enabled"] = True
        interactivity.pop("request_url", None)
    elif args.url:
        if not args.url.startswith("https://"):
            raise CliError("--url must be an https:// URL (Slack only calls HTTPS endpoints)")
        interactivity["request_url"] = args.url
    print(yaml.safe_dump(document, sort_keys=False), end="")
    return 0


def _duration(text: str) -> timedelta:
    try:
        return TypeAdapter(timedelta).validate_python(text)
    except ValidationError:
        raise CliError(f"--backup-after {text!r} is not a duration (try PT4H or P1D)") from None


async def cmd_configure(args: argparse.Namespace) -> int:
    """set a tenant's Slack channel and backup approver

    Where the tenant's exception cards go, and who is called in when nobody decides within
    --backup-after.
    """
    if (args.backup is None) != (args.backup_after is None):
        raise CliError("--backup and --backup-after go together")
    try:
        config = store.SlackTenantConfig(
            tenant_id=args.tenant,
            channel_id=args.channel,
            team_id=args.team,
            backup_member_id=args.backup,
            backup_after=_duration(args.backup_after) if args.backup_after else None,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise CliError(f"invalid {error['loc'][0]}: {error['msg']}") from None
    async with connected(args, temporal=False) as s:
        with as_cli_errors(slack_setup.BackupRefused):
            await slack_setup.configure(s.db, config)
    console.print(f"[green]{args.tenant}[/]: exception cards go to {config.channel_id}")
    return 0


async def cmd_serve(args: argparse.Namespace) -> int:
    """start the Slack app (the default)"""
    slack = SlackSettings()
    with as_cli_errors(SlackConfigError):
        slack.check_for_app()
    settings, stack = await stack_for(args)
    require_configured_keys(settings)
    stop = stop_on_signals()
    async with session(settings, stack) as s:
        assert s.client is not None
        # Refuse keys the workers do not share before taking a single decision.
        await check_key_canaries(
            s.db, default_payload_keyring(settings), default_key_provider(settings)
        )
        front_door = statements.front_door_key("slack", settings.member_key_folder)
        bolt = build_app(slack, s.db, s.client, front_door=front_door)
        where = (
            "Socket Mode"
            if slack.mode == "socket"
            else f"http://{slack.host}:{slack.port}{slack.path}"
        )
        console.print(f"[green]Slack app running[/] ({where}); Ctrl-C to stop")
        await serve(bolt, slack, stop)
    return 0
