"""A small local HTTP server speaking Vault's transit API, for testing the real `hvac` client.

Implements what Charter uses: create/read a key, rotate, config (min_decryption_version),
encrypt, decrypt and rewrap with a derivation `context`, with real AES-256-GCM and
per-context derived keys (HKDF), the `vault:vN:` ciphertext format, token checks and
Vault's error shapes. Vault itself is not installable here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_PATH = re.compile(
    r"^/v1/(?P<mount>[^/]+)/(?P<op>keys|encrypt|decrypt|rewrap)/(?P<name>[^/]+)(?P<rest>/rotate|/config)?$"
)


class TransitState:
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []


def _derive(key: bytes, context: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(key)


class _Handler(BaseHTTPRequestHandler):
    state: TransitState
    token: str

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict[str, Any] | None) -> None:
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _errors(self, status: int, *messages: str) -> None:
        self._send(status, {"errors": list(messages)})

    def _route(self, method: str) -> None:
        self.state.requests.append(f"{method} {self.path}")
        if self.headers.get("X-Vault-Token") != self.token:
            return self._errors(403, "permission denied")
        match = _PATH.match(self.path)
        if match is None:
            return self._errors(404, "no handler for route")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        op, name, rest = match["op"], match["name"], match["rest"]
        key = self.state.keys.get(name)
        if op == "keys" and method == "POST" and not rest:
            if key is None:
                self.state.keys[name] = {
                    "versions": {1: AESGCM.generate_key(bit_length=256)},
                    "latest": 1,
                    "min_decryption_version": 1,
                    "derived": bool(body.get("derived")),
                }
            return self._send(204, None)
        if key is None:
            return self._errors(404 if op == "keys" else 400, "encryption key not found")
        if op == "keys" and method == "GET":
            return self._send(
                200,
                {
                    "data": {
                        "name": name,
                        "type": "aes256-gcm96",
                        "derived": key["derived"],
                        "latest_version": key["latest"],
                        "min_decryption_version": key["min_decryption_version"],
                        "keys": {str(v): 1700000000 + v for v in key["versions"]},
                    }
                },
            )
        if rest == "/rotate":
            key["latest"] += 1
            key["versions"][key["latest"]] = AESGCM.generate_key(bit_length=256)
            return self._send(200, {"data": {"latest_version": key["latest"]}})
        if rest == "/config":
            if "min_decryption_version" in body:
                key["min_decryption_version"] = int(body["min_decryption_version"])
            return self._send(200, {"data": {}})
        context = base64.b64decode(body.get("context") or "")
        if key["derived"] and not context:
            return self._errors(
                400, "missing 'context' for key derivation; the key was created using a derived key"
            )
        if op == "encrypt":
            return self._send(
                200,
                {
                    "data": {
                        "ciphertext": self._encrypt(
                            key, base64.b64decode(body["plaintext"]), context, key["latest"]
                        )
                    }
                },
            )
        try:
            _version, plaintext = self._decrypt(key, body["ciphertext"], context)
        except ValueError as exc:
            return self._errors(400, str(exc))
        if op == "decrypt":
            return self._send(200, {"data": {"plaintext": base64.b64encode(plaintext).decode()}})
        # rewrap: decrypt and re-encrypt inside "Vault"; the plaintext is never returned.
        return self._send(
            200,
            {
                "data": {
                    "ciphertext": self._encrypt(key, plaintext, context, key["latest"]),
                    "key_version": key["latest"],
                }
            },
        )

    @staticmethod
    def _material(key: dict[str, Any], version: int, context: bytes) -> bytes:
        raw = key["versions"][version]
        return _derive(raw, context) if key["derived"] else raw

    def _encrypt(self, key: dict[str, Any], plaintext: bytes, context: bytes, version: int) -> str:
        nonce = os.urandom(12)
        ct = AESGCM(self._material(key, version, context)).encrypt(nonce, plaintext, None)
        return f"vault:v{version}:" + base64.b64encode(nonce + ct).decode()

    def _decrypt(self, key: dict[str, Any], ciphertext: str, context: bytes) -> tuple[int, bytes]:
        m = re.match(r"^vault:v(\d+):(.+)$", ciphertext)
        if m is None:
            raise ValueError("invalid ciphertext: no prefix")
        version = int(m.group(1))
        if version < key["min_decryption_version"]:
            raise ValueError("ciphertext or signature version is disallowed by policy (too old)")
        if version not in key["versions"]:
            raise ValueError("invalid key version")
        try:
            blob = base64.b64decode(m.group(2), validate=True)
            return version, AESGCM(self._material(key, version, context)).decrypt(
                blob[:12], blob[12:], None
            )
        except (InvalidTag, ValueError):
            raise ValueError("cipher: message authentication failed") from None

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("POST")


@contextmanager
def fake_vault(token: str = "hvs.test-root-token-0000") -> Iterator[tuple[str, TransitState]]:
    state = TransitState()
    handler = type("Handler", (_Handler,), {"state": state, "token": token})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
