"""Signed checkpoints of the audit chain heads, kept outside PostgreSQL.

A checkpoint says "tenant T's chain had entry seq N with hash H at time X", signed with
Ed25519. The signing key never enters the database: it comes from `CHARTER_AUDIT_SIGNING_KEY`
or a key file in the state directory (mode 0600). Someone who can rewrite the audit table
and recompute every hash after their change still cannot forge a checkpoint, so a later
`charter audit verify` finds the rewrite at or before the checkpoint's seq.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import SecretStr

from charter.audit.chain import Anchor
from schemas import CheckpointedHead

_DOMAIN = b"charter-audit-checkpoint/v1\n"


class CheckpointError(ValueError):
    """A checkpoint or its key is unusable: bad signature, unknown key, unsafe key file."""


class Checkpoint(CheckpointedHead):
    """The signed head, as kept in a sink: the contract's fields and the signature."""

    signature: str

    def signed_bytes(self) -> bytes:
        body = {
            "tenant_id": self.tenant_id,
            "seq": self.seq,
            "hash": self.hash,
            "created_at": self.created_at,
            "key_id": self.key_id,
        }
        return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_signing_key(
    secret: SecretStr | None, key_file: Path, *, create: bool
) -> Ed25519PrivateKey:
    """The key from the environment, else from the key file (created 0600 if asked)."""
    if secret is not None:
        try:
            seed = base64.b64decode(secret.get_secret_value(), validate=True)
        except ValueError:
            raise CheckpointError("CHARTER_AUDIT_SIGNING_KEY is not valid base64") from None
        if len(seed) != 32:
            raise CheckpointError("CHARTER_AUDIT_SIGNING_KEY must decode to 32 bytes")
        return Ed25519PrivateKey.from_private_bytes(seed)
    if key_file.exists():
        mode = stat.S_IMODE(key_file.stat().st_mode)
        if mode & 0o077:
            raise CheckpointError(
                f"{key_file} is readable by group or others (mode {mode:o}); chmod 600 it"
            )
        seed = base64.b64decode(key_file.read_text().strip())
        if len(seed) != 32:
            raise CheckpointError(f"{key_file} does not hold a 32-byte Ed25519 seed")
        return Ed25519PrivateKey.from_private_bytes(seed)
    if not create:
        raise CheckpointError(
            f"no audit signing key: set CHARTER_AUDIT_SIGNING_KEY or create {key_file} "
            "with `charter audit checkpoint`"
        )
    key = Ed25519PrivateKey.generate()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL and mode 0600 at creation: the key is never briefly world-readable.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key.private_bytes_raw()).decode() + "\n")
    return key


def sign(key: Ed25519PrivateKey, tenant_id: str, seq: int, hash_: str) -> Checkpoint:
    unsigned = Checkpoint(
        tenant_id=tenant_id,
        seq=seq,
        hash=hash_,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        key_id=key_id(key.public_key()),
        signature="",
    )
    signature = key.sign(unsigned.signed_bytes())
    return unsigned.model_copy(update={"signature": base64.b64encode(signature).decode()})


def verified_anchor(public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> Anchor:
    """The checkpoint as an anchor, if its signature holds under the trusted key."""
    if checkpoint.key_id != key_id(public_key):
        raise CheckpointError(
            f"checkpoint of {checkpoint.tenant_id} seq {checkpoint.seq} was signed by key "
            f"{checkpoint.key_id}, not the configured key {key_id(public_key)}"
        )
    try:
        public_key.verify(base64.b64decode(checkpoint.signature), checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        raise CheckpointError(
            f"checkpoint of {checkpoint.tenant_id} seq {checkpoint.seq}: signature does not verify"
        ) from None
    return Anchor(
        tenant_id=checkpoint.tenant_id,
        seq=checkpoint.seq,
        hash=checkpoint.hash,
        source=f"checkpoint of {checkpoint.created_at}",
    )


def append_checkpoints(path: Path, checkpoints: Iterable[Checkpoint]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for checkpoint in checkpoints:
            f.write(checkpoint.model_dump_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_checkpoints(path: Path) -> list[Checkpoint]:
    if not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Checkpoint.model_validate_json(line))
        except ValueError as exc:
            raise CheckpointError(f"{path}:{number}: not a checkpoint ({exc})") from None
    return out
