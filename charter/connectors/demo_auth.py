"""How the demo bank and ad platform authenticate Charter: scoped credentials.

The demo bank (`demo-bank`) takes API keys, one read key and one write key; the demo ad
platform (`demo-ads`) takes OAuth access tokens that expire and are refreshed with a refresh
token (which rotates on every refresh, as most providers do). Values are clearly fake —
`demo_…` prefixes, random bodies — but shaped like the real thing, so the redaction filter
and the encryption are exercised exactly as they would be.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import asyncpg

from charter.connectors.base import ConnectorAuthError, ConnectorError
from charter.crypto.envelope import Scope
from charter.storage.credential_vault import (
    Credential,
    CredentialError,
    CredentialSecret,
    ScopedCredentials,
)

BANK = "demo-bank"
ADS = "demo-ads"

#: Which connectors each agent's read needs, and which connector performs each action.
READ_CONNECTORS: dict[str, tuple[str, ...]] = {
    "payables": (BANK,),
    "payroll": (BANK,),
    "marketing": (BANK, ADS),
}
WRITE_CONNECTOR: dict[str, str] = {
    "schedule_payment": BANK,
    "run_payroll": BANK,
    "adjust_campaign_budget": ADS,
    "pause_campaign": ADS,
}

_ACCESS_TTL = timedelta(hours=1)
_REFRESH_MARGIN = timedelta(minutes=2)

__all__ = ["ADS", "BANK", "ConnectorAuthError", "authenticate", "demo_secret", "obtain", "refresh"]


def _body() -> str:
    return secrets.token_hex(16)


def demo_secret(connector: str, scope: Scope, *, expired: bool = False) -> CredentialSecret:
    """A fresh fake credential of the right shape for `connector` and `scope`."""
    s = "rk" if scope == "read" else "wk"
    if connector == BANK:
        return CredentialSecret(api_key=f"demo_bank_{s}_{_body()}")
    if connector == ADS:
        now = datetime.now(UTC)
        return CredentialSecret(
            access_token=f"demo_ads_at{s[0]}_{_body()}",
            refresh_token=f"demo_ads_rt{s[0]}_{_body()}",
            expires_at=now - timedelta(minutes=5) if expired else now + _ACCESS_TTL,
        )
    raise ConnectorError(f"unknown demo connector {connector!r}")


def authenticate(credential: Credential, connector: str, scope: Scope) -> None:
    """What the provider's API would check. Raises without echoing the secret."""
    info, secret = credential.info, credential.secret
    where = f"credential {info.credential_id}"
    if info.connector != connector:
        raise ConnectorAuthError(f"{where} belongs to {info.connector}, not {connector}")
    if info.scope != scope:
        raise ConnectorAuthError(f"{where} is {info.scope}-scoped; {connector} needs {scope}")
    s = "rk" if scope == "read" else "wk"
    if connector == BANK:
        key = secret.api_key.get_secret_value() if secret.api_key else ""
        if not key.startswith(f"demo_bank_{s}_"):
            raise ConnectorAuthError(f"{where} is not a valid {scope} API key for {connector}")
        return
    token = secret.access_token.get_secret_value() if secret.access_token else ""
    if not token.startswith(f"demo_ads_at{s[0]}_"):
        raise ConnectorAuthError(f"{where} is not a valid {scope} token for {connector}")
    if secret.expires_at is None or secret.expires_at <= datetime.now(UTC):
        raise ConnectorAuthError(f"{where}: access token expired")


def refresh(credential: Credential) -> CredentialSecret:
    """The demo ad platform's token endpoint: a new access token and a rotated refresh token."""
    secret = credential.secret
    old = secret.refresh_token.get_secret_value() if secret.refresh_token else ""
    s = "r" if credential.scope == "read" else "w"
    if not old.startswith(f"demo_ads_rt{s}_"):
        raise ConnectorAuthError(f"credential {credential.credential_id}: refresh token rejected")
    return CredentialSecret(
        access_token=f"demo_ads_at{s}_{_body()}",
        refresh_token=f"demo_ads_rt{s}_{_body()}",
        expires_at=datetime.now(UTC) + _ACCESS_TTL,
    )


async def obtain(
    holder: ScopedCredentials, conn: asyncpg.Connection, tenant_id: str, connector: str
) -> Credential:
    """The tenant's credential for `connector` in the holder's scope, refreshed if needed.

    The refresh happens here, inside the activity, and the new tokens are stored encrypted
    before they are used.
    """
    try:
        credential = await holder.obtain_for(conn, tenant_id, connector)
        secret = credential.secret
        if secret.kind == "oauth" and (
            secret.expires_at is None or secret.expires_at - _REFRESH_MARGIN <= datetime.now(UTC)
        ):
            credential = await holder.replace_secret(conn, credential, refresh(credential))
    except CredentialError as exc:
        raise ConnectorAuthError(str(exc)) from None
    authenticate(credential, connector, holder.scope)
    return credential
