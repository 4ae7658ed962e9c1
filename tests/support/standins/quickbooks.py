"""A local QuickBooks Online (Accounting API v3 and Intuit's OAuth 2.0) for tests.

python-quickbooks and intuit-oauth talk to it unpatched: intuit-oauth reads the OpenID
discovery document at `discovery_url` (which names this server's token endpoint), and the
QuickBooks client's `api_url_v3` points here. What it keeps to:
- Bearer access tokens that expire; 401 with the API's `Fault` body when missing or expired.
- The token endpoint: HTTP Basic client authentication, `grant_type=refresh_token`, a new
  access token and a rotated refresh token (the old one stops working); `invalid_grant`
  (400) for a revoked or rotated-away refresh token, `invalid_client` (401) for a wrong
  client secret.
- `POST /v3/company/{realm}/query` with the query as `application/text`, `STARTPOSITION` /
  `MAXRESULTS` paging, answers shaped `{"QueryResponse": {"Bill": [...]}, "time": ...}`.
- 429 `ThrottleExceeded` as a fault; Intuit's transient fault (HTTP 500, code 10000) and a
  503 from the token endpoint, as many times as a test says.
- `GET /v3/company/{realm}/{entity}/{id}` reads one record.
- `POST /v3/company/{realm}/billpayment` creates a BillPayment as Intuit documents it: each
  `Line`'s `LinkedTxn` of type Bill has its Balance reduced by the line's Amount (refused
  past the balance); the same `requestid` query parameter answers the BillPayment the first
  request made, creating nothing. `lose_bill_payment_answers` applies a create and then
  answers 500, as a dropped answer looks to the client; `hang_bill_payment_answers` applies it
  and never answers (a worker killed meanwhile).
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

_QUERY = re.compile(
    r"^select \* from (\w+)(?: startposition (\d+))?(?: maxresults (\d+))?$", re.IGNORECASE
)


@dataclass
class QuickBooksStandIn:
    realm_id: str = "9130357766"
    client_id: str = "ABclient"
    client_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    access_tokens: dict[str, float] = field(default_factory=dict)
    """Access token -> expiry (epoch seconds)."""
    refresh_tokens: set[str] = field(default_factory=set)
    vendors: list[dict[str, Any]] = field(default_factory=list)
    bills: list[dict[str, Any]] = field(default_factory=list)
    bill_payments: list[dict[str, Any]] = field(default_factory=list)
    by_request_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    throttle: int = 0
    transient_faults: int = 0
    token_unavailable: int = 0
    lose_bill_payment_answers: int = 0
    hang_bill_payment_answers: int = 0
    bill_payment_applied: asyncio.Event = field(default_factory=asyncio.Event)
    refreshes: int = 0
    base_url: str = ""

    def grant(self, *, expired: bool = False) -> dict[str, str]:
        """A token set as the OAuth flow would hand it to the company's admin."""
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access_tokens[access] = time.time() + (-60 if expired else 3600)
        self.refresh_tokens.add(refresh)
        expires = datetime.fromtimestamp(self.access_tokens[access], UTC)
        return {"access_token": access, "refresh_token": refresh, "expires_at": expires.isoformat()}

    def revoke_all(self) -> None:
        self.access_tokens.clear()
        self.refresh_tokens.clear()

    def add_vendor(self, name: str) -> str:
        vendor_id = str(50 + len(self.vendors))
        self.vendors.append(
            {
                "Id": vendor_id,
                "DisplayName": name,
                "CompanyName": name,
                "Active": True,
                "Balance": 0,
                "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
                "SyncToken": "0",
                "MetaData": {"CreateTime": _now(), "LastUpdatedTime": _now()},
            }
        )
        return vendor_id

    def add_bill(
        self,
        number: str,
        vendor_id: str,
        total: str,
        *,
        balance: str | None = None,
        currency: str = "USD",
        due: date | None = None,
        memo: str = "",
        no_due_date: bool = False,
    ) -> str:
        vendor = next(v for v in self.vendors if v["Id"] == vendor_id)
        amount = Decimal(total)
        bill_id = str(140 + len(self.bills))
        self.bills.append(
            {
                "Id": bill_id,
                "DocNumber": number,
                "VendorRef": {"value": vendor_id, "name": vendor["DisplayName"]},
                "TotalAmt": float(amount),
                "Balance": float(Decimal(balance) if balance is not None else amount),
                "CurrencyRef": {"value": currency, "name": currency},
                "DueDate": (due or date.today()).isoformat(),
                "TxnDate": date.today().isoformat(),
                "PrivateNote": memo,
                "Line": [
                    {
                        "Id": "1",
                        "Amount": float(amount),
                        "DetailType": "AccountBasedExpenseLineDetail",
                        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "7"}},
                    }
                ],
                "SyncToken": "0",
                "MetaData": {"CreateTime": _now(), "LastUpdatedTime": _now()},
            }
        )
        if no_due_date:
            del self.bills[-1]["DueDate"]
        return bill_id

    def bill(self, bill_id: str) -> dict[str, Any]:
        return next(b for b in self.bills if b["Id"] == bill_id)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid_configuration", self._discovery)
        app.router.add_post("/oauth2/v1/tokens/bearer", self._token)
        app.router.add_post("/v3/company/{realm}/query", self._query)
        app.router.add_post("/v3/company/{realm}/billpayment", self._create_bill_payment)
        app.router.add_get("/v3/company/{realm}/{entity}/{id}", self._read_one)
        return app

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid_configuration"

    async def _discovery(self, request: web.Request) -> web.Response:
        b = self.base_url
        return web.json_response(
            {
                "issuer": b,
                "authorization_endpoint": f"{b}/connect/oauth2",
                "token_endpoint": f"{b}/oauth2/v1/tokens/bearer",
                "userinfo_endpoint": f"{b}/v1/openid_connect/userinfo",
                "revocation_endpoint": f"{b}/oauth2/v1/tokens/revoke",
                "jwks_uri": f"{b}/oauth2/v1/keys",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        if self.token_unavailable > 0:
            self.token_unavailable -= 1
            return web.Response(status=503, text="Service Unavailable")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        old = str(form.get("refresh_token", ""))
        if old not in self.refresh_tokens:
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.refresh_tokens.discard(old)
        self.refreshes += 1
        tokens = self.grant()
        return web.json_response(
            {
                "token_type": "bearer",
                "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
                "expires_in": 3600,
                "x_refresh_token_expires_in": 8726400,
            }
        )

    def _refused(self, request: web.Request) -> web.Response | None:
        """The answer to a request the API turns away before reading it, if it does."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.access_tokens.get(token, 0) <= time.time():
            return _fault(401, "AUTHENTICATION", "AuthenticationFailed", "3200", "Token expired")
        if request.match_info["realm"] != self.realm_id:
            return _fault(403, "AUTHORIZATION", "ApplicationAuthorizationFailed", "003100", "realm")
        if self.throttle > 0:
            self.throttle -= 1
            return _fault(
                429, "SERVICE", "ThrottleExceeded", "3001", "The request limit was reached."
            )
        if self.transient_faults > 0:
            self.transient_faults -= 1
            return _fault(
                500, "SystemFault", "An application error has occurred", "10000", "retry later"
            )
        return None

    async def _read_one(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        entity = request.match_info["entity"].lower()
        records = {"bill": self.bills, "vendor": self.vendors, "billpayment": self.bill_payments}
        found = [r for r in records.get(entity, []) if r["Id"] == request.match_info["id"]]
        if not found:
            return _fault(400, "ValidationFault", "Object Not Found", "610", entity)
        name = {"bill": "Bill", "vendor": "Vendor", "billpayment": "BillPayment"}[entity]
        return web.json_response({name: found[0], "time": _now()})

    async def _create_bill_payment(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        requestid = request.query.get("requestid")
        if requestid is not None and requestid in self.by_request_id:
            return web.json_response({"BillPayment": self.by_request_id[requestid], "time": _now()})
        body = await request.json()
        paid: list[tuple[dict[str, Any], Decimal]] = []
        for line in body.get("Line", []):
            for linked in line.get("LinkedTxn", []):
                if linked.get("TxnType") != "Bill":
                    continue
                bills = [b for b in self.bills if b["Id"] == str(linked.get("TxnId"))]
                if not bills:
                    return _fault(400, "ValidationFault", "Invalid Reference Id", "2500", "bill")
                amount = Decimal(str(line["Amount"]))
                if amount > Decimal(str(bills[0]["Balance"])):
                    return _fault(
                        400, "ValidationFault", "Amount exceeds the balance", "6000", "Line"
                    )
                paid.append((bills[0], amount))
        if not paid or "VendorRef" not in body:
            return _fault(400, "ValidationFault", "Required param missing", "2020", "Line")
        for bill, amount in paid:
            bill["Balance"] = float(Decimal(str(bill["Balance"])) - amount)
            bill["SyncToken"] = str(int(bill["SyncToken"]) + 1)
        created = {
            **body,
            "Id": str(900 + len(self.bill_payments)),
            "SyncToken": "0",
            "MetaData": {"CreateTime": _now(), "LastUpdatedTime": _now()},
        }
        self.bill_payments.append(created)
        if requestid is not None:
            self.by_request_id[requestid] = created
        self.bill_payment_applied.set()
        if self.hang_bill_payment_answers > 0:
            # Applied, and the answer never comes (until the client goes away).
            self.hang_bill_payment_answers -= 1
            await asyncio.sleep(3600)
        if self.lose_bill_payment_answers > 0:
            self.lose_bill_payment_answers -= 1
            return _fault(500, "SystemFault", "An application error has occurred", "10000", "")
        return web.json_response({"BillPayment": created, "time": _now()})

    async def _query(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        match = _QUERY.match((await request.text()).strip())
        if match is None:
            return _fault(400, "ValidationFault", "QueryParserError", "4000", "Unsupported query")
        kind, start, limit = match.group(1), int(match.group(2) or 1), int(match.group(3) or 100)
        records = {
            "bill": self.bills,
            "vendor": self.vendors,
            "billpayment": self.bill_payments,
        }.get(kind.lower())
        if records is None:
            return _fault(400, "ValidationFault", "QueryValidationError", "4001", kind)
        page = records[start - 1 : start - 1 + limit]
        response: dict[str, Any] = {}
        if page:
            response = {kind.capitalize(): page, "startPosition": start, "maxResults": len(page)}
        return web.json_response({"QueryResponse": response, "time": _now()})


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _fault(status: int, kind: str, message: str, code: str, detail: str) -> web.Response:
    return web.json_response(
        {
            "Fault": {
                "Error": [
                    {
                        "Message": f"message={message}; errorCode={code}; statusCode={status}",
                        "Detail": detail,
                        "code": code,
                    }
                ],
                "type": kind,
            },
            "time": _now(),
        },
        status=status,
    )
