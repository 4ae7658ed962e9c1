"""Custom search attributes: how the Temporal UI filters Charter runs. Public contract."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TENANT = SearchAttributeKey.for_keyword("CharterTenant")
AGENT = SearchAttributeKey.for_keyword("CharterAgent")
STAGE = SearchAttributeKey.for_keyword("CharterStage")
OUTCOMES = SearchAttributeKey.for_keyword_list("CharterOutcomes")
ACTION_TYPES = SearchAttributeKey.for_keyword_list("CharterActionTypes")

ALL = (TENANT, AGENT, STAGE, OUTCOMES, ACTION_TYPES)


def cli_flags() -> list[str]:
    """`--search-attribute` flags for `temporal server start-dev`."""
    keyword = {TENANT.name, AGENT.name, STAGE.name}
    flags: list[str] = []
    for key in ALL:
        kind = "Keyword" if key.name in keyword else "KeywordList"
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags
