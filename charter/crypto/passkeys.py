"""Passkeys (WebAuthn) as signing keys: a decision statement signed by a member's
authenticator, verified with py_webauthn.

The challenge a passkey signs is the sha256 digest of the statement's exact text, so the
assertion (authenticator data, client data, signature) proves that this credential, held by
the member and unlocked by them (user verification), signed exactly that statement, at the
origin and relying party it was enrolled for. The assertion travels as the statement's
signature, `<authenticator data>.<client data JSON>.<signature>` (each base64url, no
padding), so it is stored, replayed and audited like any other signature. Pure crypto, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from charter.crypto.errors import CryptoError


class PasskeyInvalid(CryptoError):
    """An assertion or a registration that does not verify; the message says why."""


@dataclass(frozen=True)
class Passkey:
    """What a passkey is verified against: its COSE public key (hex), credential id
    (base64url), and the relying party and origin it was enrolled for."""

    public_key: str
    credential_id: str
    rp_id: str
    origin: str


@dataclass(frozen=True)
class Assertion:
    authenticator_data: str
    client_data_json: str
    signature: str

    def encoded(self) -> str:
        return f"{self.authenticator_data}.{self.client_data_json}.{self.signature}"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def challenge_for(message: str) -> bytes:
    """The challenge a passkey signs for a statement: the digest of its exact text."""
    return hashlib.sha256(message.encode("utf-8")).digest()


def parse_assertion(encoded: str) -> Assertion:
    parts = encoded.split(".")
    if len(parts) != 3 or not all(parts):
        raise PasskeyInvalid("not a passkey assertion (authenticator data, client data, signature)")
    return Assertion(*parts)


def verify_assertion(
    message: str, encoded: str, passkey: Passkey, *, challenge: bytes | None = None
) -> int:
    """Verify that `passkey` signed `message` (its digest as the challenge; or `challenge`,
    a sign-in's random one), with user verification, at its origin; the authenticator's
    sign count. PasskeyInvalid otherwise."""
    assertion = parse_assertion(encoded)
    credential = {
        "id": passkey.credential_id,
        "rawId": passkey.credential_id,
        "type": "public-key",
        "response": {
            "authenticatorData": assertion.authenticator_data,
            "clientDataJSON": assertion.client_data_json,
            "signature": assertion.signature,
        },
    }
    try:
        verified = verify_authentication_response(
            credential=json.dumps(credential),
            expected_challenge=challenge if challenge is not None else challenge_for(message),
            expected_rp_id=passkey.rp_id,
            expected_origin=passkey.origin,
            credential_public_key=bytes.fromhex(passkey.public_key),
            # Sign counts are not kept: the application role cannot write keys, and passkeys
            # synced between devices report zero anyway.
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyInvalid(f"the passkey assertion does not verify: {exc}") from None
    return int(verified.new_sign_count)


def verify_registration(response: str, *, challenge: bytes, rp_id: str, origin: str) -> Passkey:
    """A new credential's attestation response (JSON, as the browser gave it), verified
    against the challenge sent, with user verification: the passkey to store;
    PasskeyInvalid otherwise."""
    try:
        verified = verify_registration_response(
            credential=response,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyInvalid(f"the new passkey does not verify: {exc}") from None
    return Passkey(
        public_key=verified.credential_public_key.hex(),
        credential_id=b64url(verified.credential_id),
        rp_id=rp_id,
        origin=origin,
    )


def registration_options(
    *,
    rp_id: str,
    rp_name: str,
    user_id: bytes,
    user_name: str,
    display_name: str,
    challenge: bytes,
    exclude: list[str],
) -> str:
    """The options `navigator.credentials.create` takes (JSON): a discoverable credential,
    user verification required, none of the member's passkeys again."""
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=user_id,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=120_000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=unb64url(c)) for c in exclude],
    )
    return str(options_to_json(options))


def authentication_options(*, rp_id: str, challenge: bytes, allow: list[str]) -> str:
    """The options `navigator.credentials.get` takes (JSON), user verification required;
    `allow` empty lets the authenticator offer the member's discoverable passkey."""
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge,
        timeout=120_000,
        allow_credentials=[PublicKeyCredentialDescriptor(id=unb64url(c)) for c in allow],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return str(options_to_json(options))
