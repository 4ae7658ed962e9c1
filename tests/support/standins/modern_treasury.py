"""A local Modern Treasury for tests: the endpoints Charter uses, as the provider documents them.

The official SDK talks to it through `base_url`. What it keeps to:
- HTTP Basic auth with organisation id and API key; 401 with the provider's error body.
  Keys are registered read-only or read-write: a read-only key gets 403 on any POST (the
  provider lets an organisation restrict a key's permissions).
- JSON shapes of internal accounts, counterparties (with their external accounts and each
  account's `verification_status`) and payment orders.
- Cursor pagination: `per_page` and `after_cursor` in, `X-After-Cursor` (and `X-Per-Page`)
  out, which is what the SDK's pager follows.
- `metadata[key]=value` filters on list endpoints.
- Idempotency-Key on POST, as documented: keys are scoped to the API key; a key's result
  is saved only once the request has completed (so a request re-sent while the first is
  still running, or after its connection dropped or it failed with a 500, makes a second
  order); the same key and body then return the stored response, the same key with a
  different body is a 422; keys expire after `key_retention` seconds (24 h) and can be
  "forgotten" at once.
- Lists are eventually consistent: an order shows in list results only `list_lag` seconds
  after it was created (retrieving it by id works at once).
- Errors as `{"errors": {"code", "message", "parameter"}}`; 429 with Retry-After.

`stall(seconds)` hangs every request until then. Faults, armed per test, fire on the next
matching requests: `reject_429`, `reject_503`
(nothing applied), and after applying the write: `error_500`, `delay` (answer late, so the
client times out), `hang` (never answer; for killing the client meanwhile) and `reset`
(drop the connection).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

FaultKind = str


@dataclass
class Fault:
    kind: FaultKind
    method: str = "POST"
    path: str = "/api/payment_orders"
    times: int = 1
    seconds: float = 1.0
    """`delay`: how late the answer comes; `reject_429`: the Retry-After value."""


@dataclass
class ModernTreasuryStandIn:
    organization_id: str = "org-standin"
    keys: dict[str, str] = field(default_factory=dict)
    """API key -> "read" or "write"."""
    internal_accounts: list[dict[str, Any]] = field(default_factory=list)
    counterparties: list[dict[str, Any]] = field(default_factory=list)
    payment_orders: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    forget_idempotency_keys: bool = False
    key_retention: float = 24 * 3600.0
    list_lag: float = 0.0
    requests: list[tuple[str, str]] = field(default_factory=list)
    applied: asyncio.Event = field(default_factory=asyncio.Event)
    """Set each time a payment order is created."""
    _idempotency: dict[tuple[str, str], tuple[str, int, dict[str, Any], float]] = field(
        default_factory=dict
    )
    _created: dict[str, float] = field(default_factory=dict)
    base_url: str = ""
    stalled_until: float = 0.0
    """Loop time until which every request hangs unanswered (`stall`); it is then handled."""

    # -- fixtures a test sets up ---------------------------------------------------------

    def stall(self, seconds: float) -> None:
        """Hang every request for `seconds` from now: each is answered (and a write applied)
        only when the stall ends, long after its client gave up, as an overloaded provider
        does."""
        self.stalled_until = asyncio.get_running_loop().time() + seconds

    def add_key(self, scope: str) -> str:
        key = f"live-{scope}-{uuid.uuid4().hex}"
        self.keys[key] = scope
        return key

    def add_internal_account(self, name: str, currency: str = "USD") -> str:
        now = _now()
        account = {
            "id": str(uuid.uuid4()),
            "object": "internal_account",
            "live_mode": False,
            "account_type": "checking",
            "party_name": name,
            "name": name,
            "currency": currency,
            "account_details": [],
            "routing_details": [],
            "account_capabilities": [],
            "connection": {
                "id": str(uuid.uuid4()),
                "object": "connection",
                "vendor_name": "Standin Bank",
            },
            "metadata": {},
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        self.internal_accounts.append(account)
        return str(account["id"])

    def add_counterparty(
        self, name: str, *, verification: str = "verified", metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        now = _now()
        account = {
            "id": str(uuid.uuid4()),
            "object": "external_account",
            "live_mode": False,
            "account_type": "checking",
            "party_name": name,
            "party_type": "business",
            "verification_status": verification,
            "account_details": [{"account_number_safe": "4471", "account_number_type": "other"}],
            "routing_details": [{"routing_number": "021000021", "routing_number_type": "aba"}],
            "metadata": {},
            "discarded_at": None,
            "created_at": now,
            "updated_at": now,
        }
        counterparty = {
            "id": str(uuid.uuid4()),
            "object": "counterparty",
            "live_mode": False,
            "name": name,
            "email": None,
            "accounts": [account],
            "metadata": metadata or {},
            "send_remittance_advice": False,
            "verification_status": "unverified",
            "discarded_at": None,
            "created_at": now,
            "updated_at": now,
        }
        self.counterparties.append(counterparty)
        return counterparty

    def orders_with(self, key: str, value: str) -> list[dict[str, Any]]:
        return [o for o in self.payment_orders if o["metadata"].get(key) == value]

    def duplicate(self, order_id: str, **metadata: str) -> dict[str, Any]:
        """A second order like `order_id`, as another client (or a lost retry) made it."""
        (order,) = [o for o in self.payment_orders if o["id"] == order_id]
        copy = {**order, "id": str(uuid.uuid4()), "metadata": {**order["metadata"], **metadata}}
        self.payment_orders.append(copy)
        self._created[copy["id"]] = _clock()
        return copy

    def expire_keys(self) -> None:
        """The retention has passed for every key saved so far."""
        self._idempotency.clear()

    def _listed(self) -> list[dict[str, Any]]:
        """The orders a list shows now: those created at least `list_lag` seconds ago."""
        now = _clock()
        # An order a test put in the list itself was made long ago.
        made = self._created
        return [o for o in self.payment_orders if made.get(o["id"], 0.0) + self.list_lag <= now]

    def _remembered(self, scope: tuple[str, str]) -> tuple[str, int, dict[str, Any]] | None:
        saved = self._idempotency.get(scope)
        if saved is None or self.forget_idempotency_keys:
            return None
        fingerprint, status, body, at = saved
        if at + self.key_retention <= _clock():
            del self._idempotency[scope]
            return None
        return fingerprint, status, body

    # -- the API -------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/internal_accounts", self._list_internal_accounts)
        app.router.add_get("/api/counterparties", self._list_counterparties)
        app.router.add_get("/api/payment_orders", self._list_payment_orders)
        app.router.add_get("/api/payment_orders/{id}", self._get_payment_order)
        app.router.add_post("/api/payment_orders", self._create_payment_order)
        app.router.add_patch("/api/payment_orders/{id}", self._update_payment_order)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        stalled = self.stalled_until - asyncio.get_running_loop().time()
        if stalled > 0:
            await asyncio.sleep(stalled)
        scope = self._authenticate(request)
        if scope is None:
            return _error(401, "unauthorized", "Invalid organization id or API key", None)
        if request.method in ("POST", "PATCH") and scope != "write":
            return _error(403, "forbidden", "This API key does not have write permissions", None)
        fault = self._take_fault(request, ("reject_429", "reject_503"))
        if fault is not None:
            if fault.kind == "reject_429":
                response = _error(429, "rate_limited", "Too many requests", None)
                # Whole seconds, as HTTP's Retry-After has them.
                response.headers["Retry-After"] = str(math.ceil(fault.seconds))
                return response
            return _error(503, "service_unavailable", "Service temporarily unavailable", None)
        result: web.StreamResponse = await handler(request)
        return result

    def _authenticate(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            org, _, key = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        if org != self.organization_id:
            return None
        return self.keys.get(key)

    def _take_fault(self, request: web.Request, kinds: tuple[str, ...]) -> Fault | None:
        for fault in self.faults:
            if (
                fault.kind in kinds
                and fault.method == request.method
                and request.path == fault.path
                and fault.times > 0
            ):
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def _list_internal_accounts(self, request: web.Request) -> web.Response:
        return _page(request, self.internal_accounts)

    async def _list_counterparties(self, request: web.Request) -> web.Response:
        items = self.counterparties
        name = request.query.get("name")
        if name is not None:
            items = [c for c in items if c["name"] == name]
        return _page(request, _by_metadata(request, items))

    async def _list_payment_orders(self, request: web.Request) -> web.Response:
        return _page(request, _by_metadata(request, self._listed()))

    async def _get_payment_order(self, request: web.Request) -> web.Response:
        for order in self.payment_orders:
            if order["id"] == request.match_info["id"]:
                return web.json_response(order)
        return _error(404, "resource_not_found", "Payment order not found", "id")

    async def _update_payment_order(self, request: web.Request) -> web.Response:
        """Only what Modern Treasury allows here: cancelling an order not yet sent to the
        bank (`approved` or `needs_approval`); anything else is a 422."""
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "parameter_invalid", "Request body is not valid JSON", None)
        order = next((o for o in self.payment_orders if o["id"] == request.match_info["id"]), None)
        if order is None:
            return _error(404, "resource_not_found", "Payment order not found", "id")
        if body != {"status": "cancelled"}:
            return _error(422, "parameter_invalid", "The stand-in only cancels orders", None)
        if order["status"] not in ("approved", "needs_approval"):
            return _error(
                422,
                "parameter_invalid",
                f"Payment order cannot be cancelled once it is {order['status']}",
                "status",
            )
        order["status"] = "cancelled"
        order["updated_at"] = _now()
        return web.json_response(order)

    async def _create_payment_order(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "parameter_invalid", "Request body is not valid JSON", None)
        key = request.headers.get("Idempotency-Key")
        scope = (request.headers.get("Authorization", ""), key or "")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        remembered = self._remembered(scope) if key else None
        if remembered is not None:
            stored_fp, status, stored = remembered
            if stored_fp != fingerprint:
                return _error(
                    422,
                    "parameter_invalid",
                    "Idempotency-Key has already been used with different request parameters",
                    "Idempotency-Key",
                )
            return web.json_response(stored, status=status)
        problem = self._invalid(body)
        if problem is not None:
            return _error(422, "parameter_invalid", problem[1], problem[0])
        order = self._order(body)
        self.payment_orders.append(order)
        self._created[order["id"]] = _clock()
        self.applied.set()
        fault = self._take_fault(request, ("error_500", "delay", "hang", "reset"))
        if fault is not None:
            # Each fails the request before it completes: the key's result is not saved.
            if fault.kind == "error_500":
                return _error(500, "internal_server_error", "Internal server error", None)
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "hang":
                await asyncio.sleep(600)
            elif fault.kind == "reset" and request.transport is not None:
                request.transport.abort()
                return web.Response(status=500)
        if key:
            self._idempotency[scope] = (fingerprint, 201, order, _clock())
        return web.json_response(order, status=201)

    def _invalid(self, body: dict[str, Any]) -> tuple[str, str] | None:
        amount = body.get("amount")
        if not isinstance(amount, int) or amount <= 0:
            return "amount", "Amount must be a positive integer"
        if body.get("direction") not in ("credit", "debit"):
            return "direction", "Direction must be credit or debit"
        if body.get("type") not in ("ach", "wire", "book", "rtp", "check"):
            return "type", "Type is not a valid payment type"
        if not any(a["id"] == body.get("originating_account_id") for a in self.internal_accounts):
            return "originating_account_id", "Originating account not found"
        if self._receiving(body.get("receiving_account_id")) is None:
            return "receiving_account_id", "Receiving account not found"
        metadata = body.get("metadata", {})
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            return "metadata", "Metadata values must be strings"
        return None

    def _receiving(self, account_id: object) -> tuple[dict[str, Any], dict[str, Any]] | None:
        for counterparty in self.counterparties:
            for account in counterparty["accounts"]:
                if account["id"] == account_id:
                    return counterparty, account
        return None

    def _order(self, body: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        found = self._receiving(body["receiving_account_id"])
        assert found is not None
        counterparty, _ = found
        return {
            "id": str(uuid.uuid4()),
            "object": "payment_order",
            "live_mode": False,
            "type": body["type"],
            "amount": body["amount"],
            "currency": body.get("currency", "USD"),
            "direction": body["direction"],
            "priority": body.get("priority", "normal"),
            "status": "approved",
            "description": body.get("description"),
            "metadata": body.get("metadata", {}),
            "counterparty_id": counterparty["id"],
            "originating_account_id": body["originating_account_id"],
            "originating_account_type": "internal_account",
            "receiving_account_id": body["receiving_account_id"],
            "receiving_account_type": "external_account",
            "effective_date": date.today().isoformat(),
            "reconciliation_status": "unreconciled",
            "reference_numbers": [],
            "transaction_ids": [],
            "nsf_protected": False,
            "accounting": {"account_id": None, "class_id": None},
            "created_at": now,
            "updated_at": now,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _clock() -> float:
    return time.monotonic()


def _error(status: int, code: str, message: str, parameter: str | None) -> web.Response:
    return web.json_response(
        {"errors": {"code": code, "message": message, "parameter": parameter}}, status=status
    )


def _by_metadata(request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = {
        k[len("metadata[") : -1]: v
        for k, v in request.query.items()
        if k.startswith("metadata[") and k.endswith("]")
    }
    return [i for i in items if all(i["metadata"].get(k) == v for k, v in wanted.items())]


def _page(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    per_page = min(int(request.query.get("per_page", "25")), 100)
    start = 0
    cursor = request.query.get("after_cursor")
    if cursor:
        ids = [i["id"] for i in items]
        if cursor not in ids:
            return _error(422, "parameter_invalid", "Invalid after_cursor", "after_cursor")
        start = ids.index(cursor) + 1
    page = items[start : start + per_page]
    response = web.json_response(page)
    response.headers["X-Per-Page"] = str(per_page)
    response.headers["X-Total-Count"] = str(len(items))
    if start + per_page < len(items):
        response.headers["X-After-Cursor"] = page[-1]["id"]
    return response
