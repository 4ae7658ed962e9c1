"""Key-encryption-key providers: the interface, and how Charter picks one.

A provider wraps and unwraps data keys under a versioned key-encryption key (KEK) and never
hands the KEK itself out. Three ship with Charter:

- `local`: a keyring file under the state directory (mode 0600, generated on first run) —
  development only (`make demo`, `charter up`, `charter stack`);
- `env`: KEK versions from the `CHARTER_KEK` environment variable (`1:<base64>,2:<base64>`);
- `vault`: HashiCorp Vault's transit engine, through `hvac` (the KEK never leaves Vault).

A cloud KMS (AWS KMS, GCP KMS, Azure Key Vault) or Supabase Vault plugs in by implementing
`KeyProvider`: `wrap` = the service's Encrypt with the associated data as encryption
context, `rewrap` = ReEncrypt, `rotate` = create a key version, `retire` = disable one.
"""

from __future__ import annotations

from charter.config.settings import ConfigurationError, Settings
from charter.crypto.codec import default_payload_keyring
from charter.crypto.errors import CryptoError
from charter.crypto.kek import KeyProvider, KeyVersionInfo, WrappedKey
from charter.crypto.keyring import EnvKeyProvider, LocalKeyProvider, keyring_file
from charter.crypto.vault import VaultTransitProvider

__all__ = [
    "KeyProvider",
    "KeyVersionInfo",
    "WrappedKey",
    "default_key_provider",
    "require_configured_keys",
]


def default_key_provider(settings: Settings) -> KeyProvider:
    """The provider the configuration names (`CHARTER_KEY_PROVIDER`), else a sensible one:
    `env` when `CHARTER_KEK` is set, else (in development only) the local keyring file."""

    kind = settings.key_provider or ("env" if settings.kek else "local")
    if kind == "env":
        if settings.kek is None:
            raise ConfigurationError("CHARTER_KEY_PROVIDER=env needs CHARTER_KEK")
        return EnvKeyProvider.parse(settings.kek.get_secret_value())
    if kind == "vault":
        return VaultTransitProvider.from_settings(settings)
    if kind == "local":
        if not settings.development:
            raise ConfigurationError(
                "CHARTER_KEK (or CHARTER_KEK_FILE, or CHARTER_KEY_PROVIDER=vault) is not set: "
                "credentials must be wrapped under one configured key-encryption key (make one "
                "with `charter keys generate`); only `make demo`, `charter up` and `charter "
                "stack` keep a development keyring"
            )
        return LocalKeyProvider(keyring_file(settings))
    raise ConfigurationError(f"unknown CHARTER_KEY_PROVIDER {kind!r}: use local, env or vault")


def require_configured_keys(settings: Settings) -> None:
    """Refuse to start, in one line, without usable payload keys and a KEK provider."""
    try:
        default_payload_keyring(settings)
        default_key_provider(settings)
    except CryptoError as exc:
        raise ConfigurationError(str(exc)) from None
