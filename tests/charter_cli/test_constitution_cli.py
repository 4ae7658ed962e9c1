"""`charter constitution apply|show|history|diff|backtest` and who may make law."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from charter.demo.seed import constitution_source
from charter.governance.constitution import ConstitutionError, content_hash, load_yaml
from charter.services.adoption import NotAnOwner, adopt
from charter.storage import Database, audit_trail, constitution_versions
from charter_cli import build_parser
from charter_cli._common import CliError
from tests.support.owner import as_owner

STRICTER = constitution_source("acme").replace("amount <= 5000.0", "amount <= 3000.0")


async def _versions(db: Database, tenant: str) -> list[int]:
    async with db.tenant(tenant) as conn:
        return [v.version for v in await constitution_versions.history(conn, tenant)]


async def _head(db: Database, tenant: str) -> int:
    async with db.tenant(tenant) as conn:
        return (await audit_trail.head(conn, tenant)).seq


@pytest.mark.parametrize(
    "member",
    ["sam", "leo", "ivy", "nobody"],
    ids=["approver", "viewer", "other-tenant-owner", "unknown"],
)
async def test_only_an_owner_can_apply(
    db: Database, admin_dsn: str, tenant: str, member: str
) -> None:
    before = await _head(db, tenant)
    with pytest.raises(NotAnOwner):
        await adopt(admin_dsn, tenant, STRICTER, by=member)
    assert await _versions(db, tenant) == [1]
    assert await _head(db, tenant) == before


async def test_an_inactive_owner_cannot_apply(db: Database, admin_dsn: str, tenant: str) -> None:
    async with as_owner(db, tenant) as conn:
        await conn.execute(
            "UPDATE charter.members SET active = false WHERE tenant_id = $1 AND member_id = 'maya'",
            tenant,
        )
    with pytest.raises(NotAnOwner):
        await adopt(admin_dsn, tenant, STRICTER, by="maya")
    assert await _versions(db, tenant) == [1]


async def test_invalid_document_changes_nothing(db: Database, admin_dsn: str, tenant: str) -> None:
    before = await _head(db, tenant)
    with pytest.raises(ConstitutionError):
        await adopt(
            admin_dsn, tenant, STRICTER.replace("effect: deny", "effect: forbid"), by="maya"
        )
    assert await _versions(db, tenant) == [1]
    assert await _head(db, tenant) == before


async def test_versions_are_immutable_and_hashed(db: Database, admin_dsn: str, tenant: str) -> None:
    first = await adopt(admin_dsn, tenant, STRICTER, by="maya")
    again = await adopt(admin_dsn, tenant, STRICTER, by="maya")
    assert first.created and not again.created
    assert again.constitution.version == first.constitution.version == 2
    async with db.tenant(tenant) as conn:
        with pytest.raises(Exception, match="permission denied"):
            await conn.execute(
                "UPDATE charter.constitutions SET note = 'x' WHERE tenant_id = $1", tenant
            )


async def _cli(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return int(await args.func(args) or 0)


async def test_cli_round_trip(
    client: Client,
    db: Database,
    admin_dsn: str,
    tenant: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", admin_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "stricter.yaml"
    path.write_text(STRICTER)

    with pytest.raises(CliError, match="not an active owner"):
        await _cli(["constitution", "apply", str(path), "--tenant", tenant, "--as", "sam"])
    assert await _cli(["constitution", "apply", str(path), "--tenant", tenant, "--as", "maya"]) == 0
    assert f"as v2 of {tenant}" in capsys.readouterr().out
    await _cli(["constitution", "apply", str(path), "--tenant", tenant, "--as", "maya"])
    assert "unchanged" in capsys.readouterr().out

    await _cli(["constitution", "history", "--tenant", tenant])
    out = capsys.readouterr().out
    assert "v1" in out and "v2" in out and "member:maya" in out

    await _cli(["constitution", "diff", "1", "2", "--tenant", tenant])
    out = capsys.readouterr().out
    assert "rule allow-verified-vendor-bills" in out and "changed" in out and "3000.0" in out

    await _cli(["constitution", "show", "2", "--tenant", tenant])
    out = capsys.readouterr().out
    assert "v2" in out and "amount <= 3000.0" in out
    # What `show` prints applies again as the very same version.
    header, _, body = out.partition("\n")
    assert content_hash(load_yaml(body)) in header

    with pytest.raises(CliError, match="version 9"):
        await _cli(["constitution", "show", "9", "--tenant", tenant])

    bad = tmp_path / "bad.yaml"
    bad.write_text(STRICTER.replace("applies_to: [run_payroll]", "applies_to: [payrol]"))
    with pytest.raises(CliError, match="unknown action type 'payrol'"):
        await _cli(["constitution", "backtest", str(bad), "--tenant", tenant])
    assert await _cli(["constitution", "backtest", str(path), "--tenant", tenant, "--all"]) == 0
    assert "backtest" in capsys.readouterr().out
    with pytest.raises(CliError, match="--since"):
        await _cli(["constitution", "backtest", str(path), "--tenant", tenant, "--since", "soon"])
