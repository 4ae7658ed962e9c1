"""Talking to Modern Treasury: settings, the SDK client, and what its errors mean for us.

The SDK retries 408/409/429/5xx and timeouts itself (`max_retries`), honouring
Retry-After, and re-sends a POST with the same Idempotency-Key. What is still failing after
its retries is translated here into what the act activity must do about it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import modern_treasury as mt
from pydantic import BaseModel, ConfigDict, Field

from charter.connectors.base import (
    ActionRefusedByBooks,
    ConnectorAuthError,
    ConnectorError,
    OutcomeUnknown,
    ProviderUnavailable,
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
    max_retries: int = Field(default=2, ge=0, le=5)


def client(settings: ModernTreasurySettings, credential: Credential) -> mt.AsyncModernTreasury:
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
        max_retries=settings.max_retries,
    )


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
        raise ConnectorAuthError(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
    except (mt.RateLimitError, mt.ConflictError) as exc:
        raise ProviderUnavailable(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
    except mt.InternalServerError as exc:
        # A 5xx on a write may come after the write was applied.
        if writing:
            raise OutcomeUnknown(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
        raise ProviderUnavailable(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
    except (mt.BadRequestError, mt.NotFoundError, mt.UnprocessableEntityError) as exc:
        if writing:
            raise ActionRefusedByBooks(
                f"Modern Treasury refused {what}: {_provider_message(exc)}"
            ) from None
        raise ConnectorError(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
    except mt.APIStatusError as exc:
        raise ConnectorError(f"Modern Treasury: {what}: {_provider_message(exc)}") from None
