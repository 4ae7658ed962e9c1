"""Connector credentials, envelope-encrypted at rest.

Each record gets a fresh data key; the associated data binds tenant, record id and scope
(charter/crypto/envelope.py). Plaintext exists only in the memory of the activity that
obtained it: it is never returned by `list_credentials`, never logged (every decrypted value
is registered with the redaction filter), and never part of an exception message.

Read and write credentials are separate records. `ScopedCredentials("read")` is all the read
activity holds, so it cannot obtain a write credential: asking for one raises
`CredentialScopeError`, and a row relabelled in the database fails to decrypt because the
scope is part of the associated data.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from charter.config import redaction
from charter.config.settings import Settings
from charter.crypto.envelope import Scope, Sealed, credential_aad, open_sealed, rewrap, seal
from charter.crypto.errors import CryptoError
from charter.crypto.providers import KeyProvider, default_key_provider

Kind = Literal["api_key", "oauth"]


class CredentialError(Exception):
    """Base class; messages carry ids only, never secret values."""


class CredentialNotFound(CredentialError, LookupError):
    pass


class CredentialRevoked(CredentialError):
    pass


class CredentialScopeError(CredentialError, PermissionError):
    pass


class CredentialSecret(BaseModel):
    """The plaintext: an API key, or an OAuth token set. `SecretStr` keeps it out of reprs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr | None = None
    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    expires_at: datetime | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CredentialSecret:
        if (self.api_key is None) == (self.access_token is None):
            raise ValueError("a credential is either an api_key or an OAuth access_token")
        if self.api_key is not None and (self.refresh_token or self.expires_at):
            raise ValueError("an api_key credential has no refresh token or expiry")
        return self

    @property
    def kind(self) -> Kind:
        return "api_key" if self.api_key is not None else "oauth"

    def values(self) -> list[str]:
        return [
            s.get_secret_value()
            for s in (self.api_key, self.access_token, self.refresh_token)
            if s is not None
        ]

    def to_bytes(self) -> bytes:
        raw: dict[str, Any] = {
            "api_key": self.api_key.get_secret_value() if self.api_key else None,
            "access_token": self.access_token.get_secret_value() if self.access_token else None,
            "refresh_token": self.refresh_token.get_secret_value() if self.refresh_token else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }
        return json.dumps({k: v for k, v in raw.items() if v is not None}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CredentialSecret:
        return cls.model_validate_json(raw)


class CredentialInfo(BaseModel):
    """Everything about a credential except its secret: what `list` shows."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    credential_id: str
    connector: str
    scope: Scope
    kind: Kind
    label: str
    kek_version: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at else "active"


class Credential(BaseModel):
    """A decrypted credential, alive only inside the activity that obtained it."""

    model_config = ConfigDict(frozen=True)

    info: CredentialInfo
    secret: CredentialSecret

    @property
    def credential_id(self) -> str:
        return self.info.credential_id

    @property
    def scope(self) -> Scope:
        return self.info.scope


_INFO_COLUMNS = (
    "tenant_id, credential_id, connector, scope, kind, label, kek_version, created_by, "
    "created_at, updated_at, revoked_at"
)


def _info(row: asyncpg.Record) -> CredentialInfo:
    return CredentialInfo(**{k: row[k] for k in CredentialInfo.model_fields})


def _sealed(row: asyncpg.Record) -> Sealed:
    return Sealed(
        kek_version=row["kek_version"],
        wrapped_key=row["wrapped_key"],
        nonce=row["nonce"],
        ciphertext=row["ciphertext"],
        tag=row["tag"],
    )


def new_credential_id() -> str:
    return "cred-" + secrets.token_hex(8)


async def add(
    conn: asyncpg.Connection,
    keys: KeyProvider,
    *,
    tenant_id: str,
    connector: str,
    scope: Scope,
    secret: CredentialSecret,
    label: str = "",
    created_by: str,
    credential_id: str | None = None,
) -> CredentialInfo:
    credential_id = credential_id or new_credential_id()
    sealed = await asyncio.to_thread(
        seal, keys, secret.to_bytes(), credential_aad(tenant_id, credential_id, scope)
    )
    row = await conn.fetchrow(
        "INSERT INTO charter.credentials (tenant_id, credential_id, connector, scope, kind, label, "
        "kek_version, wrapped_key, nonce, ciphertext, tag, created_by) VALUES "
        f"($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING {_INFO_COLUMNS}",
        tenant_id,
        credential_id,
        connector,
        scope,
        secret.kind,
        label,
        sealed.kek_version,
        sealed.wrapped_key,
        sealed.nonce,
        sealed.ciphertext,
        sealed.tag,
        created_by,
    )
    assert row is not None  # INSERT ... RETURNING always returns the row
    return _info(row)


async def list_credentials(
    conn: asyncpg.Connection, tenant_id: str, *, include_revoked: bool = False
) -> list[CredentialInfo]:
    rows = await conn.fetch(
        f"SELECT {_INFO_COLUMNS} FROM charter.credentials WHERE tenant_id = $1 "
        "AND ($2 OR revoked_at IS NULL) ORDER BY connector, scope, created_at",
        tenant_id,
        include_revoked,
    )
    return [_info(r) for r in rows]


async def revoke(conn: asyncpg.Connection, tenant_id: str, credential_id: str) -> CredentialInfo:
    """Mark revoked and erase the envelope: the secret is unrecoverable from here on."""
    row = await conn.fetchrow(
        "UPDATE charter.credentials SET revoked_at = now(), updated_at = now(), kek_version = NULL, "
        "wrapped_key = NULL, nonce = NULL, ciphertext = NULL, tag = NULL WHERE tenant_id = $1 AND "
        f"credential_id = $2 AND revoked_at IS NULL RETURNING {_INFO_COLUMNS}",
        tenant_id,
        credential_id,
    )
    if row is None:
        existing = await conn.fetchval(
            "SELECT revoked_at FROM charter.credentials WHERE tenant_id = $1 AND credential_id = $2",
            tenant_id,
            credential_id,
        )
        if existing is not None:
            raise CredentialRevoked(f"credential {credential_id} is already revoked")
        raise CredentialNotFound(f"no credential {credential_id} for tenant {tenant_id}")
    return _info(row)


async def active_id(
    conn: asyncpg.Connection, tenant_id: str, connector: str, scope: Scope
) -> str | None:
    """The newest active credential for this connector and scope."""
    found: str | None = await conn.fetchval(
        "SELECT credential_id FROM charter.credentials WHERE tenant_id = $1 AND connector = $2 "
        "AND scope = $3 AND revoked_at IS NULL ORDER BY created_at DESC, credential_id LIMIT 1",
        tenant_id,
        connector,
        scope,
    )
    return found


async def kek_versions_in_use(conn: asyncpg.Connection, tenant_id: str) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT kek_version, count(*) AS n FROM charter.credentials WHERE tenant_id = $1 "
        "AND kek_version IS NOT NULL GROUP BY kek_version",
        tenant_id,
    )
    return {r["kek_version"]: r["n"] for r in rows}


class RewrapReport(BaseModel):
    rewrapped: list[str] = []
    failed: list[str] = []
    """Records whose data key did not unwrap (tampered, or under a retired version)."""


async def rewrap_tenant(
    conn: asyncpg.Connection, keys: KeyProvider, tenant_id: str
) -> RewrapReport:
    """Rewrap every data key of the tenant not already under the current KEK version.

    Only the data keys change: the credential ciphertexts stay as they are, and with Vault
    the data keys are re-encrypted inside Vault without ever being returned. A record that
    fails to unwrap is reported and left as it is; the others still move.
    """
    current = await asyncio.to_thread(keys.current_version)
    rows = await conn.fetch(
        "SELECT credential_id, scope, kek_version, wrapped_key, nonce, ciphertext, tag FROM "
        "charter.credentials WHERE tenant_id = $1 AND revoked_at IS NULL AND kek_version <> $2 "
        "ORDER BY credential_id FOR UPDATE",
        tenant_id,
        current,
    )
    report = RewrapReport()
    for row in rows:
        aad = credential_aad(tenant_id, row["credential_id"], row["scope"])
        try:
            fresh = await asyncio.to_thread(rewrap, keys, _sealed(row), aad)
        except CryptoError:
            report.failed.append(row["credential_id"])
            continue
        await conn.execute(
            "UPDATE charter.credentials SET kek_version = $3, wrapped_key = $4 "
            "WHERE tenant_id = $1 AND credential_id = $2",
            tenant_id,
            row["credential_id"],
            fresh.kek_version,
            fresh.wrapped_key,
        )
        report.rewrapped.append(row["credential_id"])
    return report


class ScopedCredentials:
    """Obtains credentials of one scope only. The read activity holds a read-scoped one."""

    def __init__(self, keys: KeyProvider, scope: Scope) -> None:
        self._keys = keys
        self.scope: Scope = scope

    async def obtain(
        self, conn: asyncpg.Connection, tenant_id: str, credential_id: str
    ) -> Credential:
        row = await conn.fetchrow(
            f"SELECT {_INFO_COLUMNS}, wrapped_key, nonce, ciphertext, tag FROM charter.credentials "
            "WHERE tenant_id = $1 AND credential_id = $2",
            tenant_id,
            credential_id,
        )
        if row is None:
            raise CredentialNotFound(f"no credential {credential_id} for tenant {tenant_id}")
        if row["revoked_at"] is not None:
            raise CredentialRevoked(f"credential {credential_id} is revoked")
        if row["scope"] != self.scope:
            raise CredentialScopeError(
                f"credential {credential_id} is {row['scope']}-scoped; this holder may obtain "
                f"only {self.scope}-scoped credentials"
            )
        # The associated data uses the scope this holder is allowed, not the row's label.
        aad = credential_aad(tenant_id, credential_id, self.scope)
        plaintext = await asyncio.to_thread(open_sealed, self._keys, _sealed(row), aad)
        secret = CredentialSecret.from_bytes(plaintext)
        for value in secret.values():
            redaction.register_secret(value)
        return Credential(info=_info(row), secret=secret)

    async def obtain_for(
        self, conn: asyncpg.Connection, tenant_id: str, connector: str
    ) -> Credential:
        """Resolve the tenant's active credential id for `connector`, then obtain it by id."""
        credential_id = await active_id(conn, tenant_id, connector, self.scope)
        if credential_id is None:
            raise CredentialNotFound(
                f"tenant {tenant_id} has no active {self.scope} credential for {connector}"
            )
        return await self.obtain(conn, tenant_id, credential_id)

    async def replace_secret(
        self, conn: asyncpg.Connection, credential: Credential, secret: CredentialSecret
    ) -> Credential:
        """Store a refreshed secret (e.g. new OAuth tokens) under a fresh data key."""
        info = credential.info
        if info.scope != self.scope:
            raise CredentialScopeError(
                f"credential {info.credential_id} is not {self.scope}-scoped"
            )
        sealed = await asyncio.to_thread(
            seal,
            self._keys,
            secret.to_bytes(),
            credential_aad(info.tenant_id, info.credential_id, self.scope),
        )
        row = await conn.fetchrow(
            "UPDATE charter.credentials SET kek_version = $3, wrapped_key = $4, nonce = $5, "
            "ciphertext = $6, tag = $7, updated_at = now() WHERE tenant_id = $1 AND "
            f"credential_id = $2 AND revoked_at IS NULL RETURNING {_INFO_COLUMNS}",
            info.tenant_id,
            info.credential_id,
            sealed.kek_version,
            sealed.wrapped_key,
            sealed.nonce,
            sealed.ciphertext,
            sealed.tag,
        )
        if row is None:
            raise CredentialRevoked(f"credential {info.credential_id} was revoked meanwhile")
        for value in secret.values():
            redaction.register_secret(value)
        return Credential(info=_info(row), secret=secret)


class CredentialVault:
    """Hands out scoped holders. The KEK provider is the one given, or resolved on first use
    from the entry point's `settings` (so a misconfigured provider is refused when a
    credential is first needed, as the worker's start-up checks expect)."""

    def __init__(
        self, settings: Settings | None = None, *, keys: KeyProvider | None = None
    ) -> None:
        if (settings is None) == (keys is None):
            raise TypeError("CredentialVault takes the entry point's settings or a key provider")
        self._keys = keys
        self._settings = settings

    @property
    def keys(self) -> KeyProvider:
        if self._keys is None:
            assert self._settings is not None
            self._keys = default_key_provider(self._settings)
        return self._keys

    def scoped(self, scope: Scope) -> ScopedCredentials:
        return ScopedCredentials(self.keys, scope)


def utcnow() -> datetime:
    return datetime.now(UTC)
