"""Envelope encryption and the KEK providers: round trip, tamper, binding, rotation."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import hvac
import pytest

from charter.crypto import DecryptionFailed, KeyringError, KeyVersionUnavailable
from charter.crypto.envelope import Sealed, credential_aad, open_sealed, rewrap, seal
from charter.crypto.keyring import EnvKeyProvider, KeyringFile, LocalKeyProvider
from charter.crypto.providers import KeyProvider
from charter.crypto.vault import VaultTransitProvider
from tests.support.standins.vault_transit import fake_vault

SECRET = b'{"api_key":"demo_bank_rk_0123456789abcdef0123456789abcdef"}'
AAD = credential_aad("acme", "cred-0001", "read")


def flip(data: bytes, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.fixture
def local(tmp_path: Path) -> LocalKeyProvider:
    return LocalKeyProvider(KeyringFile(tmp_path / "state" / "keyring.json"))


def test_round_trip_and_fresh_data_key_per_record(local: LocalKeyProvider) -> None:
    a, b = seal(local, SECRET, AAD), seal(local, SECRET, AAD)
    assert open_sealed(local, a, AAD) == SECRET
    assert a.wrapped_key != b.wrapped_key and a.ciphertext != b.ciphertext
    stored = a.wrapped_key + a.nonce + a.ciphertext + a.tag
    assert SECRET not in stored and b"demo_bank" not in stored


@pytest.mark.parametrize("part", ["ciphertext", "tag", "nonce", "wrapped_key"])
@pytest.mark.parametrize("bit", [0, 7, 77])
def test_one_flipped_bit_fails_closed(local: LocalKeyProvider, part: str, bit: int) -> None:
    sealed = seal(local, SECRET, AAD)
    value: bytes = getattr(sealed, part)
    tampered = sealed.model_copy(update={part: flip(value, bit % (len(value) * 8))})
    with pytest.raises(DecryptionFailed):
        open_sealed(local, tampered, AAD)


@pytest.mark.parametrize(
    "other",
    [
        credential_aad("initech", "cred-0001", "read"),  # another tenant
        credential_aad("acme", "cred-0002", "read"),  # another record
        credential_aad("acme", "cred-0001", "write"),  # another scope
    ],
)
def test_moved_ciphertext_fails(local: LocalKeyProvider, other: bytes) -> None:
    sealed = seal(local, SECRET, AAD)
    with pytest.raises(DecryptionFailed):
        open_sealed(local, sealed, other)
    # Even with the data key re-wrapped for the target, the ciphertext stays bound.
    target = seal(local, b"x", other)
    grafted = sealed.model_copy(update={"wrapped_key": target.wrapped_key})
    with pytest.raises(DecryptionFailed):
        open_sealed(local, grafted, other)


def test_keyring_file_generated_0600_and_refused_when_readable(tmp_path: Path) -> None:
    path = tmp_path / "s" / "keyring.json"
    provider = LocalKeyProvider(KeyringFile(path))
    assert provider.current_version() == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    provider.rotate()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # rewritten atomically, same mode
    os.chmod(path, 0o644)
    with pytest.raises(KeyringError, match="readable by others"):
        LocalKeyProvider(KeyringFile(path)).current_version()


def rotation_matrix(provider: KeyProvider) -> None:
    """Old version present: decrypts; new writes use the new version; retired: fails."""
    old = seal(provider, SECRET, AAD)
    v1 = old.kek_version
    v2 = provider.rotate()
    assert v2 == v1 + 1 and provider.current_version() == v2
    assert open_sealed(provider, old, AAD) == SECRET  # old version still present
    new = seal(provider, SECRET, AAD)
    assert new.kek_version == v2  # new writes use the new version
    moved = rewrap(provider, old, AAD)
    assert moved.kek_version == v2 and moved.ciphertext == old.ciphertext
    assert open_sealed(provider, moved, AAD) == SECRET
    with pytest.raises(KeyringError):
        provider.retire(v2)  # the current version cannot be retired
    provider.retire(v1)
    with pytest.raises(KeyVersionUnavailable):
        open_sealed(provider, old, AAD)  # retired: fails
    assert open_sealed(provider, moved, AAD) == SECRET
    statuses = {v.version: v.status for v in provider.versions()}
    assert statuses == {v1: "retired", v2: "current"}


def test_rotation_matrix_local(local: LocalKeyProvider) -> None:
    rotation_matrix(local)


def test_local_keyring_seen_by_other_process_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    worker, operator = LocalKeyProvider(KeyringFile(path)), LocalKeyProvider(KeyringFile(path))
    worker.current_version()
    operator.rotate()
    sealed = seal(operator, SECRET, AAD)
    assert open_sealed(worker, sealed, AAD) == SECRET  # reloads on change


def test_env_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = EnvKeyProvider.generate(1)
    old = seal(EnvKeyProvider.parse(v1), SECRET, AAD)
    both = EnvKeyProvider.parse(v1 + "," + EnvKeyProvider.generate(2))
    assert both.current_version() == 2
    assert open_sealed(both, old, AAD) == SECRET
    assert rewrap(both, old, AAD).kek_version == 2
    only_new = EnvKeyProvider.parse(both_text := v1.replace("1:", "9:", 1))
    assert only_new.current_version() == 9 and both_text
    with pytest.raises(KeyVersionUnavailable):
        open_sealed(only_new, old, AAD)
    with pytest.raises(KeyringError):
        both.rotate()


@pytest.mark.parametrize("text", ["1:notbase64!!", "1:" + "QUJD", "x", "one:" + "A" * 44])
def test_env_provider_bad_values_never_echo_the_key(text: str) -> None:
    with pytest.raises(KeyringError) as err:
        EnvKeyProvider.parse(text)
    assert text.split(":", 1)[-1] not in str(err.value) or len(text) < 3


def test_vault_transit_provider_through_hvac() -> None:
    with fake_vault() as (url, state):
        provider = VaultTransitProvider(hvac.Client(url=url, token="hvs.test-root-token-0000"))
        provider.ensure_key()
        sealed = seal(provider, SECRET, AAD)
        assert sealed.wrapped_key.startswith(b"vault:v1:")
        assert open_sealed(provider, sealed, AAD) == SECRET
        # The context binds the wrapped key: another record's context fails in Vault.
        with pytest.raises(DecryptionFailed):
            open_sealed(provider, sealed, credential_aad("acme", "cred-0001", "write"))
        with pytest.raises(DecryptionFailed):
            open_sealed(provider, sealed.model_copy(update={"tag": flip(sealed.tag)}), AAD)
        # A wrapped key whose prefix disagrees with the recorded version is refused locally.
        with pytest.raises(DecryptionFailed):
            open_sealed(provider, sealed.model_copy(update={"kek_version": 2}), AAD)
        rotation_matrix(provider)
        # Rewrapping went through Vault's rewrap endpoint: the data key never left Vault.
        assert any("/rewrap/" in r for r in state.requests)
        provider.rotate()
        provider.rotate()
        with pytest.raises(KeyringError, match="oldest first"):
            provider.retire(3)  # version 2 is still the oldest active one


def test_vault_wrong_token_is_refused() -> None:
    with fake_vault() as (url, _):
        provider = VaultTransitProvider(hvac.Client(url=url, token="hvs.wrong"))
        with pytest.raises(hvac.exceptions.Forbidden):
            provider.ensure_key()


def test_sealed_model_is_bytes_only() -> None:
    fields = set(Sealed.model_fields)
    assert fields == {"kek_version", "wrapped_key", "nonce", "ciphertext", "tag"}
    assert json.loads(credential_aad("a", "b", "read")) == [
        "charter-credential/1",
        "a",
        "b",
        "read",
    ]
