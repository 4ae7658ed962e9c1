"""Crypto errors. Their messages name key versions and record ids, never key material or
plaintext, so they are safe to log and to carry in a (codec-encrypted) failure."""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every crypto failure."""


class DecryptionFailed(CryptoError):
    """Authentication failed: wrong key, wrong associated data, or tampered bytes.

    Fails closed: nothing partially decrypted is ever returned.
    """


class KeyVersionUnavailable(DecryptionFailed):
    """The key version a ciphertext names is unknown or retired."""


class KeyringError(CryptoError):
    """The keyring cannot be read, written, rotated or retired as asked."""
