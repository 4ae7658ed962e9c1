"""Key-encryption-key providers: the interface, and how Charter picks one.

A provider wraps and unwraps data keys under a versioned key-encryption key (KEK) and never
hands the KEK itself out. Three ship with Charter:

- `local`: a keyring file under the state directory (mode 0600, generated on first run) —
  the embedded default;
- `env`: KEK versions from the `CHARTER_KEK` environment variable (`1:<base64>,2:<base64>`);
- `vault`: HashiCorp Vault's transit engine, through `hvac` (the KEK never leaves Vault).

A cloud KMS (AWS KMS, GCP KMS, Azure Key Vault) or Supabase Vault plugs in by implementing
`KeyProvider`: `wrap` = the service's Encrypt with the associated data as encryption
context, `rewrap` = ReEncrypt, `rotate` = create a key version, `retire` = disable one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from charter.config import Settings


class WrappedKey(BaseModel):
    """A data key encrypted under KEK version `kek_version`; opaque to everyone else."""

    model_config = ConfigDict(frozen=True)

    kek_version: int
    blob: bytes


class KeyVersionInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    status: Literal["current", "active", "retired"]
    created_at: datetime | None = None


class KeyProvider(Protocol):
    name: str

    def current_version(self) -> int: ...

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        """Encrypt a data key under the current KEK version, bound to `aad`."""
        ...

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        """Raises DecryptionFailed / KeyVersionUnavailable; never returns partial output."""
        ...

    def rewrap(self, wrapped: WrappedKey, aad: bytes) -> WrappedKey:
        """Re-encrypt under the current version. Vault does this without revealing the key."""
        ...

    def rotate(self) -> int:
        """Create a new KEK version and make it current; return it."""
        ...

    def retire(self, version: int) -> None:
        """Destroy (or disable) an old version: what it wrapped no longer decrypts."""
        ...

    def versions(self) -> list[KeyVersionInfo]: ...


def default_key_provider(settings: Settings | None = None) -> KeyProvider:
    """The provider the configuration names (`CHARTER_KEY_PROVIDER`), else a sensible one:
    `env` when `CHARTER_KEK` is set, else the local keyring file."""
    from charter.crypto.keyring import EnvKeyProvider, LocalKeyProvider, keyring_file

    settings = settings or Settings()
    kind = settings.key_provider or ("env" if settings.kek else "local")
    if kind == "env":
        if settings.kek is None:
            raise ValueError("CHARTER_KEY_PROVIDER=env needs CHARTER_KEK")
        return EnvKeyProvider.parse(settings.kek.get_secret_value())
    if kind == "vault":
        from charter.crypto.vault import VaultTransitProvider

        return VaultTransitProvider.from_settings(settings)
    if kind == "local":
        return LocalKeyProvider(keyring_file(settings))
    raise ValueError(f"unknown CHARTER_KEY_PROVIDER {kind!r}: use local, env or vault")
