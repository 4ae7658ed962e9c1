"""Custom search attributes: how the Temporal UI filters Charter runs. Public contract.

They hold operational labels only (tenant and agent slugs, stage, outcome and action-type
names): never an amount, a counterparty or a record id, because search attributes are
indexed in plaintext by the Temporal server and never pass through the payload codec.
`charter temporal setup` registers them on any server (`register`); the dev server of the
embedded stack gets them as start flags (`cli_flags`)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
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


class SearchAttributeConflict(RuntimeError):
    """The namespace already has one of Charter's names with another type."""


async def register(client: Client) -> list[str]:
    """Add Charter's search attributes to the client's namespace; return the names added.

    Idempotent: attributes already present with the right type are left alone, so running it
    on every deploy is safe. A name present with another type cannot be changed in place."""
    namespace = client.namespace
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    present = {**existing.system_attributes, **existing.custom_attributes}
    missing: dict[str, IndexedValueType.ValueType] = {}
    for key in ALL:
        wanted = IndexedValueType.ValueType(key.indexed_value_type.value)
        if key.name not in present:
            missing[key.name] = wanted
        elif present[key.name] != wanted:
            raise SearchAttributeConflict(
                f"search attribute {key.name} exists in namespace {namespace} as "
                f"{IndexedValueType.Name(present[key.name])}, Charter needs "
                f"{IndexedValueType.Name(wanted)}"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)
