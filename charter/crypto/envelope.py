"""Envelope encryption: a fresh AES-256-GCM data key per record, wrapped by a versioned KEK.

The associated data binds the ciphertext to its tenant, record id and scope, and the same
associated data binds the wrapped data key, so neither can be moved to another record
(or a read credential relabelled as a write one) without authentication failing.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from charter.crypto import aead
from charter.crypto.errors import DecryptionFailed
from charter.crypto.kek import KeyProvider, WrappedKey

Scope = Literal["read", "write"]


class Sealed(BaseModel):
    """What is stored. Every field is needed to decrypt; none reveals the plaintext."""

    model_config = ConfigDict(frozen=True)

    kek_version: int
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes
    tag: bytes


def credential_aad(tenant_id: str, record_id: str, scope: Scope) -> bytes:
    """Unambiguous encoding (a JSON array), so no two triples share associated data."""
    return json.dumps(
        ["charter-credential/1", tenant_id, record_id, scope], separators=(",", ":")
    ).encode()


def seal(provider: KeyProvider, plaintext: bytes, aad: bytes) -> Sealed:
    data_key = aead.new_key()
    nonce, ciphertext, tag = aead.encrypt(data_key, plaintext, aad)
    wrapped = provider.wrap(data_key, aad)
    return Sealed(
        kek_version=wrapped.kek_version,
        wrapped_key=wrapped.blob,
        nonce=nonce,
        ciphertext=ciphertext,
        tag=tag,
    )


def open_sealed(provider: KeyProvider, sealed: Sealed, aad: bytes) -> bytes:
    data_key = provider.unwrap(
        WrappedKey(kek_version=sealed.kek_version, blob=sealed.wrapped_key), aad
    )
    if len(data_key) != aead.KEY_BYTES:
        raise DecryptionFailed("malformed data key")
    return aead.decrypt(data_key, sealed.nonce, sealed.ciphertext, sealed.tag, aad)


def rewrap(provider: KeyProvider, sealed: Sealed, aad: bytes) -> Sealed:
    """The same ciphertext, its data key re-encrypted under the current KEK version."""
    wrapped = provider.rewrap(
        WrappedKey(kek_version=sealed.kek_version, blob=sealed.wrapped_key), aad
    )
    return sealed.model_copy(
        update={"kek_version": wrapped.kek_version, "wrapped_key": wrapped.blob}
    )
