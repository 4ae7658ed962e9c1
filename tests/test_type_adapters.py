"""Every payload converter of a process shares one set of pydantic type adapters.

The worker makes a payload converter per cached workflow; with adapters of its own, each
parked run held a dozen, built again for every run (bench/agent_loop.py's memory row)."""

from __future__ import annotations

from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter

from charter.crypto.codec import PayloadKeyring
from charter.temporal.plugin import SharedAdaptersPayloadConverter, data_converter
from schemas import RunRef


def _json(converter: SharedAdaptersPayloadConverter) -> PydanticJSONPlainPayloadConverter:
    (found,) = [
        c for c in converter.converters.values() if isinstance(c, PydanticJSONPlainPayloadConverter)
    ]
    return found


def test_converters_share_their_adapters() -> None:
    first, second = SharedAdaptersPayloadConverter(), SharedAdaptersPayloadConverter()
    ref = RunRef(tenant_id="acme", agent="payables", workflow_id="w", run_id="r")
    (payload,) = first.to_payloads([ref])
    assert first.from_payloads([payload], [RunRef]) == [ref]
    assert second.from_payloads([payload], [RunRef]) == [ref]
    # One adapter for both: the second converter built none of its own.
    assert _json(first)._type_adapter(RunRef) is _json(second)._type_adapter(RunRef)


def test_the_plugin_uses_the_shared_converter() -> None:
    converter = data_converter(PayloadKeyring.generate())
    assert converter.payload_converter_class is SharedAdaptersPayloadConverter
    assert converter.payload_codec is not None  # still encrypted
