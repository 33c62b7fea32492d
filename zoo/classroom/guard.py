"""Who may talk to the classroom server, and who may change what it holds.

A page on any other site can make a student's browser send "simple" requests (a form POST,
``text/plain``, multipart) to the classroom server without asking first; a DNS name pointed at
the server's address can make its pages same-origin with the attacker's. So:

* **Host**: only this machine's names (localhost, 127.0.0.1, ::1, its hostname) and the address
  the server announces are answered; anything else is 421 (DNS rebinding gets nothing).
* **Origin**: a request carrying an ``Origin`` must be same-origin with the server; a
  state-changing one (collect a drawing, start a new class) must carry one.
* **Token**: a state-changing request also carries the token the page holds in
  ``<meta name="zoo-token">`` as an ``X-Zoo-Token`` header. A cookie alone would not do: the
  browser sends cookies with cross-site requests too; a custom header it does not, without a
  preflight this server never grants. A new token is drawn each time the server starts.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlsplit

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
TOKEN_HEADER = "x-zoo-token"


def host_name(value: str) -> str:
    """The host part of a Host header or an origin's netloc, lower-case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1:value.index("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """The rules above, as ASGI middleware around the classroom app (``wrap``)."""

    def __init__(self, hosts=()):
        self.hosts = {host_name(h) for h in (*LOCAL_NAMES, *hosts) if h and h not in ("0.0.0.0", "::")}
        self.token = secrets.token_urlsafe(24)

    def wrap(self, app, changing: set[str]):
        guard = self

        async def guarded(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            refusal = guard.check(scope["method"], scope["path"], headers, scope.get("scheme", "http"), changing)
            if refusal is None:
                return await app(scope, receive, send)
            status, text = refusal
            body = json.dumps({"error": text}).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        guarded.state = app.state  # tests and the benchmark reach the batcher and the token through it
        guarded.app = app
        return guarded

    def check(self, method: str, path: str, headers: dict, scheme: str, changing: set[str]) -> tuple[int, str] | None:
        """Why a request is refused, as (status, one line), or None when it may pass."""
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return 421, f"this classroom server does not answer to the host {host[:60]!r}"
        origin = headers.get("origin")
        state_changing = method not in ("GET", "HEAD", "OPTIONS") and path in changing
        if origin is not None or state_changing:
            if origin is None:
                return 403, "a request that changes anything must come from the classroom page (no Origin)"
            parts = urlsplit(origin)
            if parts.scheme != scheme or parts.netloc.lower() != host.lower():
                return 403, f"cross-origin request refused (Origin {origin[:60]!r})"
        if state_changing and not secrets.compare_digest(headers.get(TOKEN_HEADER, ""), self.token):
            return 403, "the page's token is missing or wrong: reload the classroom page"
        return None
