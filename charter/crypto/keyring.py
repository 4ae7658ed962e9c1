"""The local keyring file and the environment-variable provider.

The keyring file (`<state dir>/keyring.json`, mode 0600) holds two sets of keys:
key-encryption keys for credentials (integer versions) and payload-codec keys (string ids).
It is generated on first run, written atomically, re-read when another process (say
`charter keys rotate`) changed it, and refused if anyone but its owner can read it.
It lives outside the repository and is never stored in the database.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charter.config.settings import Settings
from charter.crypto import aead
from charter.crypto.errors import DecryptionFailed, KeyringError, KeyVersionUnavailable
from charter.crypto.kek import KeyVersionInfo, WrappedKey

FORMAT = "charter-keyring/1"
FILE_NAME = "keyring.json"
_WRAP_CONTEXT = b"charter/kek-wrap/1|"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def keyring_file(settings: Settings) -> KeyringFile:
    """The keyring file of the configured state directory."""
    return KeyringFile(settings.state_dir / FILE_NAME)


class KeyringFile:
    """The file, loaded lazily and reloaded whenever its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._data: dict[str, Any] | None = None
        self._mtime: int | None = None

    # -- reading and writing ----------------------------------------------------------------

    def data(self) -> dict[str, Any]:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._create()
                st = self.path.stat()
            if self._data is None or st.st_mtime_ns != self._mtime:
                if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                    raise KeyringError(
                        f"{self.path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
                        f"run `chmod 600 {self.path}`"
                    )
                try:
                    loaded = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise KeyringError(
                        f"cannot read keyring {self.path}: {type(exc).__name__}"
                    ) from None
                if loaded.get("format") != FORMAT:
                    raise KeyringError(f"{self.path} is not a {FORMAT} keyring")
                self._data, self._mtime = loaded, st.st_mtime_ns
            return self._data

    def _create(self) -> None:
        first = {
            "format": FORMAT,
            "kek": {
                "current": 1,
                "versions": {"1": {"key": _b64(aead.new_key()), "created_at": _now()}},
            },
            "payload": {
                "current": "local-1",
                "keys": {"local-1": {"key": _b64(aead.new_key()), "created_at": _now()}},
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another process created it first: use theirs
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(first, fh, indent=2)

    def update(self, change: Any) -> dict[str, Any]:
        """Apply `change(data)` and write the result atomically (temp file, 0600, rename)."""
        with self._lock:
            data = json.loads(json.dumps(self.data()))
            change(data)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            self._data, self._mtime = None, None
            return self.data()

    # -- payload-codec keys -----------------------------------------------------------------

    def payload_keys(self) -> tuple[str, dict[str, bytes]]:
        section = self.data()["payload"]
        keys = {kid: _unb64(v["key"]) for kid, v in section["keys"].items()}
        return section["current"], keys

    def rotate_payload_key(self) -> str:
        def change(data: dict[str, Any]) -> None:
            section = data["payload"]
            numbers = [int(k.rsplit("-", 1)[-1]) for k in section["keys"]] + section.get(
                "retired_numbers", []
            )
            new_id = f"local-{max(numbers, default=0) + 1}"
            section["keys"][new_id] = {"key": _b64(aead.new_key()), "created_at": _now()}
            section["current"] = new_id

        return str(self.update(change)["payload"]["current"])

    def retire_payload_key(self, key_id: str) -> None:
        def change(data: dict[str, Any]) -> None:
            section = data["payload"]
            if key_id == section["current"]:
                raise KeyringError(f"{key_id} is the current payload key: rotate first")
            if key_id not in section["keys"]:
                raise KeyringError(f"no payload key {key_id!r}")
            del section["keys"][key_id]
            section.setdefault("retired_numbers", []).append(int(key_id.rsplit("-", 1)[-1]))
            section.setdefault("retired", []).append(key_id)

        self.update(change)


def _wrap_with(kek: bytes, version: int, data_key: bytes, aad: bytes) -> WrappedKey:
    nonce, ct, tag = aead.encrypt(kek, data_key, _WRAP_CONTEXT + aad)
    return WrappedKey(kek_version=version, blob=nonce + ct + tag)


def _unwrap_with(kek: bytes, wrapped: WrappedKey, aad: bytes) -> bytes:
    blob = wrapped.blob
    if len(blob) < aead.NONCE_BYTES + aead.TAG_BYTES + 1:
        raise DecryptionFailed("malformed wrapped key")
    nonce, ct, tag = (
        blob[: aead.NONCE_BYTES],
        blob[aead.NONCE_BYTES : -aead.TAG_BYTES],
        blob[-aead.TAG_BYTES :],
    )
    return aead.decrypt(kek, nonce, ct, tag, _WRAP_CONTEXT + aad)


class _KeksInProcess(ABC):
    """Wrapping with KEKs this process holds itself (the keyring file's, the variable's):
    AES-256-GCM under the KEK, bound to the associated data. A provider says which KEK a
    version is (`_kek`) and which version is current."""

    @abstractmethod
    def _kek(self, version: int) -> bytes: ...

    @abstractmethod
    def current_version(self) -> int: ...

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        version = self.current_version()
        return _wrap_with(self._kek(version), version, data_key, aad)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        return _unwrap_with(self._kek(wrapped.kek_version), wrapped, aad)

    def rewrap(self, wrapped: WrappedKey, aad: bytes) -> WrappedKey:
        return self.wrap(self.unwrap(wrapped, aad), aad)


class LocalKeyProvider(_KeksInProcess):
    """KEKs from the keyring file. Retiring a version deletes its key material."""

    name = "local"

    def __init__(self, file: KeyringFile) -> None:
        self.file = file

    def _kek(self, version: int) -> bytes:
        section = self.file.data()["kek"]
        entry = section["versions"].get(str(version))
        if entry is None:
            raise KeyVersionUnavailable(f"key-encryption key version {version} is not available")
        return _unb64(entry["key"])

    def current_version(self) -> int:
        return int(self.file.data()["kek"]["current"])

    def rotate(self) -> int:
        def change(data: dict[str, Any]) -> None:
            section = data["kek"]
            known = [int(v) for v in section["versions"]] + section.get("retired", [])
            new = max(known) + 1
            section["versions"][str(new)] = {"key": _b64(aead.new_key()), "created_at": _now()}
            section["current"] = new

        return int(self.file.update(change)["kek"]["current"])

    def retire(self, version: int) -> None:
        def change(data: dict[str, Any]) -> None:
            section = data["kek"]
            if version == section["current"]:
                raise KeyringError(f"version {version} is current: rotate before retiring it")
            if str(version) not in section["versions"]:
                raise KeyringError(f"no active key-encryption key version {version}")
            del section["versions"][str(version)]
            section.setdefault("retired", []).append(version)

        self.file.update(change)

    def versions(self) -> list[KeyVersionInfo]:
        section = self.file.data()["kek"]
        current = int(section["current"])
        infos = [
            KeyVersionInfo(
                version=int(v),
                status="current" if int(v) == current else "active",
                created_at=datetime.fromisoformat(e["created_at"]),
            )
            for v, e in section["versions"].items()
        ]
        infos += [KeyVersionInfo(version=v, status="retired") for v in section.get("retired", [])]
        return sorted(infos, key=lambda i: i.version)


def parse_key_list(text: str, *, what: str) -> dict[str, bytes]:
    """`id:<base64 of 32 bytes>,id:...` -> {id: key}. Errors never echo the key text."""
    keys: dict[str, bytes] = {}
    for n, item in enumerate(filter(None, (p.strip() for p in text.split(","))), start=1):
        kid, sep, encoded = item.partition(":")
        if not sep or not kid:
            raise KeyringError(f"{what}: entry {n} is not `id:<base64 key>`")
        try:
            key = _unb64(encoded)
        except ValueError:
            raise KeyringError(f"{what}: entry {n} ({kid}) is not valid base64") from None
        if len(key) != aead.KEY_BYTES:
            raise KeyringError(f"{what}: key {kid} must be 32 bytes (AES-256)")
        keys[kid] = key
    if not keys:
        raise KeyringError(f"{what} holds no key")
    return keys


class EnvKeyProvider(_KeksInProcess):
    """KEK versions from `CHARTER_KEK=1:<base64>,2:<base64>`; the highest is current.

    Rotation and retirement happen where the variable is managed (add a version, re-run
    `charter keys rotate` to rewrap, then drop the old one from the variable).
    """

    name = "env"

    def __init__(self, keys: dict[int, bytes]) -> None:
        self._keys = keys

    @classmethod
    def parse(cls, text: str) -> EnvKeyProvider:
        raw = parse_key_list(text, what="CHARTER_KEK")
        try:
            return cls({int(k): v for k, v in raw.items()})
        except ValueError:
            raise KeyringError("CHARTER_KEK: versions must be integers") from None

    @staticmethod
    def generate(version: int = 1) -> str:
        """A fresh `CHARTER_KEK` value."""
        return f"{version}:{_b64(aead.new_key())}"

    def current_version(self) -> int:
        return max(self._keys)

    def _kek(self, version: int) -> bytes:
        key = self._keys.get(version)
        if key is None:
            raise KeyVersionUnavailable(f"key-encryption key version {version} is not available")
        return key

    def rotate(self) -> int:
        raise KeyringError(
            "CHARTER_KEK is managed outside Charter: add a new version to it, restart, then "
            "run `charter keys rotate` to rewrap"
        )

    def retire(self, version: int) -> None:
        raise KeyringError("CHARTER_KEK is managed outside Charter: remove the version from it")

    def versions(self) -> list[KeyVersionInfo]:
        current = self.current_version()
        return [
            KeyVersionInfo(version=v, status="current" if v == current else "active")
            for v in sorted(self._keys)
        ]
