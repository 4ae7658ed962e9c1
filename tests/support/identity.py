"""A local identity provider for the codec server's Temporal Cloud mode: RSA keys, a JWKS
served over HTTP as an OIDC provider publishes it, access tokens signed like the Cloud UI's,
and a self-signed TLS certificate for serving them over HTTPS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from charter.runtime.http_server import serve_app

ISSUER = "https://login.test.example/"
AUDIENCE = "https://saas-api.test.example"


class SigningKey:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def token(self, *, expires_in: float = 300, **claims: Any) -> str:
        now = dt.datetime.now(dt.UTC)
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user@test.example",
            "iat": now,
            "exp": now + dt.timedelta(seconds=expires_in),
            **claims,
        }
        return jwt.encode(body, self.private, algorithm="RS256", headers={"kid": self.kid})


@asynccontextmanager
async def jwks_server(*keys: SigningKey) -> AsyncIterator[str]:
    """Serve `{"keys": [...]}` at /.well-known/jwks.json; yield its URL."""

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response({"keys": [key.jwk() for key in keys]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    runner, port = await serve_app(app, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}/.well-known/jwks.json"
    finally:
        await runner.cleanup()


def self_signed(folder: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A certificate for `host` (and 127.0.0.1) and its key, as PEM files in `folder`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "codec.crt", folder / "codec.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def trusting(cert_file: Path) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate."""
    return ssl.create_default_context(cafile=str(cert_file))
