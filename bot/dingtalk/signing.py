"""How DingTalk signs what it sends us, and how HTTP-mode card presses find this tenant.

Robot messages in HTTP mode carry `timestamp` + `sign` headers,
sign = base64(HMAC-SHA256(appSecret, timestamp + "\\n" + appSecret)), refused outside a one-hour window.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from bot.core.config import DingTalkConfig, TenantConfig

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


# HTTP card callbacks (event-callback-card page): headers x-ddpaas-signature-timestamp and
# x-ddpaas-signature = base64(HMAC-SHA256(key=apiSecret, msg=str(timestamp))), apiSecret being
# the one registered with /v1.0/card/callbacks/register for the route.
CARD_TIMESTAMP_HEADER = "x-ddpaas-signature-timestamp"
CARD_SIGNATURE_HEADER = "x-ddpaas-signature"


def card_api_secret(cfg: DingTalkConfig) -> str:
    """The apiSecret registered for HTTP card callbacks: derived from the app secret, never the secret itself."""
    return hmac.new(cfg.client_secret.encode(), f"card-callback:{cfg.client_id}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def card_callback_sign(api_secret: str, timestamp: str) -> str:
    digest = hmac.new(api_secret.encode(), timestamp.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def card_timestamp_ms(timestamp: str) -> int | None:
    """The timestamp in milliseconds; seconds are taken too (the page's examples do not say which) [?]."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
        return None
    value = int(timestamp)
    return value * 1000 if len(timestamp) <= 10 else value


def check_card_signature(api_secret: str, timestamp: str, sign: str, now: datetime) -> str | None:
    """None when an HTTP card callback's x-ddpaas signature is good and fresh, else why not."""
    if not timestamp or not sign:
        return "missing x-ddpaas-signature headers"
    ms = card_timestamp_ms(timestamp)
    if ms is None:
        return "x-ddpaas-signature-timestamp is not a number"
    if abs(int(now.timestamp() * 1000) - ms) > SIGNATURE_WINDOW_MS:
        return "x-ddpaas-signature-timestamp outside the one-hour window"
    if not hmac.compare_digest(card_callback_sign(api_secret, timestamp).encode(), sign.encode()):
        return "bad x-ddpaas-signature"
    return None
