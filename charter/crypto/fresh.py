"""Fresh secrets for a deployment, made once: `charter keys generate`.

Every process of one deployment must hold the same payload keys and KEK (the key canaries
refuse a process that does not), so they are made once, by the operator, and handed to each
service as files (Docker or Kubernetes secrets). Each value is what its setting expects.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping

from charter.crypto import aead
from charter.crypto.keyring import EnvKeyProvider

#: The first payload key's id; the next one after a rotation is `p2`, and so on.
FIRST_PAYLOAD_KEY_ID = "p1"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def fresh_secrets(postgres_host: str, database: str) -> Mapping[str, str]:
    """Secret name -> value: the keys, the codec token, the database passwords and the two
    DSNs built from them (the administrator's for migrations, charter_app's for the rest)."""
    admin_password = secrets.token_urlsafe(24)
    app_password = secrets.token_urlsafe(24)
    where = f"{postgres_host}:5432/{database}"
    return {
        "payload_keys": f"{FIRST_PAYLOAD_KEY_ID}:{_b64(aead.new_key())}",
        "kek": EnvKeyProvider.generate(1),
        "audit_signing_key": _b64(secrets.token_bytes(32)),
        "codec_server_token": secrets.token_urlsafe(32),
        "web_session_secret": secrets.token_urlsafe(48),
        "postgres_password": admin_password,
        "app_db_password": app_password,
        "database_url": f"postgresql://postgres:{admin_password}@{where}",
        "app_database_url": f"postgresql://charter_app:{app_password}@{where}",
    }
