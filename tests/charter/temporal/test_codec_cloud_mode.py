"""The codec server's Temporal Cloud mode: the UI's access token checked against a JWKS, over
HTTPS. Valid tokens decode; expired, foreign-signed, wrong-issuer, wrong-audience and unsigned
ones are refused; the sign-in cookie crosses sites only as `SameSite=None; Secure`."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import pytest
from temporalio.api.common.v1 import Payload

from charter.crypto.codec import EncryptionCodec, PayloadKeyring
from charter.temporal import codec_server
from charter.temporal.access_tokens import AccessTokens
from tests.support.codec_requests import TOKEN, as_json
from tests.support.identity import (
    AUDIENCE,
    ISSUER,
    SigningKey,
    jwks_server,
    self_signed,
    trusting,
)

CLOUD_UI = "https://cloud.temporal.io"
KEYRING = PayloadKeyring.generate("cloud-1")
TRUSTED = SigningKey("trusted-1")


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """A codec server in Cloud mode over HTTPS, and a client session trusting its cert."""
    cert, key = self_signed(tmp_path)
    async with jwks_server(TRUSTED) as jwks_url:
        access = codec_server.Access(
            token=TOKEN, access_tokens=AccessTokens(jwks_url, ISSUER, AUDIENCE)
        )
        tls = codec_server.tls_context(cert, key)
        runner, port = await codec_server.start(KEYRING, access, [CLOUD_UI], tls=tls)
        connector = aiohttp.TCPConnector(ssl=trusting(cert))
        async with aiohttp.ClientSession(connector=connector) as http:
            yield f"https://localhost:{port}", http
        await runner.cleanup()


def _sealed() -> dict[str, object]:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"tenant_id": "acme"}')
    return as_json([EncryptionCodec(KEYRING).encrypt(plain)])


async def _decode(cloud: tuple[str, aiohttp.ClientSession], token: str) -> int:
    url, http = cloud
    headers = {"Origin": CLOUD_UI, "Authorization": f"Bearer {token}", "X-Namespace": "acme.a1b2c"}
    async with http.post(f"{url}/decode", json=_sealed(), headers=headers) as response:
        if response.status == 200:
            [plain] = (await response.json())["payloads"]
            assert json.loads(base64.b64decode(plain["data"])) == {"tenant_id": "acme"}
        return response.status


async def test_a_valid_access_token_decodes(cloud: tuple[str, aiohttp.ClientSession]) -> None:
    assert await _decode(cloud, TRUSTED.token()) == 200


async def test_expired_foreign_and_misdirected_tokens_are_refused(
    cloud: tuple[str, aiohttp.ClientSession],
) -> None:
    foreign = SigningKey("trusted-1")  # same key id, another key: a forgery
    unknown = SigningKey("elsewhere-1")
    refused = {
        "expired": TRUSTED.token(expires_in=-120),
        "signed by another key": foreign.token(),
        "signed by an unpublished key": unknown.token(),
        "another issuer": TRUSTED.token(iss="https://login.evil.example/"),
        "another audience": TRUSTED.token(aud="https://other-api.example"),
        "unsigned": jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": 4102444800}, None, "none"),
        "not a token": "x" * 40,
    }
    statuses = {why: await _decode(cloud, token) for why, token in refused.items()}
    assert statuses == dict.fromkeys(refused, 401)


async def test_the_codec_token_still_works_and_the_cookie_crosses_sites(
    cloud: tuple[str, aiohttp.ClientSession],
) -> None:
    assert await _decode(cloud, TOKEN) == 200
    url, http = cloud
    async with http.post(f"{url}/login", data={"token": TOKEN}, headers={"Origin": url}) as r:
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie


async def test_cloud_mode_without_a_codec_token(tmp_path: Path) -> None:
    """Only access tokens: no sign-in page, and a bearer that is not a valid JWT is refused."""
    async with jwks_server(TRUSTED) as jwks_url:
        access = codec_server.Access(access_tokens=AccessTokens(jwks_url, ISSUER, AUDIENCE))
        runner, port = await codec_server.start(KEYRING, access, [CLOUD_UI])
        try:
            url = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}/login") as r:
                    assert r.status == 404
                for token, expected in ((TRUSTED.token(), 200), (TOKEN, 401)):
                    headers = {"Origin": CLOUD_UI, "Authorization": f"Bearer {token}"}
                    async with http.post(f"{url}/decode", json=_sealed(), headers=headers) as r:
                        assert r.status == expected
        finally:
            await runner.cleanup()


def test_an_access_without_token_or_jwks_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a token or a JWKS"):
        codec_server.Access()
