"""Trust anchors: the owner keys a tenant's authority verifies back to, pinned in configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.config.settings import Settings
from charter.crypto.anchors import AnchorInvalid, AnchorMissing, TrustAnchors, fingerprint
from charter.crypto.statements import key_id_for, public_hex


def _public() -> str:
    return public_hex(Ed25519PrivateKey.generate())


def test_a_swapped_owner_key_is_named_and_the_anchored_one_is_not() -> None:
    first, swapped = _public(), _public()
    anchors = TrustAnchors({}).with_tenant("acme", [first])
    found = anchors.unanchored(
        "acme",
        [(key_id_for(first), first), (key_id_for(swapped), swapped)],
        development=False,
    )
    assert len(found) == 1
    assert key_id_for(swapped) in found[0] and fingerprint(swapped) in found[0]


def test_production_refuses_a_tenant_without_an_anchor_development_does_not() -> None:
    anchors = TrustAnchors.parse(None)
    with pytest.raises(AnchorMissing, match="no trust anchor for tenant acme"):
        anchors.for_tenant("acme", development=False)
    assert anchors.unanchored("acme", [("mk-x", _public())], development=True) == []


def test_the_written_anchors_read_back_the_same() -> None:
    key = _public()
    anchors = TrustAnchors({}).with_tenant("acme", [key])
    again = TrustAnchors.parse(anchors.dumps())
    assert again == anchors
    assert again.by_tenant["acme"] == frozenset({fingerprint(key)})
    assert fingerprint(key).startswith("sha256:") and len(fingerprint(key)) == 71


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "map each tenant"),
        ('{"acme": []}', "non-empty list"),
        ('{"acme": ["md5:abc"]}', "is not sha256"),
        ('{"acme": ["sha256:' + "A" * 64 + '"]}', "is not sha256"),
    ],
)
def test_unreadable_anchors_are_a_one_line_refusal(text: str, message: str) -> None:
    with pytest.raises(AnchorInvalid, match=message) as caught:
        TrustAnchors.parse(text)
    assert "\n" not in str(caught.value)


def test_the_anchors_are_read_from_a_file_through_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _public()
    path = tmp_path / "anchors.json"
    path.write_text(TrustAnchors({}).with_tenant("acme", [key]).dumps(), encoding="utf-8")
    monkeypatch.delenv("CHARTER_TRUST_ANCHORS", raising=False)
    monkeypatch.setenv("CHARTER_TRUST_ANCHORS_FILE", str(path))
    configured = Settings(_env_file=None).trust_anchors  # type: ignore[call-arg]
    assert configured is not None
    anchors = TrustAnchors.parse(configured.get_secret_value())
    assert anchors.for_tenant("acme", development=False) == frozenset({fingerprint(key)})
