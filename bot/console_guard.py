"""What keeps another web page from driving the console: Host, Origin, content type and a CSRF token.

The console can act as anyone, and on loopback it runs without a token by default.
Any page the operator has open could otherwise POST to it: a `<form
enctype=text/plain>` or a `fetch(…, {mode: "no-cors"})` needs no preflight, and a
page on evil.example whose name resolves to 127.0.0.1 (DNS rebinding) would even
read the answers. So, for every /console request:

- `Host` must name this server: a loopback name, `server.host`, or one of
  `[console] allowed_hosts` (else 421);
- a state-changing request (POST, PUT, DELETE, PATCH) must be `application/json`
  (else 415), must not come from another origin by `Origin` or `Sec-Fetch-Site`
  (else 403), and must carry the page's CSRF token (header X-Dongxian-CSRF) or the
  console token (else 403).

The CSRF token is per browser session: the page sets a random session cookie
(HttpOnly, SameSite=Strict) and puts HMAC(process key, session id) in a meta tag;
another origin can neither read the page nor set the header without a preflight
this server never answers. The process key is random at start: after a restart the
page is reloaded (the old token is refused with a message saying so), and behind
several instances the console token is what API clients use.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.core.config import Config

GUARD_KEY: "web.AppKey[ConsoleGuard]"
CSRF_HEADER = "X-Dongxian-CSRF"
SESSION_COOKIE = "dongxian_console"
_UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "127.0.0.1", "::1"})


def _host_name(host_header: str) -> str:
    """`Host: [::1]:8080` → '::1', `Host: Bot.Example.com:443` → 'bot.example.com'."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def _is_loopback_name(name: str) -> bool:
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ConsoleGuard:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._key = secrets.token_bytes(32)
        named = {config.server.host.lower()} if config.server.host not in ("", "0.0.0.0", "::") else set()
        self.allowed_hosts = named | {h.lower().rstrip(".") for h in config.console.allowed_hosts}

    # -- the token --------------------------------------------------------------------------------
    def token_for(self, session_id: str) -> str:
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()

    def session_of(self, request: web.Request) -> tuple[str, bool]:
        """The browser session id from the cookie, or a new one (True: set the cookie)."""
        sid = request.cookies.get(SESSION_COOKIE, "")
        if len(sid) == 43 and sid.replace("-", "").replace("_", "").isalnum():
            return sid, False
        return secrets.token_urlsafe(32), True

    def set_cookie(self, response: web.StreamResponse, sid: str) -> None:
        response.set_cookie(SESSION_COOKIE, sid, path="/console", httponly=True, samesite="Strict")

    # -- the checks --------------------------------------------------------------------------------
    def host_ok(self, request: web.Request) -> bool:
        name = _host_name(request.headers.get("Host", ""))
        return bool(name) and (_is_loopback_name(name) or name.rstrip(".") in self.allowed_hosts)

    def refusal(self, request: web.Request, console_token_ok: bool) -> web.Response | None:
        """Why this request must not reach the console, as an answer; None if it may."""
        if not self.host_ok(request):
            return web.json_response({"error": "this console does not answer to that host name "
                                               "(add it to [console] allowed_hosts)"}, status=421)
        if request.method not in _UNSAFE:
            return None
        ctype = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        # A bodiless DELETE (reset the clock) has no type to check; no form or no-cors fetch can send one.
        if ctype != "application/json" and (request.method != "DELETE" or request.body_exists):
            return web.json_response({"error": "the console API takes application/json only"}, status=415)
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        if site and site not in ("same-origin", "none"):
            return web.json_response({"error": "requests from other sites are refused"}, status=403)
        origin = request.headers.get("Origin")
        # The host part only: behind a TLS proxy the scheme seen here is not the browser's.
        if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("Host", "").lower():
            return web.json_response({"error": "requests from other origins are refused"}, status=403)
        if console_token_ok or self.config.console.token:
            # With a console token configured the handler refuses a request without it (401): the
            # token is the stronger proof, and a cross-site page cannot send it.
            return None
        given = request.headers.get(CSRF_HEADER, "")
        sid = request.cookies.get(SESSION_COOKIE, "")
        if not given or not sid or not hmac.compare_digest(given, self.token_for(sid)):
            return web.json_response({"error": "missing or stale CSRF token: reload the console page"}, status=403)
        return None


GUARD_KEY = web.AppKey("console_guard", ConsoleGuard)


def guard_middleware(guard: ConsoleGuard, token_given: Any) -> Any:
    @web.middleware
    async def console_guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/console" or request.path.startswith("/console/"):
            denied = guard.refusal(request, token_given(request))
            if denied is not None:
                return denied
        return await handler(request)

    return console_guard
