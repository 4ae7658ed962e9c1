"""The web inbox in a real browser: Debian's Chromium over the DevTools protocol with a
virtual authenticator. A founder enrols a passkey through the owner's link, signs in,
approves an exception and sees the payment execute; an altered assertion is refused;
another tenant's exception stays invisible; every page carries the strict CSP."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Route, expect
from temporalio.client import Client
from temporalio.worker import Worker

from charter.storage import Database
from charter.web.security import CSP
from tests.support.browser import browser, inbox, screenshot, with_authenticator
from tests.support.cli import run_main
from tests.support.running import start, until_stage
from tests.support.tenants import TenantPair

WAIT = 60_000  # ms: a loaded machine runs the act and the run's next task slowly


def altered(route_body: str) -> str:
    """The page's signed answer with one byte of the signature changed."""
    body = json.loads(route_body)
    signature = body["response"]["signature"]
    body["response"]["signature"] = (
        signature[:10] + ("B" if signature[10] == "A" else "A") + signature[11:]
    )
    return json.dumps(body)


async def enrol_and_sign_in(page: Page, origin: str, tenant: str, link: str, shots: Path) -> None:
    await page.goto(link)
    await page.click("#enrol")
    await page.wait_for_selector("#next", timeout=WAIT)
    assert "enrolled for sam" in (await page.text_content("#message") or "")
    await screenshot(page, "web-enrol", shots)
    await page.click("#next")
    await page.click("#signin")
    await page.wait_for_url(f"{origin}/t/{tenant}/", timeout=WAIT)


async def decide_once(page: Page) -> None:
    await page.click("#approve")
    await page.wait_for_selector("#confirm:not([hidden])", timeout=WAIT)
    await page.click("#sign")


async def test_enrol_sign_in_approve_and_see_the_payment_execute(
    client: Client,
    worker: Worker,
    db: Database,
    tenant: str,
    pair: TenantPair,
    cli_env: Path,
    tmp_path: Path,
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    exception_id = state.proposals[0].exception_id
    assert exception_id is not None
    async with inbox(db, client) as origin, browser() as chromium:
        ran = await run_main(
            "members", "invite-passkey", "sam", "--tenant", tenant, "--as", "maya",
            env={"CHARTER_WEB_ORIGIN": origin},
        )  # fmt: skip
        assert ran.code == 0, ran.output
        link = ran.out.strip().splitlines()[-1]
        assert link.startswith(f"{origin}/t/{tenant}/enrol/")
        page = await (await chromium.new_context()).new_page()
        await with_authenticator(page)
        await enrol_and_sign_in(page, origin, tenant, link, tmp_path)

        # The CSP is on every page, and it bites: an inline script does not run.
        response = await page.reload()
        assert response is not None and response.headers["content-security-policy"] == CSP
        with contextlib.suppress(PlaywrightError):  # refused: the script never ran
            await page.add_script_tag(content="window.injected = 1")
        assert await page.evaluate("typeof window.injected") == "undefined"
        assert exception_id in (await page.text_content("table.inbox") or "")
        await screenshot(page, "web-inbox", tmp_path)

        await page.click(f"a.exception[href$='{exception_id}']")
        assert "Bluebird Design Studio" in (await page.text_content("#observed") or "")
        assert "NOT verified" in (await page.text_content("#observed") or "")
        await page.fill("textarea[name=reason]", "brand studio, checked by phone")

        # An assertion altered on its way is refused by the run, and nothing executes.
        async def tamper(route: Route) -> None:
            await route.continue_(post_data=altered(route.request.post_data or "{}"))

        await page.route("**/decide", tamper)
        await decide_once(page)
        await page.wait_for_selector(".message.refusal", timeout=WAIT)
        refusal = await page.text_content("#message") or ""
        assert "does not verify" in refusal, refusal
        shown = await page.text_content("#shown") or ""
        assert "$2,300.00" in shown and "Bluebird Design Studio" in shown
        await page.unroute("**/decide")

        await page.click("#approve")
        await page.wait_for_selector("#confirm:not([hidden])", timeout=WAIT)
        await screenshot(page, "web-sign", tmp_path)
        await page.click("#sign")
        # (Not `wait_for_function`: the page's CSP refuses the evaluated string, as it should.)
        await expect(page.locator("#result")).to_have_text(re.compile("^Executed"), timeout=WAIT)
        await screenshot(page, "web-executed", tmp_path)
        result = await handle.result()
        assert result.proposals[0].status == "executed"
        assert "Approved by Sam Okafor" in (await page.text_content("main") or "")

        # The read-only views: the run's audit trail with the chain's status, the law.
        await page.click("text=Audit trail of the run")
        chain = await page.text_content("#chain") or ""
        assert "verifies" in chain and "DOES NOT" not in chain, chain
        assert "decision" in (await page.text_content("table.trail") or "")
        await page.click("text=Constitution")
        assert "Version 1" in (await page.text_content("main") or "")

        # Another tenant: its inbox asks for its own sign-in, and its exception is not here.
        await page.goto(f"{origin}/t/{pair.a}/")
        assert page.url == f"{origin}/t/{pair.a}/signin"
        missing = await page.goto(f"{origin}/t/{tenant}/exceptions/ex-1")
        assert missing is not None and missing.status == 404
        assert "no exception ex-1" in (await page.text_content("#refusal") or "")
