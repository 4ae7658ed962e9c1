"""The inbox's refusals over HTTP, in the test's own event loop (httpx's ASGI transport): the
security headers on every response, sign-in required, CSRF and origin checks, sessions bound
to one tenant and ended by revoking the passkey, untrusted text inert, configuration refused
in one line."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from charter.crypto import passkeys
from charter.services import key_enrolment, membership
from charter.storage import Database
from charter.web.app import build_app, templates
from charter.web.config import WebConfigError, WebSettings
from charter.web.security import CSP
from tests.support.passkey_authenticator import SoftAuthenticator
from tests.support.running import start, until_stage
from tests.support.tenants import TenantPair

ORIGIN = "http://localhost:8300"


@pytest.fixture
async def web(db: Database, client: Client) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(WebSettings(), db, client, namespace="default", temporal_ui_url="http://ui")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http


def csrf_of(page: str) -> str:
    return page.split('data-csrf="', 1)[1].split('"', 1)[0]


async def post(http: httpx.AsyncClient, url: str, csrf: str, body: str = "") -> httpx.Response:
    headers = {"origin": ORIGIN, "x-csrf-token": csrf, "accept": "application/json"}
    return await http.post(url, content=body, headers=headers)


async def signed_in(
    http: httpx.AsyncClient, admin_dsn: str, tenant: str, member: str = "sam"
) -> tuple[SoftAuthenticator, str]:
    """Enrol a passkey through an invitation and sign in, over HTTP; the device, key id."""
    invitation = await key_enrolment.invite_passkey(admin_dsn, tenant, member, actor="cli:maya")
    base = f"/t/{tenant}/enrol/{invitation.token}"
    csrf = csrf_of((await http.get(base)).text)
    options = (await post(http, base + "/options", csrf)).json()
    device = SoftAuthenticator("localhost", ORIGIN)
    enrolled = await post(
        http, base, csrf, device.register(passkeys.unb64url(options["challenge"]))
    )
    assert enrolled.status_code == 200, enrolled.text
    key_id = enrolled.json()["message"].split()[1]
    csrf = csrf_of((await http.get(f"/t/{tenant}/signin")).text)
    options = (await post(http, f"/t/{tenant}/signin/options", csrf)).json()
    assertion = device.assert_(passkeys.unb64url(options["challenge"]))
    answer = {
        "id": passkeys.b64url(device.credential_id),
        "response": {
            "authenticatorData": assertion.authenticator_data,
            "clientDataJSON": assertion.client_data_json,
            "signature": assertion.signature,
        },
    }
    signin = await post(http, f"/t/{tenant}/signin", csrf, json.dumps(answer))
    assert signin.status_code == 200, signin.text
    return device, key_id


async def test_every_response_carries_the_headers_and_pages_need_a_sign_in(
    web: httpx.AsyncClient, tenant: str
) -> None:
    for path in ("/healthz", f"/t/{tenant}/", "/nowhere", f"/t/{tenant}/signin"):
        response = await web.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    page = await web.get(f"/t/{tenant}/")
    assert page.status_code == 303 and page.headers["location"] == f"/t/{tenant}/signin"
    api = await web.get(
        f"/t/{tenant}/exceptions/ex-0000000000/status", headers={"accept": "application/json"}
    )
    assert api.status_code == 401 and api.json() == {"error": "sign in with your passkey first"}
    web.cookies.clear()
    cookie = (await web.get(f"/t/{tenant}/signin")).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


async def test_state_changing_requests_need_the_origin_and_the_csrf_token(
    web: httpx.AsyncClient, tenant: str
) -> None:
    csrf = csrf_of((await web.get(f"/t/{tenant}/signin")).text)
    url = f"/t/{tenant}/signin/options"
    accept = {"accept": "application/json"}
    no_origin = await web.post(url, headers={**accept, "x-csrf-token": csrf})
    assert no_origin.status_code == 403 and "inbox's own pages" in no_origin.json()["error"]
    other = await web.post(
        url, headers={**accept, "x-csrf-token": csrf, "origin": "http://evil.example"}
    )
    assert other.status_code == 403
    no_token = await web.post(url, headers={**accept, "origin": ORIGIN})
    assert no_token.status_code == 403 and "expired" in no_token.json()["error"]
    wrong = await post(web, url, csrf[:-1] + ("A" if csrf[-1] != "A" else "B"))
    assert wrong.status_code == 403
    assert (await post(web, url, csrf)).status_code == 200


async def test_an_enrolment_link_is_used_once_and_a_bad_one_is_refused(
    web: httpx.AsyncClient, tenant: str
) -> None:
    bad = await web.get(f"/t/{tenant}/enrol/{secrets.token_urlsafe(32)}")
    assert bad.status_code == 410 and "not valid for this tenant" in bad.text


async def test_a_session_is_one_tenant_s_and_ends_with_its_passkey(
    web: httpx.AsyncClient, tenant: str, admin_dsn: str, pair: TenantPair
) -> None:
    _, key_id = await signed_in(web, admin_dsn, tenant)
    inbox = await web.get(f"/t/{tenant}/")
    assert inbox.status_code == 200 and "Open exceptions" in inbox.text
    assert "sam · " + tenant in inbox.text
    # Another tenant's pages and exceptions: not with this session.
    other = await web.get(f"/t/{pair.a}/")
    assert other.status_code == 303 and other.headers["location"] == f"/t/{pair.a}/signin"
    hidden = await web.get(f"/t/{tenant}/exceptions/ex-1")
    assert hidden.status_code == 404 and "no exception ex-1 for this tenant" in hidden.text
    # No secret or key material in a page: no token, no public key, no cookie value.
    page = (await web.get(f"/t/{tenant}/constitution")).text
    assert "Version 1" in page and "public_key" not in page
    await membership.revoke(
        admin_dsn, tenant, member_id=None, key_id=key_id, for_cause=False, keys_only=True,
        reason="lost phone", actor="cli:maya",
    )  # fmt: skip
    after = await web.get(f"/t/{tenant}/")
    assert after.status_code == 303 and after.headers["location"] == f"/t/{tenant}/signin"


def test_untrusted_text_is_inert_in_a_page() -> None:
    page = (
        templates()
        .get_template("refused.html")
        .render(message="<script>alert(1)</script>\x1b[2K", csrf="")
    )
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (WebSettings(origin="http://inbox.example.com"), "must be https://"),
        (WebSettings(origin="https://inbox.example.com/inbox"), "an origin only"),
        (WebSettings(origin="ftp://inbox.example.com"), "is not an http(s) origin"),
        (WebSettings(session_secret="short"), "at least 32 characters"),
    ],
)
def test_a_misconfigured_inbox_is_refused_in_one_line(settings: WebSettings, says: str) -> None:
    with pytest.raises(WebConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        settings.check()
    WebSettings(origin="https://inbox.example.com").check()


async def _statement(http: httpx.AsyncClient, url: str, csrf: str, **form: str) -> httpx.Response:
    headers = {"origin": ORIGIN, "x-csrf-token": csrf, "accept": "application/json"}
    return await http.post(url + "/statement", data=form, headers=headers)


async def test_deciding_as_the_rule_book_allows_and_an_amendment_signed_by_a_passkey(
    web: httpx.AsyncClient, tenant: str, admin_dsn: str, client: Client, worker: Worker
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    exception_id = state.proposals[0].exception_id
    device, _ = await signed_in(web, admin_dsn, tenant)
    url = f"/t/{tenant}/exceptions/{exception_id}"
    page = await web.get(url)
    assert "Approve and always allow this" in page.text and "Bluebird Design Studio" in page.text
    csrf = csrf_of(page.text)

    refusals = [
        ({"outcome": "approve"}, "say why"),
        ({"outcome": "reject", "reason": "no", "amount": "100"}, "approval only"),
        ({"outcome": "approve", "reason": "ok", "amount": "-5"}, "a positive amount"),
        ({"outcome": "maybe", "reason": "ok"}, "not open for that decision"),
    ]
    for form, says in refusals:
        refused = await _statement(web, url, csrf, **form)
        assert refused.status_code in (400, 409) and says in refused.json()["error"], form
    edited = await _statement(web, url, csrf, outcome="approve", reason="ok", amount="2000")
    assert edited.json()["shown"]["amount"] == "$2,000.00"

    made = await _statement(
        web, url, csrf, outcome="approve", reason="trusted studio", amend="1", max_amount="2500"
    )
    assert made.status_code == 200, made.text
    to_sign = made.json()
    assert to_sign["shown"]["amendment"] is True and to_sign["shown"]["amount"] == "$2,300.00"
    assertion = device.assert_(passkeys.unb64url(to_sign["challenge"]))
    answer = {
        "statement": to_sign["statement"],
        "response": {
            "authenticatorData": assertion.authenticator_data,
            "clientDataJSON": assertion.client_data_json,
            "signature": assertion.signature,
        },
    }
    # Another member's statement is not this session's to send.
    forged = json.dumps({**answer, "statement": to_sign["statement"].replace('"sam"', '"maya"')})
    assert (await post(web, url + "/decide", csrf, forged)).status_code == 403
    decided = await post(web, url + "/decide", csrf, json.dumps(answer))
    assert decided.status_code == 200, decided.text
    assert "constitution amended to v2" in decided.json()["message"]
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    status = (await web.get(url + "/status", headers={"accept": "application/json"})).json()
    assert status["executed"] and status["result"].startswith("Executed")
    page = await web.get(f"/t/{tenant}/constitution")
    assert "Version 2" in page.text and "added" in page.text
