"""Temporal Cloud's UI access tokens, checked the way its codec-server guide asks.

With "pass the user access token" on, the Cloud UI sends the signed-in user's access token
(a JWT) to the codec server as `Authorization: Bearer <jwt>`. The server trusts it only if
its signature verifies against the identity provider's published keys (a JWKS URL, fetched
with a deadline and cached), it has not expired, and its issuer and audience are the
configured ones. Anything else — expired, signed by another key, another issuer — is refused.
"""

from __future__ import annotations

import asyncio
import logging

import jwt

log = logging.getLogger(__name__)

#: RSA and EC signatures only: an `alg: none` or HMAC token is never accepted.
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")
#: A JWKS fetch that hangs must not hang the UI's request for longer than this (seconds).
JWKS_TIMEOUT = 5
#: Clock skew tolerated on expiry and not-before (seconds).
LEEWAY = 30


class AccessTokens:
    """Verifies access tokens against `jwks_url`; `issuer` and `audience` when given."""

    def __init__(self, jwks_url: str, issuer: str | None = None, audience: str | None = None):
        self.jwks_url = jwks_url
        self._issuer = issuer
        self._audience = audience
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=JWKS_TIMEOUT)

    def verify(self, token: str) -> bool:
        """True for a valid token; False (and a log line without the token) otherwise."""
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY,
                options={
                    "require": ["exp"],
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except jwt.PyJWTError as exc:
            log.info("codec server refused an access token: %s", type(exc).__name__)
            return False
        return True

    async def verify_async(self, token: str) -> bool:
        """`verify` off the event loop: fetching the JWKS is blocking I/O."""
        return await asyncio.to_thread(self.verify, token)
