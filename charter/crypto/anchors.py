"""Trust anchors: each tenant's first owner keys, pinned outside the database.

A row in `member_keys` is not a permission: the administrator who can write the database
could swap an owner's public key for one of their own. The worker is therefore given, in its
configuration, the fingerprints of each tenant's first owner keys (`CHARTER_TRUST_ANCHORS`, or
`CHARTER_TRUST_ANCHORS_FILE` naming a mounted file, as for every other secret setting): a JSON
object mapping a tenant id to a list of fingerprints, `sha256:<64 hex>` of the raw Ed25519
public key. An owner key found in the database whose fingerprint the anchor does not list is
named, never trusted.

No anchor configured for a tenant: production refuses (`AnchorMissing`, one line); development
(`make demo`, `charter up`) passes `development=True` and the demo writes one for its tenants.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from charter.audit.canonical import sha256_hex
from charter.config.settings import ConfigurationError, Settings
from charter.crypto.errors import CryptoError

_PREFIX = "sha256:"


class AnchorInvalid(CryptoError, ValueError):
    """The configured trust anchors cannot be read."""


class AnchorMissing(CryptoError):
    """No trust anchor is configured for a tenant outside development."""


def fingerprint(public_key_hex: str) -> str:
    """The fingerprint a trust anchor lists for an Ed25519 public key (raw, hex)."""
    return _PREFIX + sha256_hex(bytes.fromhex(public_key_hex))


def _valid_fingerprint(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith(_PREFIX):
        return False
    digest = value[len(_PREFIX) :]
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


@dataclass(frozen=True)
class TrustAnchors:
    by_tenant: Mapping[str, frozenset[str]]

    @classmethod
    def parse(cls, text: str | None) -> TrustAnchors:
        """`{"<tenant>": ["sha256:<hex>", ...]}`; nothing configured is no anchors."""
        if text is None or not text.strip():
            return cls({})
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnchorInvalid(f"trust anchors are not JSON: {exc.msg}") from None
        if not isinstance(raw, dict):
            raise AnchorInvalid("trust anchors must map each tenant to a list of fingerprints")
        anchors: dict[str, frozenset[str]] = {}
        for tenant, prints in raw.items():
            if not isinstance(prints, list) or not prints:
                raise AnchorInvalid(f"trust anchor of {tenant}: a non-empty list of fingerprints")
            bad = [p for p in prints if not _valid_fingerprint(p)]
            if bad:
                raise AnchorInvalid(
                    f"trust anchor of {tenant}: {bad[0]!r} is not sha256:<64 lowercase hex>"
                )
            anchors[tenant] = frozenset(prints)
        return cls(anchors)

    def dumps(self) -> str:
        """The anchors as configuration text (sorted, so a file written twice is the same)."""
        return json.dumps({t: sorted(p) for t, p in sorted(self.by_tenant.items())}, indent=2)

    def for_tenant(self, tenant_id: str, *, development: bool) -> frozenset[str] | None:
        """The tenant's anchor; `None` only in development, where none is configured."""
        anchor = self.by_tenant.get(tenant_id)
        if anchor is None and not development:
            raise AnchorMissing(
                f"no trust anchor for tenant {tenant_id}: set CHARTER_TRUST_ANCHORS(_FILE) to "
                "its first owner keys' fingerprints"
            )
        return anchor

    def unanchored(
        self, tenant_id: str, owner_keys: Iterable[tuple[str, str]], *, development: bool
    ) -> list[str]:
        """One line for each (key id, public key hex) among the tenant's first owner keys
        that its anchor does not list. Without an anchor (development) nothing is named."""
        anchor = self.for_tenant(tenant_id, development=development)
        if anchor is None:
            return []
        return [
            f"owner key {key_id} of tenant {tenant_id} is not in its trust anchor "
            f"({fingerprint(public_hex)})"
            for key_id, public_hex in owner_keys
            if fingerprint(public_hex) not in anchor
        ]

    def with_tenant(self, tenant_id: str, public_keys_hex: Iterable[str]) -> TrustAnchors:
        """These anchors, and the tenant's given as these keys (the demo's bootstrap)."""
        prints = frozenset(fingerprint(k) for k in public_keys_hex)
        return TrustAnchors({**self.by_tenant, tenant_id: prints})


def configured_anchors(settings: Settings) -> TrustAnchors | None:
    """The trust anchors the configuration pins (CHARTER_TRUST_ANCHORS or its _FILE); `None`
    when none are. Unreadable anchors are a one-line `ConfigurationError`."""
    if settings.trust_anchors is None:
        return None
    try:
        return TrustAnchors.parse(settings.trust_anchors.get_secret_value())
    except AnchorInvalid as exc:
        raise ConfigurationError(str(exc)) from None
