"""Key canaries: proof at start-up that this process holds the keys every other one does.

The first process to start writes, per kind of key, a small ciphertext (a fixed plaintext
under the current payload key; a random data key wrapped under the current KEK). Every
process after it must decrypt them, or it refuses to start (`KeysDiffer`, one line, exit
code 2): a worker given a key of its own would otherwise encrypt history and credentials
nobody else can read, and fail on theirs. A process whose current key is newer than the
canary's (after a rotation) rewrites the canary under it, so retiring the old key later
leaves a canary the remaining keys still open.

Reading a canary and decrypting it are separate steps: no key provider (Vault) is called
while a database connection is held in a transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.api.common.v1 import Payload

from charter.config.settings import ConfigurationError
from charter.crypto import aead
from charter.crypto.codec import EncryptionCodec, PayloadKeyring
from charter.crypto.errors import CryptoError
from charter.crypto.kek import KeyProvider, WrappedKey
from charter.storage.db import Database

#: What the payload canary decrypts to; it says nothing about any business.
PLAINTEXT = b"charter key canary"
_KEK_AAD = b"charter/key-canary/1"


class KeysDiffer(ConfigurationError):
    """This process's keys do not open the canary the other processes wrote."""


@dataclass(frozen=True)
class Canary:
    key_id: str
    sealed: bytes


async def read(db: Database, kind: str) -> Canary | None:
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT key_id, sealed FROM charter.key_canary($1)", kind)
    return None if row is None else Canary(row["key_id"], bytes(row["sealed"]))


async def record(db: Database, kind: str, canary: Canary, replaces: str | None) -> bool:
    async with db.pool.acquire() as conn:
        written = await conn.fetchval(
            "SELECT charter.record_key_canary($1, $2, $3, $4)",
            kind,
            canary.key_id,
            canary.sealed,
            replaces,
        )
    return bool(written)


class _PayloadCanary:
    kind = "payload"

    def __init__(self, keyring: PayloadKeyring) -> None:
        self._codec = EncryptionCodec(keyring)
        self.current = keyring.current

    def seal(self) -> Canary:
        sealed = self._codec.encrypt(
            Payload(metadata={"encoding": b"binary/plain"}, data=PLAINTEXT)
        )
        return Canary(self.current, sealed.SerializeToString())

    def opens(self, canary: Canary) -> bool:
        try:
            return self._codec.decrypt(Payload.FromString(canary.sealed)).data == PLAINTEXT
        except Exception:
            return False


class _KekCanary:
    kind = "kek"

    def __init__(self, keys: KeyProvider) -> None:
        self._keys = keys
        self.current = str(keys.current_version())

    def seal(self) -> Canary:
        wrapped = self._keys.wrap(aead.new_key(), _KEK_AAD)
        return Canary(str(wrapped.kek_version), wrapped.blob)

    def opens(self, canary: Canary) -> bool:
        try:
            self._keys.unwrap(
                WrappedKey(kek_version=int(canary.key_id), blob=canary.sealed), _KEK_AAD
            )
        except (CryptoError, ValueError):
            return False
        return True


_WHAT = {
    "payload": "payload keys (CHARTER_PAYLOAD_KEYS)",
    "kek": "key-encryption key (CHARTER_KEK or its provider)",
}


async def _check(db: Database, kind: _PayloadCanary | _KekCanary) -> None:
    found = await read(db, kind.kind)
    if found is None:
        await record(db, kind.kind, await asyncio.to_thread(kind.seal), None)
        found = await read(db, kind.kind)  # ours, or the one another process wrote first
        if found is None:
            raise ConfigurationError(f"the {kind.kind} key canary could not be written")
    if not await asyncio.to_thread(kind.opens, found):
        raise KeysDiffer(
            f"this process's {_WHAT[kind.kind]} do not decrypt the canary the other processes "
            f"wrote under key {found.key_id}: give every process the same keys"
        )
    if found.key_id != kind.current:
        await record(db, kind.kind, await asyncio.to_thread(kind.seal), found.key_id)


async def check_key_canaries(db: Database, keyring: PayloadKeyring, keys: KeyProvider) -> None:
    """Write the canaries if none exist; refuse (`KeysDiffer`) if these keys do not open
    them; move them to the current keys after a rotation."""
    await _check(db, _PayloadCanary(keyring))
    await _check(db, _KekCanary(keys))
