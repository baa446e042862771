"""How DingTalk signs what it sends us, and how HTTP-mode card presses find this tenant.

Robot messages in HTTP mode carry `timestamp` + `sign` headers,
sign = base64(HMAC-SHA256(appSecret, timestamp + "\\n" + appSecret)), refused outside a one-hour window.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from bot.core.config import TenantConfig

SIGNATURE_WINDOW_MS = 3600 * 1000
# How soon after its timestamp a second message with the same sign is still taken for a
# real one sent in the same millisecond (see DingTalkAdapter.http_callback).
SAME_MOMENT_MS = 5_000


def callback_sign(secret: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(appSecret, timestamp + "\\n" + appSecret)), as DingTalk signs HTTP callbacks."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_signature(secret: str, timestamp: str, sign: str, now: datetime) -> str | None:
    """None when the signature is good and fresh, else why not (for the log)."""
    if not timestamp or not sign:
        return "missing timestamp or sign header"
    # ASCII digits only: str.isdigit() also takes '²', which int() then refuses.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
        return "timestamp is not milliseconds"
    if abs(int(now.timestamp() * 1000) - int(timestamp)) > SIGNATURE_WINDOW_MS:
        return "timestamp outside the one-hour window"
    if not hmac.compare_digest(callback_sign(secret, timestamp).encode(), sign.encode()):
        return "bad sign"
    return None


def card_route_key(tenant: TenantConfig) -> str:
    """The callbackRouteKey HTTP-mode cards carry, so their presses reach this tenant."""
    return f"dongxian_{tenant.key}"


def card_callback_token(tenant: TenantConfig) -> str:
    """The secret in the registered card callback URL: DingTalk's card callbacks carry no robot signature."""
    assert tenant.dingtalk is not None
    return hmac.new(tenant.dingtalk.client_secret.encode(), f"card-callback:{tenant.key}".encode(),
                    hashlib.sha256).hexdigest()[:32]

