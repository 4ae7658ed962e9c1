"""Who is signed in: one member of one tenant, with the passkey they signed in with.

The session (a signed cookie: SameSite=Strict, HttpOnly, Secure over HTTPS) holds the
tenant, the member, the passkey's key id and when they signed in. Every request re-reads the
roster and the key: a member deactivated or a passkey revoked is signed out at their next
click, and a session never reaches another tenant's pages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from charter.storage import Database, member_keys, roster
from charter.web.security import Refused


class NotSignedIn(Refused):
    def __init__(self, tenant_id: str) -> None:
        super().__init__("sign in with your passkey first", status=401)
        self.tenant_id = tenant_id


@dataclass(frozen=True)
class SignedIn:
    tenant_id: str
    member_id: str
    key_id: str


def sign_in(session: dict[str, Any], tenant_id: str, member_id: str, key_id: str) -> None:
    # Nothing from before signing in is carried over, the CSRF token included.
    session.clear()
    session.update(t=tenant_id, m=member_id, k=key_id, at=int(time.time()))


def sign_out(session: dict[str, Any]) -> None:
    session.clear()


async def signed_in(request: Request, db: Database, tenant_id: str, minutes: int) -> SignedIn:
    """The member signed in for `tenant_id`, still active, with their passkey unrevoked;
    NotSignedIn otherwise (another tenant's session included)."""
    s = request.session
    if s.get("t") != tenant_id or not isinstance(s.get("m"), str):
        raise NotSignedIn(tenant_id)
    if int(time.time()) - int(s.get("at", 0)) > minutes * 60:
        sign_out(s)
        raise NotSignedIn(tenant_id)
    async with db.tenant(tenant_id) as conn:
        key = await member_keys.get(conn, tenant_id, str(s.get("k")))
        roles = await roster.roles(conn, tenant_id, s["m"])
    if key is None or key.kind != "webauthn" or key.member_id != s["m"] or key.revoked_at:
        sign_out(s)
        raise NotSignedIn(tenant_id)
    if roles is None:
        sign_out(s)
        raise NotSignedIn(tenant_id)
    return SignedIn(tenant_id, s["m"], key.key_id)
