"""Signed decision statements: Ed25519 keys, the canonical bytes signed, and verification.

Pure crypto, no I/O beyond the member's local key file: the same verification runs in the
`record_decision` activity, the `act` activity and `charter audit verify`.
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from charter.audit.canonical import canonical_json, sha256_hex
from charter.crypto import passkeys
from charter.crypto.errors import CryptoError
from schemas import DecisionStatement

#: Clock skew tolerated between the signer and the verifier.
SKEW = timedelta(seconds=60)


class StatementInvalid(CryptoError):
    """A statement that does not verify; the message says why, never key material."""


class NoLocalKey(CryptoError):
    """The member has no private key on this machine."""


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes_raw().hex()


def key_id_for(public_key_hex: str) -> str:
    """A key's id is derived from its public key, so a registered id names one key only."""
    return "mk-" + sha256_hex(bytes.fromhex(public_key_hex))[:16]


def nonce() -> str:
    return secrets.token_hex(16)


def encode(statement: DecisionStatement) -> str:
    """The exact text signed: canonical JSON of the statement. A statement without a
    tolerance carries no `tolerance` key at all, so its bytes are those signed before
    tolerances existed."""
    data = statement.model_dump(mode="json")
    if data.get("tolerance") is None:
        data.pop("tolerance", None)
    return canonical_json(data).decode("utf-8")


def sign(key: Ed25519PrivateKey, statement: DecisionStatement) -> tuple[str, str]:
    """(statement text, signature) for a `Decision`."""
    text = encode(statement)
    signature = key.sign(text.encode("utf-8"))
    return text, base64.urlsafe_b64encode(signature).decode("ascii").rstrip("=")


def parse(text: str) -> DecisionStatement:
    """The statement a text carries, if it is one in canonical form (else StatementInvalid)."""
    try:
        statement = DecisionStatement.model_validate_json(text)
    except ValidationError as exc:
        raise StatementInvalid(f"not a decision statement: {exc.errors()[0]['msg']}") from None
    if encode(statement) != text:
        raise StatementInvalid("the statement is not in canonical form")
    return statement


def verify(text: str, signature: str, public_key_hex: str) -> DecisionStatement:
    """The statement, if `signature` is the key's signature of exactly `text`."""
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(
            raw, text.encode("utf-8")
        )
    except (InvalidSignature, ValueError):
        raise StatementInvalid("the signature does not verify against the signing key") from None
    return parse(text)


class VerifyingKey(Protocol):
    """A registered key as the verifier needs it: an Ed25519 key (`member`, `front_door`)
    or a passkey (`webauthn`, with its credential, relying party and origin)."""

    @property
    def kind(self) -> str: ...
    @property
    def public_key(self) -> str: ...
    @property
    def credential_id(self) -> str | None: ...
    @property
    def rp_id(self) -> str | None: ...
    @property
    def origin(self) -> str | None: ...


def verify_with(key: VerifyingKey, text: str, signature: str) -> DecisionStatement:
    """The statement, if `signature` is `key`'s signature of exactly `text`: an Ed25519
    signature, or for a passkey its WebAuthn assertion over the statement's digest."""
    if key.kind != "webauthn":
        return verify(text, signature, key.public_key)
    if key.credential_id is None or key.rp_id is None or key.origin is None:
        raise StatementInvalid("the passkey is registered without its credential")
    passkey = passkeys.Passkey(key.public_key, key.credential_id, key.rp_id, key.origin)
    try:
        passkeys.verify_assertion(text, signature, passkey)
    except passkeys.PasskeyInvalid as exc:
        raise StatementInvalid(str(exc)) from None
    return parse(text)


def check_window(statement: DecisionStatement, now: datetime) -> None:
    """Issued no later than now (give or take skew) and still within its validity."""
    if statement.issued_at > now + SKEW:
        raise StatementInvalid("the statement is issued in the future")
    if now > statement.issued_at + timedelta(minutes=statement.valid_minutes):
        raise StatementInvalid(
            f"the statement expired {statement.valid_minutes} minutes after it was issued"
        )


# -- the member's local key file ---------------------------------------------------------
# `folder` is where this machine keeps members' keys: `Settings.member_key_folder`, which
# the entry points (the CLI, the Slack server, the demo) read from their configuration.


def key_path(tenant_id: str, member_id: str, folder: Path) -> Path:
    return folder / f"{tenant_id}.{member_id}.ed25519"


def create_key(tenant_id: str, member_id: str, folder: Path) -> Ed25519PrivateKey:
    """A new key pair; the private key written readable by its owner only (0600), replacing
    any earlier key of this member on this machine."""
    path = key_path(tenant_id, member_id, folder)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key.private_bytes_raw().hex() + "\n")
    os.replace(tmp, path)
    return key


def load_key(tenant_id: str, member_id: str, folder: Path) -> Ed25519PrivateKey:
    path = key_path(tenant_id, member_id, folder)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise NoLocalKey(
            f"{member_id!r} has no signing key for tenant {tenant_id!r} on this machine "
            f"(looked in {path.parent}); enrol with `charter members enroll {member_id} "
            f"--tenant {tenant_id}`"
        ) from None
    if path.stat().st_mode & 0o077:
        raise NoLocalKey(f"{path} is readable by others; make it 0600 or enrol again")
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    except ValueError:
        raise NoLocalKey(f"{path} does not hold an Ed25519 private key") from None


def front_door_key(name: str, folder: Path) -> Ed25519PrivateKey:
    """This machine's key for a front door (`slack`): created on first use, 0600. Its public
    key is registered per tenant; it signs only for members whose id there matches."""
    # Tenant ids never start with "_", so this file cannot be taken for a member's.
    tenant, member = "_front-door", name
    try:
        return load_key(tenant, member, folder)
    except NoLocalKey:
        if key_path(tenant, member, folder).exists():
            raise
        return create_key(tenant, member, folder)
