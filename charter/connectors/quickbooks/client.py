"""QuickBooks Online settings, its OAuth client, and refreshing an expiring access token.

python-quickbooks (over intuit-oauth) is synchronous; calls run in a worker thread. Both
can address another host without patching: intuit-oauth takes the URL of an OpenID
discovery document as its `environment` (which names the token endpoint), and a
QuickBooks client's `api_url_v3` is an attribute. That is how tests reach the stand-in.

Credentials, both in the encrypted store: `quickbooks` (OAuth access and refresh token,
rotated on every refresh) and `quickbooks-app` (the app's client secret, as an API key).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException
from requests import RequestException

from charter.connectors.base import ConnectorAuthError, ConnectorError, ProviderUnavailable
from charter.storage.credential_vault import Credential, CredentialSecret

PROVIDER = "quickbooks"
APP_CREDENTIAL = "quickbooks-app"
_REFRESH_MARGIN = timedelta(minutes=5)
#: Intuit's error code for a throttled request (HTTP 429, ThrottleExceeded).
_THROTTLED = 3001
#: Intuit's "an application error has occurred" (HTTP 500 and the like): transient, retry.
#: python-quickbooks gives the same code to an answer that is not JSON or not 200 without
#: a Fault (a gateway's 502 page).
_TRANSIENT = 10000


class QuickBooksSettings(BaseModel):
    """Per-tenant settings. The client id identifies the app; its secret is a credential."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    realm_id: str = Field(min_length=1, description="The QuickBooks company id.")
    client_id: str = Field(min_length=1)
    environment: str = Field(
        default="production",
        description="production, sandbox, or the URL of an OpenID discovery document.",
    )
    api_url: str | None = Field(default=None, description="Only for a stand-in or a proxy.")
    minor_version: int = Field(default=75, ge=75)
    payment_account_id: str | None = Field(
        default=None,
        description="The QuickBooks bank account (Id) a bill payment is recorded from; "
        "without it Charter records no BillPayment and says so.",
    )


def qbo_client(settings: QuickBooksSettings, tokens: Credential, app: Credential) -> QuickBooks:
    """A python-quickbooks client over a fresh access token. Built in a worker thread."""
    client = QuickBooks(
        auth_client=auth_client(settings, tokens.secret, app),
        refresh_token=None,
        company_id=settings.realm_id,
        minorversion=settings.minor_version,
        use_decimal=True,
    )
    if settings.api_url:
        client.api_url_v3 = settings.api_url.rstrip("/") + "/v3"
    return client


@contextmanager
def translated(tokens: Credential) -> Iterator[None]:
    """python-quickbooks' errors as the connector's: a rejected token, Intuit turning the
    request away for now (throttled, its transient fault 10000, a network error), or a
    request it refused."""
    try:
        yield
    except AuthorizationException:
        raise ConnectorAuthError(
            f"QuickBooks rejected credential {tokens.credential_id} (401)"
        ) from None
    except QuickbooksException as exc:
        code = exc.error_code if isinstance(exc.error_code, int) else 0
        if code in (_THROTTLED, _TRANSIENT) or code > _TRANSIENT:
            raise ProviderUnavailable(f"QuickBooks: {exc.message} ({code})") from None
        raise ConnectorError(f"QuickBooks: {exc.message} ({exc.error_code})") from None
    except RequestException as exc:
        raise ProviderUnavailable(f"QuickBooks: {type(exc).__name__}") from None


def auth_client(
    settings: QuickBooksSettings, tokens: CredentialSecret, app: Credential
) -> AuthClient:
    """Built in a worker thread: intuit-oauth fetches its discovery document here."""
    secret = app.secret.api_key
    if secret is None:
        raise ConnectorAuthError(f"credential {app.credential_id} is not the app's client secret")
    return AuthClient(
        client_id=settings.client_id,
        client_secret=secret.get_secret_value(),
        redirect_uri="",
        environment=settings.environment,
        access_token=tokens.access_token.get_secret_value() if tokens.access_token else None,
        refresh_token=tokens.refresh_token.get_secret_value() if tokens.refresh_token else None,
    )


def _refresh(
    settings: QuickBooksSettings, tokens: CredentialSecret, app: Credential
) -> CredentialSecret:
    client = auth_client(settings, tokens, app)
    client.refresh()
    return CredentialSecret(
        access_token=SecretStr(client.access_token),
        refresh_token=SecretStr(client.refresh_token),
        expires_at=datetime.now(UTC) + timedelta(seconds=int(client.expires_in)),
    )


def expiring(tokens: Credential) -> bool:
    """Whether the access token must be refreshed before use (it expires within minutes)."""
    secret = tokens.secret
    if secret.kind != "oauth" or secret.refresh_token is None:
        raise ConnectorAuthError(f"credential {tokens.credential_id} is not an OAuth token set")
    return secret.expires_at is None or secret.expires_at - _REFRESH_MARGIN <= datetime.now(UTC)


async def refreshed(
    store: Callable[[Credential, CredentialSecret], Awaitable[Credential]],
    settings: QuickBooksSettings,
    tokens: Credential,
    app: Credential,
) -> Credential:
    """The token credential, refreshed first if it expires within minutes.

    Intuit rotates the refresh token on every refresh: the new pair is stored, encrypted,
    before it is used (`store`, a transaction of its own opened after the token endpoint
    answered), so a failure afterwards does not lose it.
    """
    secret = tokens.secret
    if not expiring(tokens):
        return tokens
    try:
        fresh = await asyncio.to_thread(_refresh, settings, secret, app)
    except AuthClientError as exc:
        status = getattr(exc, "status_code", 0)
        if status == 429 or status >= 500:
            # The token endpoint is down or busy: the token may still be good. Retry.
            raise ProviderUnavailable(
                f"QuickBooks token endpoint answered {status}; retrying"
            ) from None
        # 400 invalid_grant: the refresh token was revoked or has expired for good.
        raise ConnectorAuthError(
            f"QuickBooks refused to refresh credential {tokens.credential_id} ({status}); "
            "reconnect the company and add a new credential"
        ) from None
    except RequestException as exc:
        raise ProviderUnavailable(f"QuickBooks token endpoint: {type(exc).__name__}") from None
    return await store(tokens, fresh)
