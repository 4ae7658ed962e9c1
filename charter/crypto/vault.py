"""KEKs in HashiCorp Vault's transit engine, through `hvac`.

The KEK never leaves Vault: wrapping is transit `encrypt`, unwrapping `decrypt`, rotation
`rotate` and rewrapping `rewrap` (Vault re-encrypts under the newest version without ever
returning the data key). The associated data is bound through transit's key derivation
`context`, so the transit key must be created with `derived=true` (Charter creates it so
when it is missing). Retiring a version raises the key's `min_decryption_version`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import hvac
import hvac.exceptions

from charter.config.settings import Settings
from charter.crypto.errors import DecryptionFailed, KeyringError, KeyVersionUnavailable
from charter.crypto.kek import KeyVersionInfo, WrappedKey

_VERSION = re.compile(r"^vault:v(\d+):")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class VaultTransitProvider:
    name = "vault"

    def __init__(self, client: hvac.Client, key_name: str = "charter-kek", mount: str = "transit"):
        self._client = client
        self._key = key_name
        self._mount = mount

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultTransitProvider:
        if not settings.vault_addr or settings.vault_token is None:
            raise KeyringError("CHARTER_KEY_PROVIDER=vault needs VAULT_ADDR and VAULT_TOKEN")
        client = hvac.Client(url=settings.vault_addr, token=settings.vault_token.get_secret_value())
        provider = cls(client, settings.vault_transit_key, settings.vault_transit_mount)
        provider.ensure_key()
        return provider

    @property
    def _transit(self) -> Any:
        return self._client.secrets.transit

    def ensure_key(self) -> None:
        """Create the derived AES-256-GCM transit key if it does not exist yet."""
        try:
            self._transit.read_key(name=self._key, mount_point=self._mount)
        except hvac.exceptions.InvalidPath:
            self._transit.create_key(
                name=self._key, derived=True, key_type="aes256-gcm96", mount_point=self._mount
            )

    def _key_info(self) -> dict[str, Any]:
        data: dict[str, Any] = self._transit.read_key(name=self._key, mount_point=self._mount)[
            "data"
        ]
        return data

    def current_version(self) -> int:
        return int(self._key_info()["latest_version"])

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        resp = self._transit.encrypt_data(
            name=self._key, plaintext=_b64(data_key), context=_b64(aad), mount_point=self._mount
        )
        return self._wrapped(resp["data"]["ciphertext"])

    @staticmethod
    def _wrapped(ciphertext: str) -> WrappedKey:
        match = _VERSION.match(ciphertext)
        if match is None:
            raise KeyringError("Vault returned a ciphertext without a version prefix")
        return WrappedKey(kek_version=int(match.group(1)), blob=ciphertext.encode())

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        try:
            resp = self._on_wrapped(self._transit.decrypt_data, wrapped, aad)
        except hvac.exceptions.InvalidRequest as exc:
            # Vault says "ciphertext or signature version is disallowed by policy (too old)"
            # for a retired version, and "cipher: message authentication failed" otherwise.
            if "too old" in str(exc) or "disallowed" in str(exc):
                raise KeyVersionUnavailable(
                    f"key-encryption key version {wrapped.kek_version} is retired in Vault"
                ) from None
            raise DecryptionFailed("authentication failed") from None
        return base64.b64decode(resp["data"]["plaintext"])

    def _on_wrapped(
        self, operation: Callable[..., Any], wrapped: WrappedKey, aad: bytes
    ) -> dict[str, Any]:
        """A transit operation (`decrypt_data`, `rewrap_data`) on a wrapped key whose
        ciphertext names the version it is recorded under, with `aad` as its context."""
        self._check_prefix(wrapped)
        response: dict[str, Any] = operation(
            name=self._key,
            ciphertext=wrapped.blob.decode(),
            context=_b64(aad),
            mount_point=self._mount,
        )
        return response

    def _check_prefix(self, wrapped: WrappedKey) -> None:
        try:
            text = wrapped.blob.decode()
        except UnicodeDecodeError:
            raise DecryptionFailed("malformed wrapped key") from None
        match = _VERSION.match(text)
        if match is None or int(match.group(1)) != wrapped.kek_version:
            raise DecryptionFailed("wrapped key does not match its recorded version")

    def rewrap(self, wrapped: WrappedKey, aad: bytes) -> WrappedKey:
        try:
            resp = self._on_wrapped(self._transit.rewrap_data, wrapped, aad)
        except hvac.exceptions.InvalidRequest:
            raise DecryptionFailed("Vault refused to rewrap the data key") from None
        return self._wrapped(resp["data"]["ciphertext"])

    def rotate(self) -> int:
        self._transit.rotate_key(name=self._key, mount_point=self._mount)
        return self.current_version()

    def retire(self, version: int) -> None:
        info = self._key_info()
        minimum, latest = int(info["min_decryption_version"]), int(info["latest_version"])
        if version >= latest:
            raise KeyringError(f"version {version} is current: rotate before retiring it")
        if version != minimum:
            raise KeyringError(
                f"Vault retires versions oldest first: the oldest active version is {minimum}"
            )
        self._transit.update_key_configuration(
            name=self._key, min_decryption_version=version + 1, mount_point=self._mount
        )

    def versions(self) -> list[KeyVersionInfo]:
        info = self._key_info()
        minimum, latest = int(info["min_decryption_version"]), int(info["latest_version"])
        out = []
        for v in range(1, latest + 1):
            status = "current" if v == latest else "active" if v >= minimum else "retired"
            out.append(KeyVersionInfo(version=v, status=status))
        return out
