"""Walk every protobuf message of a Temporal history: payloads and failures, wherever nested."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHistory

Path = tuple[str, ...]


def walk(msg: Message, path: Path = ()) -> Iterator[tuple[Path, Message]]:
    yield path, msg
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if isinstance(value, Message):
            items = [value]
        elif field.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Message):
                yield from walk(item, (*path, field.name))


def payloads(history: WorkflowHistory) -> Iterator[tuple[Path, Payload]]:
    for event in history.events:
        for path, msg in walk(event):
            if isinstance(msg, Payload):
                yield path, msg


def failures(history: WorkflowHistory) -> Iterator[tuple[Path, Failure]]:
    for event in history.events:
        for path, msg in walk(event):
            if isinstance(msg, Failure):
                yield path, msg


def is_search_attribute(path: Path) -> bool:
    """Search attributes are indexed by the server, so they are never codec-encoded."""
    return "search_attributes" in path


def is_sdk_marker(path: Path) -> bool:
    """Marker details (a `workflow.patched` id) are written and read by the SDK core itself,
    never through the payload codec: they carry no user data."""
    return "marker_recorded_event_attributes" in path


def is_never_encoded(path: Path) -> bool:
    return is_search_attribute(path) or is_sdk_marker(path)


def history_bytes(history: WorkflowHistory) -> bytes:
    return b"".join(e.SerializeToString() for e in history.events) + history.to_json().encode()
