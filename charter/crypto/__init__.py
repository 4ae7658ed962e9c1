"""Secrets at rest and in flight: envelope encryption of credentials, key-encryption-key
providers (local keyring file, environment, Vault transit) and the Temporal payload codec."""

from charter.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    KeyringError,
    KeyVersionUnavailable,
)

__all__ = ["CryptoError", "DecryptionFailed", "KeyVersionUnavailable", "KeyringError"]
