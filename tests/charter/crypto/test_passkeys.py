"""Passkey assertions over a statement's digest: verified with py_webauthn, and every way an
assertion can be wrong refused."""

from __future__ import annotations

import secrets

import pytest

from charter.crypto import passkeys, statements
from tests.support.passkey_authenticator import SoftAuthenticator

ORIGIN, RP = "http://localhost:8300", "localhost"


def enrolled() -> tuple[SoftAuthenticator, passkeys.Passkey]:
    device = SoftAuthenticator(RP, ORIGIN)
    challenge = secrets.token_bytes(32)
    passkey = passkeys.verify_registration(
        device.register(challenge), challenge=challenge, rp_id=RP, origin=ORIGIN
    )
    return device, passkey


def test_a_statement_signed_by_a_passkey_verifies_and_nothing_else_does() -> None:
    device, passkey = enrolled()
    text = '{"a":1}'
    assertion = device.assert_(passkeys.challenge_for(text)).encoded()
    assert passkeys.verify_assertion(text, assertion, passkey) == 2

    with pytest.raises(passkeys.PasskeyInvalid, match="does not verify"):
        passkeys.verify_assertion('{"a":2}', assertion, passkey)  # another statement
    a = passkeys.parse_assertion(assertion)
    flipped = passkeys.b64url(
        bytes([passkeys.unb64url(a.signature)[0] ^ 1]) + passkeys.unb64url(a.signature)[1:]
    )
    with pytest.raises(passkeys.PasskeyInvalid):
        passkeys.verify_assertion(
            text,
            passkeys.Assertion(a.authenticator_data, a.client_data_json, flipped).encoded(),
            passkey,
        )
    unverified = device.assert_(passkeys.challenge_for(text), verified=False).encoded()
    with pytest.raises(passkeys.PasskeyInvalid, match="verif"):
        passkeys.verify_assertion(text, unverified, passkey)
    elsewhere = passkeys.Passkey(
        passkey.public_key, passkey.credential_id, RP, "http://localhost:9999"
    )
    with pytest.raises(passkeys.PasskeyInvalid, match="origin"):
        passkeys.verify_assertion(text, assertion, elsewhere)
    _, other = enrolled()
    with pytest.raises(passkeys.PasskeyInvalid):
        passkeys.verify_assertion(text, assertion, other)
    with pytest.raises(passkeys.PasskeyInvalid, match="not a passkey assertion"):
        passkeys.verify_assertion(text, "abc", passkey)


def test_a_registration_answers_its_own_challenge_only() -> None:
    device = SoftAuthenticator(RP, ORIGIN)
    with pytest.raises(passkeys.PasskeyInvalid, match="new passkey does not verify"):
        passkeys.verify_registration(
            device.register(b"x" * 32), challenge=b"y" * 32, rp_id=RP, origin=ORIGIN
        )


class Key:
    kind = "webauthn"

    def __init__(self, passkey: passkeys.Passkey) -> None:
        self.public_key = passkey.public_key
        self.credential_id: str | None = passkey.credential_id
        self.rp_id: str | None = passkey.rp_id
        self.origin: str | None = passkey.origin


def test_the_statement_verifier_dispatches_passkeys_by_kind() -> None:
    device, passkey = enrolled()
    text = "not a statement"
    assertion = device.assert_(passkeys.challenge_for(text)).encoded()
    # The assertion verifies, then the text is read as a statement (and is not one).
    with pytest.raises(statements.StatementInvalid, match="not a decision statement"):
        statements.verify_with(Key(passkey), text, assertion)
    with pytest.raises(statements.StatementInvalid, match="does not verify"):
        statements.verify_with(Key(passkey), "other", assertion)
