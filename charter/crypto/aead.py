"""AES-256-GCM with the tag kept apart from the ciphertext, so storage and tests can name
each part (nonce, ciphertext, tag) exactly."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from charter.crypto.errors import DecryptionFailed

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes, bytes]:
    """Return (nonce, ciphertext, tag). A fresh random 96-bit nonce per call."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext, aad)
    return nonce, sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES or len(tag) != TAG_BYTES:
        raise DecryptionFailed("malformed ciphertext")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext + tag, aad)
    except InvalidTag:
        raise DecryptionFailed("authentication failed") from None
