"""Settings given as files: `<VARIABLE>_FILE` names a file holding the setting's value.

Meant for secrets — keys, tokens, DSNs with their passwords — but any setting may be given so.

The convention of the official PostgreSQL and Temporal images, and what Docker's and
Kubernetes' mounted secrets are for: the value never sits in the process's environment
(where `docker inspect`, `/proc/<pid>/environ` and crash reports show it). A variable that
is set wins over its `_FILE`; an empty file is no value; a `_FILE` that cannot be read is a
one-line refusal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource


class SecretFileUnreadable(ValueError):
    """A `_FILE` variable names a file that cannot be read."""


def variable_names(settings_cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    """The environment variables a field is read from (its aliases, else prefix + name)."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    return [f"{prefix}{name}".upper()]


def read_secret_file(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretFileUnreadable(
            f"{variable}_FILE={path}: cannot read it ({exc.strerror or type(exc).__name__})"
        ) from None


class SecretFilesSource(PydanticBaseSettingsSource):
    """Every field of the settings class, from `<its variable>_FILE` when that is set."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        names = variable_names(self.settings_cls, field_name, field)
        # An aliased field is validated by its alias, like the environment's value would be.
        key = names[0] if field.validation_alias is not None else field_name
        for variable in names:
            path = os.environ.get(f"{variable}_FILE")
            if path:
                # An empty file is an unset setting, as an empty variable is (say, no
                # ANTHROPIC_API_KEY: the offline reasoner).
                return read_secret_file(variable, path) or None, key, False
        return None, key, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                found[key] = value
        return found


class SettingsWithSecretFiles(BaseSettings):
    """Settings that may come from `_FILE` variables: a variable that is set wins
    over its `_FILE`, and both over `.env`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, SecretFilesSource(settings_cls), dotenv_settings)
