"""Configuration from the environment (and an optional `.env`), via pydantic-settings.

`TEMPORAL_ADDRESS` and `DATABASE_URL` keep their conventional names; everything else is
prefixed `CHARTER_`. When either is unset, Charter starts its embedded counterpart.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHARTER_", env_file=".env", extra="ignore")

    temporal_address: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_ADDRESS", "CHARTER_TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = "default"
    task_queue: str = "charter"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "CHARTER_DATABASE_URL"),
        description="Administrator connection, used only for migrations and demo seeding.",
    )
    app_database_url: str | None = Field(
        default=None, description="Application-role connection; derived from DATABASE_URL if unset."
    )
    app_db_password: SecretStr | None = None

    state_dir: Path = Path(".charter")
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 seed (32 bytes, base64) signing audit checkpoints; never stored in "
        "the database. Default: a key file in the state directory, created with mode 0600.",
    )
    audit_checkpoints: Path | None = Field(
        default=None, description="JSON Lines file of signed audit checkpoints."
    )
    decision_timeout: timedelta = timedelta(days=7)
    reminder_interval: timedelta = timedelta(days=1)

    @property
    def audit_signing_key_file(self) -> Path:
        return self.state_dir / "audit-signing.key"

    @property
    def audit_checkpoints_file(self) -> Path:
        return self.audit_checkpoints or self.state_dir / "audit-checkpoints.jsonl"

    @property
    def temporal_ui_url(self) -> str:
        return f"http://localhost:{self.temporal_ui_port}"


def app_dsn(admin_dsn: str, password: SecretStr | None = None) -> str:
    """The same server and database, as the application role `charter_app`."""
    parts = urlsplit(admin_dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = "charter_app" + (f":{password.get_secret_value()}" if password else "")
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def redact_dsn(dsn: str) -> str:
    parts = urlsplit(dsn)
    if "@" not in parts.netloc:
        return dsn
    creds, host = parts.netloc.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))
