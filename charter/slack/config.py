"""Slack settings, from the environment (or `.env`). Slack is off until a bot token is set.

The conventional `SLACK_BOT_TOKEN`, `SLACK_SIGNING_SECRET` and `SLACK_APP_TOKEN` work, as do
their `CHARTER_SLACK_` forms, each also as a file (`SLACK_BOT_TOKEN_FILE=/run/secrets/...`).
Secrets are `SecretStr`: they never print.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from charter.config.secret_files import SettingsWithSecretFiles


class SlackConfigError(ValueError):
    pass


class SlackSettings(SettingsWithSecretFiles):
    model_config = SettingsConfigDict(
        env_prefix="CHARTER_SLACK_", env_file=".env", extra="ignore", populate_by_name=True
    )

    bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "CHARTER_SLACK_BOT_TOKEN")
    )
    signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "CHARTER_SLACK_SIGNING_SECRET"),
    )
    app_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "CHARTER_SLACK_APP_TOKEN"),
        description="App-level token (xapp-…), Socket Mode only.",
    )
    mode: Literal["http", "socket"] = "http"
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    path: str = Field(default="/slack/events", pattern=r"^/[A-Za-z0-9/_-]*$")
    api_url: str = Field(
        default="https://slack.com/api/",
        description="Slack Web API base URL (tests point it at a local stand-in).",
    )
    temporal_ui_url: str | None = Field(
        default=None, description="Base of the Temporal UI links on cards; default the embedded UI."
    )

    @model_validator(mode="after")
    def _api_url_slash(self) -> SlackSettings:
        if not self.api_url.endswith("/"):
            self.api_url += "/"
        return self

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None

    def check_for_app(self) -> None:
        """What `charter slack` needs before it starts; a clear error otherwise."""
        if self.bot_token is None:
            raise SlackConfigError("set SLACK_BOT_TOKEN (the bot token, xoxb-…)")
        if self.mode == "http" and self.signing_secret is None:
            raise SlackConfigError("HTTP mode needs SLACK_SIGNING_SECRET to verify requests")
        if self.mode == "socket" and self.app_token is None:
            raise SlackConfigError("Socket Mode needs SLACK_APP_TOKEN (an app-level token, xapp-…)")
