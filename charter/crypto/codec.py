"""The payload codec: every Temporal payload AES-256-GCM encrypted before it leaves the
process, so workflow inputs, results, signals, queries, memos and (with the encoded-
attributes failure converter) failure messages reach Temporal's history only as ciphertext.

Each encrypted payload names its key id in the metadata; the keyring keeps older keys so
payloads written before a rotation still decode. Decoding fails closed: a payload that is
not ours, names an unknown key or format, or does not authenticate raises — it never
passes through.

Two formats, told apart by `encryption-format` (absent: 1), both nonce | ciphertext | tag
under AES-256-GCM with a fresh random 96-bit nonce, and both read by the decoder:

- 1: the whole inner payload (metadata and data) serialized and sealed, AAD
  `charter/payload/1|<key id>`. Written for any payload format 2 does not cover; every
  history recorded before format 2 holds only these.
- 2: the data alone of a payload whose metadata is exactly `encoding: json/plain` (every
  pydantic value except None and bytes), AAD `charter/payload/2|<key id>`: no protobuf
  message serialized before sealing and parsed after opening. Its format says the value was
  JSON, which its size already told; the AAD names the format, so a payload relabelled from
  one format to the other does not authenticate.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from charter.config.settings import ConfigurationError, Settings
from charter.crypto import aead
from charter.crypto.errors import DecryptionFailed, KeyringError, KeyVersionUnavailable
from charter.crypto.keyring import keyring_file, parse_key_list

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
CIPHER = "encryption-cipher"
CIPHER_NAME = b"AES256-GCM"
FORMAT = "encryption-format"
JSON_PLAIN = b"json/plain"
#: What format 2 seals the data of, and gives back around it when opened.
_JSON_PAYLOAD = Payload(metadata={"encoding": JSON_PLAIN})


class PayloadKeyring:
    """Payload keys by id, plus the id new payloads are encrypted with.

    `load` (optional) re-reads the source; it is called when a payload names a key this
    process has not seen, e.g. after `charter keys rotate --payload` in another process.
    """

    def __init__(
        self,
        current: str,
        keys: dict[str, bytes],
        load: Callable[[], tuple[str, dict[str, bytes]]] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._load = load
        self._set(current, keys)

    def _set(self, current: str, keys: dict[str, bytes]) -> None:
        if current not in keys:
            raise ValueError(f"current payload key {current!r} is not in the keyring")
        if any(len(k) != aead.KEY_BYTES for k in keys.values()):
            raise ValueError("payload keys must be 32 bytes (AES-256)")
        with self._lock:
            self.current, self._keys = current, dict(keys)
            # One cipher object per key: building one runs the AES key schedule, which cost
            # more per payload than encrypting a 10 KiB observation.
            self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    @classmethod
    def generate(cls, key_id: str = "test-1") -> PayloadKeyring:
        return cls(key_id, {key_id: aead.new_key()})

    def key(self, key_id: str) -> bytes:
        found = self._keys.get(key_id)
        if found is None and self._load is not None:
            self._set(*self._load())
            found = self._keys.get(key_id)
        if found is None:
            raise KeyVersionUnavailable(f"payload key {key_id!r} is not in the keyring")
        return found

    def cipher(self, key_id: str) -> AESGCM:
        """The AES-256-GCM cipher of a key id (same lookup and reload as `key`)."""
        found = self._ciphers.get(key_id)
        if found is None:
            self.key(key_id)  # reloads the source once, or raises KeyVersionUnavailable
            found = self._ciphers[key_id]
        return found

    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def refresh(self) -> None:
        if self._load is not None:
            self._set(*self._load())


def _aad(key_id: bytes, version: bytes = b"1") -> bytes:
    return b"charter/payload/" + version + b"|" + key_id


def _json_only(payload: Payload) -> bool:
    """Whether format 2 carries this payload whole: JSON data and nothing else beside it."""
    metadata = payload.metadata
    return (
        len(metadata) == 1
        and metadata.get("encoding") == JSON_PLAIN
        and not payload.external_payloads
    )


class _Nonces:
    """Fresh random 96-bit nonces, drawn from the OS in batches: one `getrandom` per 512
    payloads instead of one per payload (the syscall cost half as much as encrypting a
    10 KiB observation). Every nonce is still 12 bytes of OS randomness handed out once:
    `deque.popleft` is atomic, so two threads never get the same one, and a forked child
    drops the batch its parent drew, so parent and child never reuse one either."""

    BATCH = 512

    def __init__(self) -> None:
        self._pool: deque[bytes] = deque()
        os.register_at_fork(after_in_child=self._pool.clear)

    def take(self) -> bytes:
        try:
            return self._pool.popleft()
        except IndexError:
            size = aead.NONCE_BYTES
            block = os.urandom(size * self.BATCH)
            self._pool.extend(block[i : i + size] for i in range(0, len(block), size))
            return self._pool.popleft()


_NONCES = _Nonces()


class PayloadDecodeError(DecryptionFailed):
    """A payload that must not be trusted."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: PayloadKeyring) -> None:
        self.keyring = keyring
        # Per key id and format: the encrypted payload's metadata as a template, and the AAD.
        # Copying a template costs a quarter of building the metadata map from a dict.
        self._sealing: dict[tuple[str, bool], tuple[Payload, bytes]] = {}

    def _sealing_for(self, key_id: str, json_only: bool) -> tuple[Payload, bytes]:
        found = self._sealing.get((key_id, json_only))
        if found is None:
            kid = key_id.encode()
            metadata = {"encoding": ENCODING, KEY_ID: kid, CIPHER: CIPHER_NAME}
            if json_only:
                metadata[FORMAT] = b"2"
            template = Payload(metadata=metadata)
            found = (template, _aad(kid, b"2" if json_only else b"1"))
            self._sealing[(key_id, json_only)] = found
        return found

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.keyring.current
        json_only = _json_only(payload)
        template, aad = self._sealing_for(key_id, json_only)
        plaintext = payload.data if json_only else payload.SerializeToString()
        nonce = _NONCES.take()
        # AESGCM appends the tag to the ciphertext: nonce | ciphertext | tag, as stored.
        sealed = self.keyring.cipher(key_id).encrypt(nonce, plaintext, aad)
        encrypted = Payload()
        encrypted.CopyFrom(template)
        encrypted.data = nonce + sealed
        return encrypted

    def decrypt(self, payload: Payload) -> Payload:
        metadata = payload.metadata
        if metadata.get("encoding") != ENCODING:
            raise PayloadDecodeError("refusing an unencrypted payload")
        if metadata.get(CIPHER, CIPHER_NAME) != CIPHER_NAME:
            raise PayloadDecodeError("unsupported payload cipher")
        version = metadata.get(FORMAT, b"1")
        if version not in (b"1", b"2"):
            raise PayloadDecodeError("unsupported payload format")
        kid = metadata.get(KEY_ID, b"")
        try:
            cipher = self.keyring.cipher(kid.decode())
        except UnicodeDecodeError:
            raise PayloadDecodeError("malformed payload key id") from None
        blob = payload.data
        if len(blob) < aead.NONCE_BYTES + aead.TAG_BYTES:
            raise PayloadDecodeError("truncated payload")
        try:
            # A view, not a slice: the ciphertext is not copied once more before decrypting.
            plaintext = cipher.decrypt(
                blob[: aead.NONCE_BYTES], memoryview(blob)[aead.NONCE_BYTES :], _aad(kid, version)
            )
        except InvalidTag:
            raise DecryptionFailed("authentication failed") from None
        if version == b"2":
            opened = Payload()
            opened.CopyFrom(_JSON_PAYLOAD)
            opened.data = plaintext
            return opened
        try:
            return Payload.FromString(plaintext)
        except Exception:
            raise PayloadDecodeError("decrypted payload is malformed") from None

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]


def default_payload_keyring(settings: Settings) -> PayloadKeyring:
    """`CHARTER_PAYLOAD_KEYS` (`id:<base64>,...`, current = `CHARTER_PAYLOAD_KEY_ID` or the
    last listed) if set; in development only, the keyring file under the state directory
    (made on first use). Anywhere else, unset keys are a ConfigurationError: a key made up
    on the spot would encrypt what no other process can read."""

    if settings.payload_keys is not None:
        keys = parse_key_list(settings.payload_keys.get_secret_value(), what="CHARTER_PAYLOAD_KEYS")
        current = settings.payload_key_id or list(keys)[-1]
        if current not in keys:
            raise KeyringError(f"CHARTER_PAYLOAD_KEY_ID {current!r} is not in CHARTER_PAYLOAD_KEYS")
        return PayloadKeyring(current, keys)
    if not settings.development:
        raise ConfigurationError(
            "CHARTER_PAYLOAD_KEYS (or CHARTER_PAYLOAD_KEYS_FILE) is not set: every process "
            "must encrypt with the same payload keys (make them with `charter keys generate`); "
            "only `make demo`, `charter up` and `charter stack` make development keys"
        )
    file = keyring_file(settings)
    return PayloadKeyring(*file.payload_keys(), load=file.payload_keys)
