"""Enrolling a passkey through an owner's one-time link, and signing in with it.

Each ceremony is two requests: options (a fresh random challenge kept in the signed session
cookie), then the browser's answer, verified against that challenge, this origin and this
relying party by `charter.crypto.passkeys`. The challenge is used once: it leaves the session
as it is checked, whatever the answer.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from charter.crypto import passkeys
from charter.services import key_enrolment
from charter.storage import member_keys
from charter.web import sessions
from charter.web.context import context
from charter.web.security import Refused, check_csrf, csrf_token

#: A browser's WebAuthn answer is a few kilobytes; nothing larger is read.
MAX_BODY = 64 * 1024


async def body_text(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Refused("that request is too large", status=413)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("that request is not text", status=400) from None


def _challenge(request: Request, name: str) -> bytes:
    challenge = secrets.token_bytes(32)
    request.session[name] = passkeys.b64url(challenge)
    return challenge


def _take_challenge(request: Request, name: str) -> bytes:
    value = request.session.pop(name, None)
    if not isinstance(value, str):
        raise Refused("this sign-in has expired: start again", status=400)
    return passkeys.unb64url(value)


def _options(text: str) -> JSONResponse:
    return JSONResponse(json.loads(text))


async def enrol_page(request: Request) -> Response:
    ctx = context(request)
    tenant, token = request.path_params["tenant"], request.path_params["token"]
    invitation = await key_enrolment.invitation(ctx.db, tenant, token)
    return ctx.templates.TemplateResponse(
        request,
        "enrol.html",
        {
            "tenant": tenant,
            "name": invitation.display_name,
            "member": invitation.member_id,
            "csrf": csrf_token(request.session),
        },
    )


async def enrol_options(request: Request) -> Response:
    ctx = context(request)
    await check_csrf(request, ctx.origin)
    tenant, token = request.path_params["tenant"], request.path_params["token"]
    invitation = await key_enrolment.invitation(ctx.db, tenant, token)
    async with ctx.db.tenant(tenant) as conn:
        existing = await member_keys.listed(conn, tenant)
    mine = [
        k.credential_id
        for k in existing
        if k.member_id == invitation.member_id and k.credential_id is not None
    ]
    return _options(
        passkeys.registration_options(
            rp_id=ctx.settings.rp_id(),
            rp_name=ctx.settings.rp_name,
            user_id=f"{tenant}/{invitation.member_id}".encode(),
            user_name=invitation.member_id,
            display_name=invitation.display_name,
            challenge=_challenge(request, "enrol"),
            exclude=mine,
        )
    )


async def enrol_finish(request: Request) -> Response:
    ctx = context(request)
    await check_csrf(request, ctx.origin)
    tenant, token = request.path_params["tenant"], request.path_params["token"]
    challenge = _take_challenge(request, "enrol")
    passkey = passkeys.verify_registration(
        await body_text(request), challenge=challenge, rp_id=ctx.settings.rp_id(), origin=ctx.origin
    )
    try:
        member, key_id = await key_enrolment.enrol_passkey(ctx.db, tenant, token, passkey)
    except asyncpg.UniqueViolationError:
        raise Refused("this passkey is enrolled already", status=409) from None
    return JSONResponse(
        {"message": f"Passkey {key_id} enrolled for {member}.", "next": f"/t/{tenant}/signin"}
    )


async def signin_page(request: Request) -> Response:
    ctx = context(request)
    tenant = request.path_params["tenant"]
    return ctx.templates.TemplateResponse(
        request, "signin.html", {"tenant": tenant, "csrf": csrf_token(request.session)}
    )


async def signin_options(request: Request) -> Response:
    ctx = context(request)
    await check_csrf(request, ctx.origin)
    return _options(
        passkeys.authentication_options(
            rp_id=ctx.settings.rp_id(), challenge=_challenge(request, "signin"), allow=[]
        )
    )


def _credential(text: str) -> dict[str, Any]:
    try:
        answer = json.loads(text)
        response = answer["response"]
        return {
            "id": str(answer["id"]),
            "assertion": passkeys.Assertion(
                str(response["authenticatorData"]),
                str(response["clientDataJSON"]),
                str(response["signature"]),
            ).encoded(),
        }
    except (ValueError, KeyError, TypeError):
        raise Refused("that is not a passkey's answer", status=400) from None


async def signin_finish(request: Request) -> Response:
    ctx = context(request)
    await check_csrf(request, ctx.origin)
    tenant = request.path_params["tenant"]
    challenge = _take_challenge(request, "signin")
    answer = _credential(await body_text(request))
    async with ctx.db.tenant(tenant) as conn:
        key = await member_keys.by_credential(conn, tenant, answer["id"])
    if key is None or key.revoked_at is not None or key.member_id is None:
        raise Refused("this passkey is not enrolled for this tenant, or it was revoked")
    passkey = passkeys.Passkey(key.public_key, answer["id"], str(key.rp_id), str(key.origin))
    passkeys.verify_assertion("", answer["assertion"], passkey, challenge=challenge)
    sessions.sign_in(request.session, tenant, key.member_id, key.key_id)
    return JSONResponse({"next": f"/t/{tenant}/"})


async def signout(request: Request) -> Response:
    ctx = context(request)
    await check_csrf(request, ctx.origin, form=dict(await request.form()))
    tenant = request.session.get("t")
    sessions.sign_out(request.session)
    return RedirectResponse(f"/t/{tenant}/signin" if tenant else "/", status_code=303)
