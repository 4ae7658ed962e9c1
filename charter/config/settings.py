"""Configuration from the environment (and an optional `.env`), via pydantic-settings.

`TEMPORAL_ADDRESS` and `DATABASE_URL` keep their conventional names; everything else is
prefixed `CHARTER_`. Temporal's connection (TLS, API key, profiles) is read by
`charter.temporal.connection` from the standard `TEMPORAL_*` variables and profile file.

Development and production differ on purpose: `make demo`, `charter up` and
`charter stack start` start an embedded counterpart for what is unset, and keep development
keys (payload keys, KEK, members' keys) in the state directory; `python worker.py` never
does, and refuses to start without both servers and without configured keys
(`ConfigurationError`).

Every secret setting may be given as a file instead: `CHARTER_KEK_FILE=/run/secrets/kek`
reads `CHARTER_KEK` from that file (the convention of the official PostgreSQL image), so a
container orchestrator's mounted secrets need not become environment variables.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from charter.config.secret_files import SettingsWithSecretFiles

#: The model reasoned on the whole observation, not only on the facts the act re-reads.
DEFAULT_MAX_OBSERVATION_AGE = timedelta(minutes=5)


class ConfigurationError(RuntimeError):
    """Charter cannot run with this configuration. Its message is one line for the operator;
    entry points print it without a traceback and exit with code 2."""


def _period(default: timedelta, description: str, *, at_most: timedelta | None = None) -> Any:
    """A setting that is a positive length of time, at most `at_most` when given."""
    return Field(default=default, gt=timedelta(0), le=at_most, description=description)


class Settings(SettingsWithSecretFiles):
    model_config = SettingsConfigDict(env_prefix="CHARTER_", env_file=".env", extra="ignore")

    development: bool = Field(
        default=False,
        description="set by the development commands (`make demo`, `charter up`, `charter "
        "stack`): keys missing from the configuration are made in the state directory",
    )

    temporal_address: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_ADDRESS", "CHARTER_TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = Field(
        default="default",
        validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "CHARTER_TEMPORAL_NAMESPACE"),
    )
    temporal_profile: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_PROFILE", "CHARTER_TEMPORAL_PROFILE"),
        description="Profile in the Temporal client config file (envconfig's default otherwise).",
    )
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

    # -- operating a worker ----------------------------------------------------------------
    health_port: int | None = Field(
        default=None, description="serve /healthz and /readyz on this port (worker only)"
    )
    health_host: str = "0.0.0.0"
    shutdown_grace: timedelta = Field(
        default=timedelta(seconds=30),
        ge=timedelta(0),
        description="on SIGTERM, how long running activities may take to finish",
    )
    log_format: str = Field(default="text", pattern="^(text|json)$")
    metrics_address: str | None = Field(
        default=None,
        description="host:port of the Prometheus endpoint (Temporal's series and Charter's)",
    )
    open_exceptions_interval: timedelta = _period(
        timedelta(seconds=30),
        "how often the worker recounts open exceptions for the metrics endpoint",
    )
    duplicate_watch_interval: timedelta = _period(
        timedelta(minutes=15),
        "how often the worker lists the payments provider's orders of each bill paid, to find "
        "a bill paid twice",
    )

    state_dir: Path = Path(".charter")
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 seed (32 bytes, base64) signing audit checkpoints; never stored in "
        "the database. Default: a key file in the state directory, created with mode 0600.",
    )
    # A string, not a Path: a Path would fold `s3://bucket` into `s3:/bucket`.
    audit_checkpoints: str | None = Field(
        default=None,
        description="Where signed audit checkpoints are kept: a JSON Lines file path, "
        "file:///path or s3://bucket/prefix.",
    )
    trust_anchors: SecretStr | None = Field(
        default=None,
        description="each tenant's first owner keys, pinned outside the database: JSON "
        '{"<tenant>": ["sha256:<hex>", ...]} (see charter/crypto/anchors.py); usually '
        "CHARTER_TRUST_ANCHORS_FILE naming a mounted file. Production refuses a tenant "
        "without one; development's demo writes one.",
    )
    decision_timeout: timedelta = timedelta(days=7)
    reminder_interval: timedelta = timedelta(days=1)

    # The reasoner. Without an API key the deterministic offline reasoner is used.
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "CHARTER_ANTHROPIC_API_KEY"),
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_BASE_URL", "CHARTER_ANTHROPIC_BASE_URL"),
        description="Another Messages API endpoint (a proxy, a gateway, a test server).",
    )
    model: str = Field(default="claude-sonnet-4-6", min_length=1)
    max_tokens: int = Field(default=4096, ge=256, le=64000)
    reasoner_timeout: timedelta = _period(
        timedelta(seconds=120),
        "Per model request; the reason activity allows two requests (one corrective).",
        at_most=timedelta(minutes=2),
    )
    reasoner_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Attempts at an unavailable model before escalating."
    )
    reasoner_retry_budget: timedelta = _period(
        timedelta(minutes=15),
        "Time spent retrying an unavailable model before escalating.",
        at_most=timedelta(hours=2),
    )
    max_send_backs: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Times one proposal may be sent back to humans at execution (its facts "
        "moved) before it closes as facts_unstable.",
    )
    max_observation_age: timedelta = _period(
        DEFAULT_MAX_OBSERVATION_AGE,
        "An autonomous action whose observation (and so verdict) is older than "
        "this when it would execute goes to a human instead, with the facts re-read.",
    )

    # -- capacity: the pool, the worker's activities and the providers' bulkheads, together
    db_pool_size: int = Field(
        default=20, ge=2, le=1000, description="Connections in the worker's PostgreSQL pool."
    )
    max_concurrent_activities: int = Field(
        default=100, ge=1, le=10000, description="Activities the worker runs at once."
    )
    provider_in_flight: int = Field(
        default=4, ge=1, le=1000, description="Calls at once to each provider, per worker."
    )
    provider_limits: str | None = Field(
        default=None,
        description="Per-provider calls at once overriding `provider_in_flight`: "
        "`modern-treasury=8,plaid=2`.",
    )
    provider_call_timeout: timedelta = _period(
        timedelta(seconds=20),
        "One provider call's deadline; past it the call is given up and counted as failed.",
        at_most=timedelta(minutes=2),
    )
    provider_wait: timedelta = _period(
        timedelta(seconds=15),
        "How long an activity waits for a provider's free slot or closing circuit.",
        at_most=timedelta(minutes=5),
    )
    breaker_failures: int = Field(
        default=5, ge=1, le=1000, description="Failed calls in a row that open a circuit."
    )
    breaker_open_for: timedelta = _period(
        timedelta(seconds=30),
        "How long an open circuit stays open before one trial call.",
        at_most=timedelta(hours=1),
    )

    # -- secrets (see charter/crypto) ------------------------------------------------------
    key_provider: str | None = Field(
        default=None, description="local | env | vault (default: env if CHARTER_KEK is set)"
    )
    kek: SecretStr | None = Field(default=None, description="`1:<base64>,2:<base64>` KEKs")
    payload_keys: SecretStr | None = Field(
        default=None, description="payload-codec keys `id:<base64>,...`; default: keyring file"
    )
    payload_key_id: str | None = None
    vault_addr: str | None = Field(
        default=None, validation_alias=AliasChoices("VAULT_ADDR", "CHARTER_VAULT_ADDR")
    )
    vault_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("VAULT_TOKEN", "CHARTER_VAULT_TOKEN")
    )
    vault_transit_key: str = "charter-kek"
    vault_transit_mount: str = "transit"
    codec_server_port: int = 8234
    codec_server_token: SecretStr | None = Field(
        default=None,
        description="bearer token of the codec server; in development a file in state_dir",
    )
    codec_ui_origins: str | None = Field(
        default=None, description="comma-separated browser origins of the Temporal UI (CORS)"
    )
    codec_jwks_url: str | None = Field(
        default=None,
        description="Temporal Cloud mode: accept the UI's access tokens signed by these keys",
    )
    codec_jwt_issuer: str | None = None
    codec_jwt_audience: str | None = None
    codec_tls_cert: Path | None = Field(default=None, description="PEM chain: serve over HTTPS")
    codec_tls_key: Path | None = None

    # -- members' signing keys (see charter/crypto/statements.py) ---------------------------
    # Strings, not Paths: an empty variable means unset, as it always has.
    member_key_dir: str | None = Field(
        default=None,
        description="where members' private signing keys live on this machine; default: "
        "`member-keys` in the state directory (mode 0700), never the repository",
    )

    @property
    def audit_signing_key_file(self) -> Path:
        return self.state_dir / "audit-signing.key"

    @property
    def audit_checkpoints_location(self) -> str:
        return self.audit_checkpoints or str(self.state_dir / "audit-checkpoints.jsonl")

    @property
    def temporal_ui_url(self) -> str:
        return f"http://localhost:{self.temporal_ui_port}"

    @property
    def codec_server_url(self) -> str:
        return f"http://localhost:{self.codec_server_port}"

    @property
    def member_key_folder(self) -> Path:
        """CHARTER_MEMBER_KEY_DIR, else `member-keys` in the state directory: each checkout's
        demo keeps its members' keys beside its own database, and a deployment mounts them
        on the state directory's volume."""
        if self.member_key_dir:
            return Path(self.member_key_dir)
        return self.state_dir / "member-keys"


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
