"""Cached runs of a tenant share one copy of the constitution they pinned."""

from __future__ import annotations

import functools

from charter.demo.seed import constitution_source
from charter.governance.constitution import load_yaml
from charter.temporal import shared
from charter.temporal.shared import shared_constitution
from schemas import Constitution, ConstitutionDocument


@functools.cache
def _acme() -> ConstitutionDocument:
    return load_yaml(constitution_source("acme"))  # parsed once: hundreds of copies follow


def _constitution(version: int = 1, content_hash: str = "ab" * 32) -> Constitution:
    return Constitution(
        tenant_id="acme", version=version, content_hash=content_hash, document=_acme()
    )


def test_equal_constitutions_are_held_once() -> None:
    first = shared_constitution(_constitution())
    again = _constitution()
    assert again is not first and again == first
    assert shared_constitution(again) is first


def test_another_version_or_content_is_its_own() -> None:
    first = shared_constitution(_constitution())
    other = _constitution(version=2)
    assert shared_constitution(other) is other
    # Same key, different content (it cannot happen with real hashes): never substituted.
    same = _constitution()
    forged = same.model_copy(update={"document": same.document.model_copy(update={"rules": []})})
    assert forged != first
    assert shared_constitution(forged) is forged


def test_the_cache_is_bounded() -> None:
    for version in range(1, shared.MAX_CONSTITUTIONS + 10):
        shared_constitution(_constitution(version=version, content_hash=f"{version:064x}"))
    assert len(shared._constitutions) == shared.MAX_CONSTITUTIONS
