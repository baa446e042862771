"""The signed upload link of a task: who may send which task's deliverable, until when.

    https://dx.example.com/upload/<payload>.<signature>

The payload (base64url JSON: tenant, task id, owner, expiry, a random nonce) is signed with
HMAC-SHA256 under the tenant's `upload_secret`, so nothing is stored when a card is sent. A link is
used once: the upload becomes an inbox event whose dedup key is the nonce, and the inbox refuses a
second one (bot/upload.py).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cards.model import Link
from cards.texts import t
from handlers.deliverables import texts as _texts  # noqa: F401  (registers deliv.upload.link)
from handlers.deliverables.rules import template_for
from handlers.deliverables.settings import DeliverableSettings

UPLOAD_KEY = "upload:"  # + the nonce: the inbox dedup key of an upload


@dataclass(frozen=True)
class UploadGrant:
    tenant: str
    task_id: int
    userid: str
    expires: datetime
    nonce: str

    @property
    def dedup_key(self) -> str:
        return UPLOAD_KEY + self.nonce


class Forged(Exception):
    """Not signed by us (or not a token at all)."""


class Expired(Exception):
    pass


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def make_token(secret: str, tenant: str, task_id: int, userid: str, expires: datetime) -> str:
    body = {"t": tenant, "k": task_id, "u": userid, "e": int(expires.timestamp()), "n": secrets.token_urlsafe(12)}
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{payload}.{_sign(secret, payload)}"


def tenant_of(token: str) -> str:
    """The tenant a token claims (unverified: only to find whose secret checks it)."""
    try:
        return str(json.loads(_unb64(token.split(".", 1)[0]))["t"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Forged() from None


def read_token(secret: str, token: str, now: datetime) -> UploadGrant:
    payload, _, signature = token.partition(".")
    if not secret or not signature or not hmac.compare_digest(_sign(secret, payload), signature):
        raise Forged()
    try:
        body = json.loads(_unb64(payload))
        grant = UploadGrant(str(body["t"]), int(body["k"]), str(body["u"]),
                            datetime.fromtimestamp(int(body["e"]), timezone.utc), str(body["n"]))
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Forged() from None
    if now >= grant.expires:
        raise Expired()
    return grant


def upload_url(settings: DeliverableSettings, tenant: str, task_id: int, userid: str, now: datetime) -> str:
    """The task's upload address, or "" when the tenant has no upload_url."""
    if not settings.upload_url or not settings.upload_secret:
        return ""
    token = make_token(settings.upload_secret, tenant, task_id, userid, now + timedelta(hours=settings.upload_hours))
    return f"{settings.upload_url}/upload/{token}"


def upload_links(settings: DeliverableSettings, locale: str, tenant: str, task_id: int, userid: str,
                 template: str, now: datetime) -> list[Link]:
    """The task card's 上传交付物 button: only for a task whose template has field rules (what the
    upload is checked against), and only where the tenant set upload_url."""
    if not template or template_for(template, settings.rules) is None:
        return []
    url = upload_url(settings, tenant, task_id, userid, now)
    return [Link(t(locale, "deliv.upload.link"), url)] if url else []
