"""Keys that must exist: outside the development commands, a worker, a starter, the Slack app
and the codec server refuse to start without configured payload keys and KEK — one line,
exit code 2 — and make no keyring of their own. A worker given other keys than the rest
refuses too (the key canaries)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from charter.config.settings import Settings, app_dsn
from charter.crypto.codec import default_payload_keyring
from charter.crypto.keyring import EnvKeyProvider
from charter.crypto.providers import default_key_provider
from charter.storage import Database
from charter.storage.key_canaries import check_key_canaries
from tests.support.paths import REPO
from tests.support.processes import clean_env, run, worker_py


def _without_keys(home: Path, **values: str) -> dict[str, str]:
    env = clean_env(home, CHARTER_STATE_DIR=str(home / "state"), **values)
    for name in ("CHARTER_PAYLOAD_KEYS", "CHARTER_KEK"):
        env.pop(name, None)
    return env


def _refused(code: int, err: str, home: Path) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    # Nothing was made up: no keyring, no token, no state directory at all.
    assert not (home / "state").exists() and not (home / ".charter").exists()
    return lines[0]


async def test_a_worker_refuses_without_keys(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment
) -> None:
    address = env.client.service_client.config.target_host
    child = _without_keys(
        tmp_path, TEMPORAL_ADDRESS=address, CHARTER_APP_DATABASE_URL=app_dsn(admin_dsn)
    )
    code, _, err = await run(child, worker_py(), cwd=tmp_path)
    assert "CHARTER_PAYLOAD_KEYS" in _refused(code, err, tmp_path)
    # Payload keys alone are not enough: the KEK is required too.
    child["CHARTER_PAYLOAD_KEYS"] = os.environ["CHARTER_PAYLOAD_KEYS"]
    code, _, err = await run(child, worker_py(), cwd=tmp_path)
    assert "CHARTER_KEK" in _refused(code, err, tmp_path)


async def test_the_starter_refuses_without_keys(tmp_path: Path, env: WorkflowEnvironment) -> None:
    address = env.client.service_client.config.target_host
    child = _without_keys(tmp_path, TEMPORAL_ADDRESS=address)
    starter = str(REPO / "starter.py")
    code, _, err = await run(child, starter, "acme", "payables", "t-1", cwd=tmp_path)
    line = _refused(code, err, tmp_path)
    assert line.startswith("starter: CHARTER_PAYLOAD_KEYS"), line


async def test_the_slack_app_and_codec_server_refuse_without_keys(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment
) -> None:
    address = env.client.service_client.config.target_host
    child = _without_keys(
        tmp_path,
        TEMPORAL_ADDRESS=address,
        CHARTER_APP_DATABASE_URL=app_dsn(admin_dsn),
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="signing-secret",
    )
    code, out, err = await run(child, "-m", "charter_cli", "slack", "serve", cwd=tmp_path)
    assert "CHARTER_PAYLOAD_KEYS" in _refused(code, out + err, tmp_path)
    code, out, err = await run(child, "-m", "charter_cli", "codec-server", cwd=tmp_path)
    assert "CHARTER_PAYLOAD_KEYS" in _refused(code, out + err, tmp_path)
    # With keys but no token, the codec server refuses rather than make one up.
    child["CHARTER_PAYLOAD_KEYS"] = os.environ["CHARTER_PAYLOAD_KEYS"]
    code, out, err = await run(child, "-m", "charter_cli", "codec-server", cwd=tmp_path)
    assert "CHARTER_CODEC_SERVER_TOKEN" in _refused(code, out + err, tmp_path)


async def test_keys_from_files_and_a_worker_with_other_keys_refuses(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment
) -> None:
    """The session's workers wrote the canaries with its keys; a worker given a payload key
    or a KEK of its own (from files, as a container gets them) refuses to start."""
    address = env.client.service_client.config.target_host
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "payload_keys").write_text(os.environ["CHARTER_PAYLOAD_KEYS"] + "\n")
    (secrets / "kek").write_text(EnvKeyProvider.generate(1) + "\n")  # not the session's
    child = _without_keys(
        tmp_path,
        TEMPORAL_ADDRESS=address,
        CHARTER_APP_DATABASE_URL=app_dsn(admin_dsn),
        CHARTER_PAYLOAD_KEYS_FILE=str(secrets / "payload_keys"),
        CHARTER_KEK_FILE=str(secrets / "kek"),
    )
    await _canaries_written(admin_dsn)
    code, _, err = await run(child, worker_py(), cwd=tmp_path)
    line = _refused(code, err, tmp_path)
    assert "key-encryption key" in line and "canary" in line, line
    (secrets / "kek").write_text(os.environ["CHARTER_KEK"])
    other_payload = base64.b64encode(bytes(range(32))).decode()
    (secrets / "payload_keys").write_text(f"test-1:{other_payload}")  # the id, not the key
    code, _, err = await run(child, worker_py(), cwd=tmp_path)
    line = _refused(code, err, tmp_path)
    assert "payload keys" in line and "canary" in line, line
    # A file that cannot be read is one line too.
    child["CHARTER_KEK_FILE"] = str(secrets / "missing")
    code, _, err = await run(child, worker_py(), cwd=tmp_path)
    assert "CHARTER_KEK_FILE=" in _refused(code, err, tmp_path)


async def _canaries_written(admin_dsn: str) -> None:
    """The canaries as the session's keys write them (what its first worker does)."""
    database = await Database.connect(app_dsn(admin_dsn))
    try:
        settings = Settings()
        await check_key_canaries(
            database, default_payload_keyring(settings), default_key_provider(settings)
        )
    finally:
        await database.close()
