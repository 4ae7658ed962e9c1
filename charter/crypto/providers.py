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

from charter.config.settings import Settings
from charter.crypto.kek import KeyProvider, KeyVersionInfo, WrappedKey
from charter.crypto.keyring import EnvKeyProvider, LocalKeyProvider, keyring_file
from charter.crypto.vault import VaultTransitProvider

__all__ = ["KeyProvider", "KeyVersionInfo", "WrappedKey", "default_key_provider"]


def default_key_provider(settings: Settings) -> KeyProvider:
    """The provider the configuration names (`CHARTER_KEY_PROVIDER`), else a sensible one:
    `env` when `CHARTER_KEK` is set, else the local keyring file."""

    kind = settings.key_provider or ("env" if settings.kek else "local")
    if kind == "env":
        if settings.kek is None:
            raise ValueError("CHARTER_KEY_PROVIDER=env needs CHARTER_KEK")
        return EnvKeyProvider.parse(settings.kek.get_secret_value())
    if kind == "vault":
        return VaultTransitProvider.from_settings(settings)
    if kind == "local":
        return LocalKeyProvider(keyring_file(settings))
    raise ValueError(f"unknown CHARTER_KEY_PROVIDER {kind!r}: use local, env or vault")
