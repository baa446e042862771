"""Logging set-up: plain or JSON lines, with every configured secret masked.

Handlers and adapters should never log a secret in the first place; the
filter is the second line of defence for what slips through (an exception
message quoting a URL with a token, say).
"""
from __future__ import annotations

import logging
import os
import re
from typing import Iterable

from bot.core.config import Config

MASK = "***"
QUIET_LIBRARIES = ("aiosqlite", "websockets.client", "websockets.server")


def secrets_of(config: Config) -> list[str]:
    found: list[str] = []
    if config.console.token:
        found.append(config.console.token)
    for t in config.tenants:
        if t.wecom:
            found += [t.wecom.secret, t.wecom.token, t.wecom.encoding_aes_key]
        if t.dingtalk:
            found += [t.dingtalk.client_secret]
    # Short values would mask ordinary words; real secrets are long.
    return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)


# Credentials that are not in the config: a DingTalk sessionWebhook URL lets anyone post into that
# chat until it expires (its `session=` query is the key), and a Stream connection's `ticket`
# opens the connection. Both may surface in an exception quoting a URL or a response body.
_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)([?&](?:session|ticket|access_token)=)[^\s&\"'<>]+"),
    re.compile(r"(?i)(sendBySession[^\s\"'<>]*?session=)[^\s&\"'<>]+"),
    re.compile(r"(?i)([\"']?(?:ticket|sessionWebhook|session_webhook)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with the configured secrets, session webhooks and Stream tickets masked."""
    for s in secrets:
        text = text.replace(s, MASK)
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg, self.secrets)
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            red = redact(text, self.secrets)
            if red != text:
                record.exc_info = None
                record.exc_text = None
                clean = f"{clean}\n{red}"
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def setup_logging(config: Config | None = None, *, json_format: bool | None = None) -> None:
    level = os.environ.get("DONGXIAN_LOG_LEVEL", "INFO").upper()
    if json_format is None:
        json_format = bool(config and config.server.log_format == "json")
    handler = logging.StreamHandler()
    if json_format:
        from pythonjsonlogger.json import JsonFormatter
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Even without a config: session webhooks and Stream tickets are masked by pattern.
    handler.addFilter(RedactSecrets(secrets_of(config) if config is not None else []))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # At DEBUG these libraries trace everything they carry: aiosqlite every SQL parameter (people's
    # messages, DingTalk's sessionWebhook URLs, which are credentials), websockets the Stream connect
    # URL with its ticket. Our own DEBUG lines stay available.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    # The ticker beats every 30 s; APScheduler would log each beat at INFO.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
