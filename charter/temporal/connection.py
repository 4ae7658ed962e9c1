"""Where Temporal is and how to reach it, the way every Temporal sample does.

`temporalio.envconfig` reads the standard sources: the profile file (`TEMPORAL_CONFIG_FILE`,
default `~/.config/temporalio/temporal.toml`, profile `TEMPORAL_PROFILE`) and the standard
variables over it (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
`TEMPORAL_TLS_*`). So one configuration reaches a dev server, a self-hosted cluster with mTLS
or Temporal Cloud with an API key, for the worker, the starter, the CLI, the Slack app and the
codec server alike. `CHARTER_TEMPORAL_ADDRESS` / `CHARTER_TEMPORAL_NAMESPACE` still work, below
the standard sources.
"""

from __future__ import annotations

import re
from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile

from charter.config.settings import ConfigurationError, Settings
from charter.runtime.telemetry import metrics_runtime
from charter.temporal.plugin import CharterPlugin


def _profile(settings: Settings) -> ClientConfigProfile:
    try:
        return ClientConfigProfile.load(profile=settings.temporal_profile)
    except Exception as exc:  # the native loader raises plain RuntimeErrors
        raise ConfigurationError(f"cannot read the Temporal client profile: {exc}") from None


def configured_address(settings: Settings) -> str | None:
    """The Temporal address the environment names, or None (then only a dev stack may start
    one of its own)."""
    return _profile(settings).address or settings.temporal_address


def configured_namespace(settings: Settings) -> str:
    return _profile(settings).namespace or settings.temporal_namespace


def connect_options(settings: Settings, address: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `Client.connect`: the profile's TLS, API key and metadata, with
    `address` (the embedded stack's) or the configured one."""
    options: dict[str, Any] = dict(_profile(settings).to_client_connect_config())
    target = address or options.get("target_host") or settings.temporal_address
    if target is None:
        raise ConfigurationError(
            "no Temporal address: set TEMPORAL_ADDRESS (or a profile in the Temporal "
            "config file), or run `charter up` for a local stack"
        )
    options["target_host"] = target
    options.setdefault("namespace", settings.temporal_namespace)
    return options


async def connect(settings: Settings, address: str | None = None) -> Client:
    """A client with `CharterPlugin`; an unreachable server is one `ConfigurationError` line."""
    options = connect_options(settings, address)
    if settings.metrics_address:
        options["runtime"] = metrics_runtime(settings.metrics_address)
    try:
        return await Client.connect(**options, plugins=[CharterPlugin.from_settings(settings)])
    except RuntimeError as exc:
        raise ConfigurationError(
            f"cannot reach Temporal at {options['target_host']} "
            f"(namespace {options['namespace']}): {_reason(exc)}"
        ) from None


def _reason(exc: RuntimeError) -> str:
    """The operating system's or server's own words, out of the native client's error
    (`... Os { code: 111, kind: ConnectionRefused, message: "Connection refused" } ...`)."""
    text = str(exc)
    found = re.search(r'message: "([^"]+)"', text)
    if found:
        return found.group(1)
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
