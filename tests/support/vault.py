"""The credential vault of a test session: its KEK from the environment tests/conftest.py sets."""

from __future__ import annotations

from charter.config.settings import Settings
from charter.storage.credential_vault import CredentialVault


def session_vault() -> CredentialVault:
    return CredentialVault(Settings())
