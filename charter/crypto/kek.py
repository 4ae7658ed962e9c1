"""The key-encryption-key provider interface: what every provider implements.

A provider wraps and unwraps data keys under a versioned key-encryption key (KEK) and never
hands the KEK itself out. Implementations live beside it (`keyring`, `vault`); `providers`
picks one from the configuration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict


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
