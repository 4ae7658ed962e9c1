"""Talking to Modern Treasury: settings, the SDK client, and what its errors mean for us.

The SDK retries 408/409/429/5xx and timeouts itself (`max_retries`), re-sending a POST
with the same Idempotency-Key. Modern Treasury saves a key's result only once the request
has completed, and forgets it after 24 hours: a re-sent POST after a dropped answer can
make a second order. So the client that writes never retries (`max_retries=0`); Charter
retries, looking the write up first (`activities._provider_writes`). Reads keep the SDK's
retries. What fails is translated here into what the act activity must do about it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Literal

import modern_treasury as mt
from pydantic import BaseModel, ConfigDict, Field

from charter.connectors.base import (
    ConnectorAuthError,
    ConnectorError,
    KeyLifetime,
    OutcomeUnknown,
    ProviderRefused,
    ProviderUnavailable,
    retry_after,
)
from charter.storage.credential_vault import Credential

PROVIDER = "modern-treasury"
#: Name of the credential records (read and write scope) in the encrypted store.
CREDENTIAL_CONNECTOR = PROVIDER


class ModernTreasurySettings(BaseModel):
    """Per-tenant settings (`charter connectors add ... --set key=value`). No secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organization_id: str = Field(min_length=1)
    originating_account_id: str = Field(
        min_length=1, description="The internal account vendor payments are made from."
    )
    base_url: str | None = Field(default=None, description="Only for a stand-in or a proxy.")
    payment_type: Literal["ach", "wire", "book"] = "ach"
    timeout: float = Field(default=30.0, gt=0, le=120)
    max_retries: int = Field(
        default=2, ge=0, le=5, description="The SDK's own retries, for reads only."
    )
    key_retention_hours: float = Field(
        default=24.0, gt=0, le=24 * 30, description="How long the provider holds a key."
    )
    key_retention_margin_minutes: float = Field(
        default=60.0, ge=0, description="Taken off the retention before relying on it."
    )
    list_lag_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="How long a new order may be missing from the provider's lists.",
    )

    def key_lifetime(self) -> KeyLifetime:
        retention = timedelta(hours=self.key_retention_hours) - timedelta(
            minutes=self.key_retention_margin_minutes
        )
        return KeyLifetime(
            retention=max(retention, timedelta(0)),
            # A request's write may land until its timeout, and show in lists after the lag.
            list_lag=timedelta(seconds=self.list_lag_seconds + self.timeout),
        )


def client(
    settings: ModernTreasurySettings, credential: Credential, *, writing: bool = False
) -> mt.AsyncModernTreasury:
    key = credential.secret.api_key
    if key is None:
        raise ConnectorAuthError(
            f"credential {credential.credential_id} is not an API key; Modern Treasury needs one"
        )
    return mt.AsyncModernTreasury(
        api_key=key.get_secret_value(),
        organization_id=settings.organization_id,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=0 if writing else settings.max_retries,
    )


def _provider_error(exc: mt.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = body.get("errors")
    if isinstance(errors, dict) and isinstance(errors.get("message"), str):
        parameter = errors.get("parameter")
        where = f" ({parameter})" if isinstance(parameter, str) else ""
        return f"{errors.get('code', '')}: {errors['message']}{where}"
    return ""


def _provider_message(exc: mt.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = body.get("errors")
    if isinstance(errors, dict) and isinstance(errors.get("message"), str):
        return f"{exc.status_code} {errors.get('code', '')}: {errors['message']}"
    return f"{exc.status_code}"


@contextmanager
def translated(what: str, *, writing: bool) -> Iterator[None]:
    """Map the SDK's exceptions onto the connector's, keeping the provider's own message."""
    try:
        yield
    except mt.APIConnectionError as exc:  # includes APITimeoutError
        if writing:
            raise OutcomeUnknown(
                f"Modern Treasury: {what}: no answer ({type(exc).__name__})"
            ) from None
        raise ProviderUnavailable(f"Modern Treasury: {what}: {type(exc).__name__}") from None
    except (mt.AuthenticationError, mt.PermissionDeniedError) as exc:
        if writing:
            raise _refused(what, exc) from None
        raise ConnectorAuthError(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
    except (mt.RateLimitError, mt.ConflictError) as exc:
        raise ProviderUnavailable(
            f"Modern Treasury: {what}: {_provider_message(exc)}",
            retry_after=retry_after(exc.response.headers.get("retry-after")),
        ) from None
    except mt.InternalServerError as exc:
        # A 5xx on a write may come after the write was applied.
        if writing:
            raise OutcomeUnknown(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
        raise ProviderUnavailable(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
    except (mt.BadRequestError, mt.NotFoundError, mt.UnprocessableEntityError) as exc:
        if writing:
            raise _refused(what, exc) from None
        raise ConnectorError(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
    except mt.APIStatusError as exc:
        if writing and 400 <= exc.status_code < 500:
            raise _refused(what, exc) from None
        raise ConnectorError(f"Modern Treasury: {what}: {_provider_message(exc)}") from None


def _refused(what: str, exc: mt.APIStatusError) -> ProviderRefused:
    """A client error at a write: nothing applied, and a human must see why."""
    return ProviderRefused(
        f"Modern Treasury refused {what}: {_provider_message(exc)}",
        status=exc.status_code,
        provider_error=_provider_error(exc),
    )
