"""The web inbox's settings, from the environment (or `.env`), `CHARTER_WEB_` prefixed.

The origin is what passkeys are bound to: a passkey enrolled at one origin signs only there,
and every assertion is verified against the origin and relying party id recorded with it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from charter.config.secret_files import SettingsWithSecretFiles


class WebConfigError(ValueError):
    pass


#: Hosts a browser treats as a secure context over plain HTTP (WebAuthn needs one).
_LOOPBACK = ("localhost", "127.0.0.1")


class WebSettings(SettingsWithSecretFiles):
    model_config = SettingsConfigDict(env_prefix="CHARTER_WEB_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8300, ge=0, le=65535)
    origin: str | None = Field(
        default=None,
        description="The public origin founders open (https://inbox.example.com); default "
        "http://localhost:<port>. Passkeys are bound to it.",
    )
    rp_name: str = Field(default="Charter", min_length=1, max_length=64)
    session_secret: SecretStr | None = Field(
        default=None,
        description="Signs session cookies; set it when more than one process serves the "
        "inbox (default: a random secret per process, so a restart signs everyone out).",
    )
    session_minutes: int = Field(default=60, ge=5, le=24 * 60)
    temporal_ui_url: str | None = Field(
        default=None, description="Base of the Temporal UI links; default the embedded UI."
    )

    def public_origin(self) -> str:
        return (self.origin or f"http://localhost:{self.port}").rstrip("/")

    def rp_id(self) -> str:
        return urlsplit(self.public_origin()).hostname or "localhost"

    def check(self) -> None:
        """What `charter web` needs before it starts; one clear line otherwise."""
        parts = urlsplit(self.public_origin())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebConfigError(
                f"CHARTER_WEB_ORIGIN {self.public_origin()!r} is not an http(s) origin"
            )
        if parts.path or parts.query or parts.fragment:
            raise WebConfigError("CHARTER_WEB_ORIGIN is an origin only: no path, query or fragment")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise WebConfigError(
                "CHARTER_WEB_ORIGIN must be https:// (passkeys work over plain HTTP on "
                "localhost only)"
            )
        secret = self.session_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise WebConfigError("CHARTER_WEB_SESSION_SECRET must be at least 32 characters")
