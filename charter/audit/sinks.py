"""Where signed checkpoints are kept: somewhere the database's administrators cannot write.

A checkpoint is only worth something if whoever can rewrite the audit table cannot also
rewrite or delete the checkpoint. Two sinks:

- a file (`/path/to/checkpoints.jsonl` or `file:///path/...`): one JSON line appended per
  checkpoint, fsynced; put it on a volume the database's administrators cannot write.
- an object store (`s3://bucket/prefix`): one object per checkpoint, written only if no
  object has that key (`If-None-Match: *`), so nothing is ever overwritten; the key names the
  tenant, the head's seq, the time and the head hash. Give the bucket Object Lock (or a policy
  denying delete and overwrite) so nobody with database access can remove one. Credentials,
  region and endpoint come from the standard AWS configuration of the process
  (`AWS_PROFILE`, `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL_S3`, ...), never from the URL.

`prior()` returns the checkpoints a verification anchors on. A file returns all of them; the
object store returns each tenant's newest (the highest seq): every entry's hash covers the
hash before it, so a chain that matches its newest checkpoint matches every earlier one, and
reading thousands of objects every hour would prove nothing more.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from charter.audit.checkpoints import (
    Checkpoint,
    CheckpointError,
    append_checkpoints,
    read_checkpoints,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class SinkLocationInvalid(ValueError):
    """The location names no sink Charter can write (retrying cannot change that)."""


class SinkUnavailable(RuntimeError):
    """The sink could not be read or written just now (a retry may succeed)."""


class CheckpointSink(Protocol):
    @property
    def location(self) -> str: ...

    def prior(self, tenants: list[str] | None) -> list[Checkpoint]:
        """The checkpoints to verify the chains against; every tenant's when None."""
        ...

    def append(self, checkpoints: list[Checkpoint]) -> None:
        """Add the checkpoints; never changes or removes one already there."""
        ...


class FileSink:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def location(self) -> str:
        return str(self.path)

    def prior(self, tenants: list[str] | None) -> list[Checkpoint]:
        try:
            found = read_checkpoints(self.path)
        except OSError as exc:
            raise SinkUnavailable(f"cannot read {self.path}: {exc.strerror}") from None
        return [c for c in found if tenants is None or c.tenant_id in tenants]

    def append(self, checkpoints: list[Checkpoint]) -> None:
        try:
            append_checkpoints(self.path, checkpoints)
        except OSError as exc:
            raise SinkUnavailable(f"cannot append to {self.path}: {exc.strerror}") from None


def object_key(prefix: str, checkpoint: Checkpoint) -> str:
    """`<prefix><tenant>/<seq, 12 digits>-<time>-<head hash>.json`: listed in seq order, and
    two checkpoints share a key only if they sign the same head at the same second (and then,
    Ed25519 being deterministic, they are the same bytes)."""
    when = datetime.fromisoformat(checkpoint.created_at).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{checkpoint.tenant_id}/{checkpoint.seq:012d}-{when}-{checkpoint.hash}.json"


def _client() -> S3Client:
    # boto3 takes a good part of a second to import; only an s3:// sink needs it.
    import boto3

    return boto3.client("s3")


def _s3_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _status(exc: Exception) -> int | None:
    response: Any = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


class S3Sink:
    def __init__(self, bucket: str, prefix: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._s3 = client

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def s3(self) -> S3Client:
        if self._s3 is None:
            self._s3 = _client()
        return self._s3

    def _tenants(self) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
        )
        return [
            p["Prefix"][len(self.prefix) :].rstrip("/")
            for page in pages
            for p in page.get("CommonPrefixes", [])
        ]

    def _newest(self, tenant: str) -> Checkpoint | None:
        newest: str | None = None
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}{tenant}/"
        )
        for page in pages:
            for obj in page.get("Contents", []):
                if newest is None or obj["Key"] > newest:
                    newest = obj["Key"]
        if newest is None:
            return None
        body = self.s3.get_object(Bucket=self.bucket, Key=newest)["Body"].read()
        try:
            return Checkpoint.model_validate_json(body)
        except ValueError as exc:
            raise CheckpointError(f"{self.location}{newest}: not a checkpoint ({exc})") from None

    def prior(self, tenants: list[str] | None) -> list[Checkpoint]:
        try:
            found = [self._newest(t) for t in (self._tenants() if tenants is None else tenants)]
        except _s3_errors() as exc:
            raise SinkUnavailable(f"cannot read {self.location}: {exc}") from None
        return [c for c in found if c is not None]

    def append(self, checkpoints: list[Checkpoint]) -> None:
        for checkpoint in checkpoints:
            key = object_key(self.prefix, checkpoint)
            body = checkpoint.model_dump_json().encode()
            try:
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
            except _s3_errors() as exc:
                if _status(exc) == 412 and self._holds(key, body):
                    continue  # a retry of a write whose reply was lost: already there
                raise SinkUnavailable(f"cannot write {self.location}{key}: {exc}") from None

    def _holds(self, key: str, body: bytes) -> bool:
        try:
            existing: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except _s3_errors():
            return False
        return existing == body


def sink_for(location: str) -> CheckpointSink:
    """The sink a location names: a path, `file:///path`, or `s3://bucket/prefix`."""
    text = location.strip()
    if not text:
        raise SinkLocationInvalid("no checkpoint location given")
    parts = urlsplit(text)
    if parts.scheme == "s3":
        if parts.username is not None or parts.password is not None:
            # A key in the URL would land in workflow history and on command lines.
            raise SinkLocationInvalid(
                "an s3:// location carries no credentials: the worker's AWS configuration does"
            )
        if not parts.netloc or parts.query or parts.fragment:
            raise SinkLocationInvalid(f"{text!r} is not s3://bucket/prefix")
        prefix = parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return S3Sink(parts.netloc, prefix)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise SinkLocationInvalid(f"{text!r}: a file:// location names a local path")
        return FileSink(Path(unquote(parts.path)))
    if parts.scheme and len(parts.scheme) > 1:  # a Windows drive letter is not a scheme
        raise SinkLocationInvalid(
            f"{text!r}: checkpoints go to a file path, file:// or s3:// location"
        )
    return FileSink(Path(os.path.expanduser(text)))
