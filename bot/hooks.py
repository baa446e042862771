"""Webhooks from low-code tools and other systems: `POST /hooks/{tenant}/{source}`.

Two ways to prove the sender, chosen per source in `[tenants.trace.hooks.NAME]`:
- `standard` — Standard Webhooks (standardwebhooks.com): headers `webhook-id`, `webhook-timestamp`
  (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`
  (several space-separated signatures allowed, for key rotation); the key is the secret after
  `whsec_`, base64-decoded. A timestamp more than `tolerance_seconds` (5 minutes) away is stale.
- `static` — a fixed key in one header, for tools that can send nothing else (宜搭 HTTP connector).

Unsigned, forged or stale → 401; an id already received → 409; in both cases nothing is stored.
The body is one JSON event:
    {"id": "…", "type": "approval", "person": "wangqiang", "occurred_at": "2026-12-02T10:00:00+08:00",
     "code": "…", "status": "approved", "title": "…", "link": "…", "fields": {…}, "tasks": […]}
(in standard mode `id` defaults to webhook-id, which is what duplicates are told apart by).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from bot.core.config import TenantConfig
from bot.storable import storable
from handlers.trace_rules import HookSource, TraceSettings
from store import external_events as ext

log = logging.getLogger(__name__)

MAX_HOOK_BYTES = 256 * 1024


class HookRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret ("whsec_" + base64), or the raw secret's bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise HookRefused(500, "the configured whsec_ secret is not base64") from None
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The `webhook-signature` value for one message (what a sender computes)."""
    mac = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify_standard(hook: HookSource, headers: Any, body: bytes, now: datetime) -> str:
    """The message id once the signature and timestamp hold; else HookRefused(401)."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not timestamp or not signatures:
        raise HookRefused(401, "missing webhook-id, webhook-timestamp or webhook-signature")
    if not timestamp.isdigit():
        raise HookRefused(401, "webhook-timestamp is not Unix seconds")
    if abs(now.timestamp() - int(timestamp)) > hook.tolerance_seconds:
        raise HookRefused(401, "webhook-timestamp outside the tolerance (stale or from the future)")
    expected = sign(hook.secret, msg_id, timestamp, body).encode("ascii")
    for candidate in signatures.split(" "):
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode("ascii", "replace"), expected):
            return msg_id[:255]
    raise HookRefused(401, "no valid v1 signature")


def verify_static(hook: HookSource, headers: Any) -> None:
    given = headers.get(hook.header, "")
    if not given or not hmac.compare_digest(given.encode("utf-8", "replace"), hook.secret.encode("utf-8")):
        raise HookRefused(401, f"missing or wrong {hook.header}")


def incoming_from_json(source: str, data: Any, default_id: str, now: datetime) -> ext.Incoming:
    """The event a webhook body (or a file row) describes; HookRefused(400) when it is not one."""
    if not isinstance(data, dict):
        raise HookRefused(400, "the body is not a JSON object")
    if not storable(data):
        raise HookRefused(400, "the body holds what cannot be stored")
    external_id = str(data.get("id") or default_id).strip()
    if not external_id:
        raise HookRefused(400, "the event has no id")
    occurred = now
    if data.get("occurred_at"):
        try:
            occurred = datetime.fromisoformat(str(data["occurred_at"]))
        except ValueError:
            raise HookRefused(400, "occurred_at is not an ISO 8601 time") from None
        if occurred.tzinfo is None:
            raise HookRefused(400, "occurred_at needs a time zone offset (+08:00)")
    fields = data.get("fields") or {}
    tasks = data.get("tasks") or []
    if not isinstance(fields, dict) or not isinstance(tasks, list):
        raise HookRefused(400, "fields must be an object and tasks a list")
    return ext.Incoming(source=source, external_id=external_id, type=str(data.get("type") or "event")[:64],
                        person=str(data.get("person") or "").strip(), occurred_at=occurred,
                        code=str(data.get("code") or ""), status=str(data.get("status") or ""),
                        title=str(data.get("title") or "")[:500], link=str(data.get("link") or "")[:1000],
                        fields={str(k): v for k, v in fields.items()},
                        # The sender's own id names the business object (a contract): one tracking row for
                        # it, whatever webhook-id each delivery carries.
                        extra={"tasks": tasks, **({"instance": str(data["id"]).strip()[:255]} if data.get("id") else {})})


class Hooks:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/hooks/{tenant_key}/{source}", self.handle)

    def _hook(self, request: web.Request) -> tuple[TenantConfig, str, HookSource]:
        tenant = self.runtime.tenant(request.match_info["tenant_key"])
        source = request.match_info["source"]
        hook = TraceSettings.of(tenant).hooks.get(source) if tenant is not None else None
        if tenant is None or hook is None:
            raise HookRefused(404, "no webhook source at this URL")
        return tenant, source, hook

    async def handle(self, request: web.Request) -> web.Response:
        try:
            tenant, source, hook = self._hook(request)
            if request.content_length is not None and request.content_length > MAX_HOOK_BYTES:
                raise HookRefused(413, "body too large")
            body = await request.read()
            if len(body) > MAX_HOOK_BYTES:
                raise HookRefused(413, "body too large")
            # Real time, never the console's moved clock: the signature's timestamp is the sender's.
            now = self.runtime.clock.now()
            if hook.mode == "standard":
                default_id = verify_standard(hook, request.headers, body, now)
            else:
                verify_static(hook, request.headers)
                default_id = ""
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise HookRefused(400, "the body is not JSON") from None
            item = incoming_from_json(source, data, default_id, now)
            if hook.mode == "standard":
                item.external_id = default_id  # Standard Webhooks: duplicates are told apart by webhook-id
            fresh = await ext.ingest(self.runtime.db, tenant.key, item, now)
        except HookRefused as exc:
            self.runtime.stats["hooks_refused"] += 1
            log.warning("webhook %s refused (%s): %s", request.path, exc.status, exc.reason)
            return web.json_response({"ok": False, "error": exc.reason}, status=exc.status)
        if not fresh:
            self.runtime.stats["hooks_duplicates"] += 1
            return web.json_response({"ok": False, "error": "already received", "id": item.external_id}, status=409)
        self.runtime.stats["hooks_accepted"] += 1
        self.runtime.wake_inbox()
        return web.json_response({"ok": True, "id": item.external_id}, status=202)


def utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc)
