"""Async client for WeCom's server API (one per app): access token, retries, limits.

The token is cached until shortly before it expires and refreshed single-flight:
however many senders wait, one gettoken call is made. Token errors invalidate
the token (only if it is still the one that failed, so fifty senders holding the
same dead token cause one refresh) and the call is repeated once. Short transient
failures are retried here with jittered backoff; longer waits are left to the
outbox relay through `WeComError.retry_after`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import secrets
import time
from collections import deque
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable
from urllib.parse import unquote

import aiohttp

from bot.core.config import WeComConfig

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40014, 42001, 40001})
# gettoken's answers for a wrong secret / corp id, and how long to leave gettoken alone after one.
CREDENTIAL_ERRORS = frozenset({40001, 40013})
CREDENTIAL_BACKOFF_SECONDS = 3 * 3600.0
# -1 busy and 45033 concurrency clear within seconds; 45009 frequency blocks for about a minute.
QUICK_RETRY_ERRORS = frozenset({-1, 45033})
RATE_LIMIT_ERRORS = frozenset({45009})
TRANSIENT_ERRORS = QUICK_RETRY_ERRORS | RATE_LIMIT_ERRORS
# 41001 missing token cannot happen from this client, but a proxy may eat the query string.
RETRYABLE_ERRORS = TRANSIENT_ERRORS | TOKEN_ERRORS | {41001}

REFRESH_MARGIN_SECONDS = 300.0
# What WeCom allows per corp and API (10,000/min); message sending has its own per-member limits.
API_CALLS_PER_MINUTE = 10_000


class WeComError(Exception):
    """WeCom answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str, api: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{api}: errcode {errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.errcode in RETRYABLE_ERRORS


class MediaTooBig(Exception):
    """A media/get file over the cap asked for; `size` is what the platform declared (or what was read)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.I)


def _disposition_filename(header: str) -> str:
    m = _FILENAME.search(header or "")
    return unquote(m.group(1)).strip() if m else ""


class WeComTransportError(Exception):
    """The call did not get a usable answer (connection dropped, timeout, not JSON)."""

    def __init__(self, api: str, reason: str, *, retry_after: float = 3.0) -> None:
        super().__init__(f"{api}: {reason}")
        self.api = api
        self.retry_after = retry_after


class RateWindow:
    """Sliding-window counter: at most `limit` events per `period` seconds."""

    def __init__(self, limit: int, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.period = period
        self._clock = clock
        self._events: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._events and self._events[0] <= now - self.period:
            self._events.popleft()

    def wait_time(self) -> float:
        """Seconds until one more event fits (0 if it fits now)."""
        now = self._clock()
        self._trim(now)
        if len(self._events) < self.limit:
            return 0.0
        return max(self._events[0] + self.period - now, 0.01)

    def add(self) -> None:
        self._events.append(self._clock())


def multipart_media(filename: str, content: bytes, content_type: str) -> tuple[bytes, str]:
    """The media/upload body as WeCom's sample sends it: the file name in plain UTF-8.

    aiohttp's FormData would percent-encode a Chinese name, and WeCom would show
    the encoded form to the person receiving the file.
    """
    safe = "".join(ch for ch in filename if ch not in '"\\\r\n') or "file"
    boundary = "----dongxian" + secrets.token_hex(12)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{safe}\"; "
            f"filelength={len(content)}\r\nContent-Type: {content_type}\r\n\r\n")
    body = head.encode("utf-8") + content + f"\r\n--{boundary}--\r\n".encode("ascii")
    return body, f"multipart/form-data; boundary={boundary}"


def jitter(base: float) -> float:
    """Full jitter between base/2 and base."""
    return random.uniform(base / 2, base)


class WeComAPI:
    """Calls of one WeCom app (corp id + secret + agent id)."""

    def __init__(self, cfg: WeComConfig, session: aiohttp.ClientSession, *,
                 clock: Callable[[], float] = time.monotonic, quick_retries: int = 2,
                 quick_backoff: float = 0.25, rate_limit_wait: float = 60.0,
                 refresh_margin: float = REFRESH_MARGIN_SECONDS) -> None:
        self.cfg = cfg
        self.base = cfg.api_base.rstrip("/") + "/cgi-bin/"
        self._session = session
        self._clock = clock
        self.quick_retries = quick_retries
        self.quick_backoff = quick_backoff
        self.rate_limit_wait = rate_limit_wait
        self.refresh_margin = refresh_margin
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._windows: dict[str, RateWindow] = {}
        self.token_fetches = 0
        # After WeCom refuses the secret or corp id, no gettoken until then (monotonic clock).
        self._credentials_refused: tuple[float, WeComError] | None = None

    # -- access token -------------------------------------------------------------
    def _valid(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    async def access_token(self) -> str:
        if self._valid():
            return self._token  # type: ignore[return-value]
        async with self._lock:
            if self._valid():  # someone else refreshed while we waited
                return self._token  # type: ignore[return-value]
            if self._credentials_refused is not None:
                until, refused = self._credentials_refused
                if self._clock() < until:
                    # Repeated calls with a wrong secret ban this server's IP for an hour, for every
                    # tenant (WWdoc 90313, 45009 help): ask again only after the back-off, or a restart
                    # with a corrected config.
                    raise WeComError(refused.errcode, "credentials refused earlier; not asking again yet", "gettoken",
                                     retry_after=until - self._clock())
                self._credentials_refused = None
            data = await self._request("GET", "gettoken", params={
                "corpid": self.cfg.corp_id, "corpsecret": self.cfg.secret})
            code = int(data.get("errcode", 0) or 0)
            if code != 0:
                if code in CREDENTIAL_ERRORS:
                    # A wrong secret or corp id: an operator must fix the config. Hours, not minutes.
                    refused = WeComError(code, str(data.get("errmsg", "")), "gettoken",
                                         retry_after=CREDENTIAL_BACKOFF_SECONDS)
                    self._credentials_refused = (self._clock() + CREDENTIAL_BACKOFF_SECONDS, refused)
                    log.error("WeCom refused the corp id or secret of agent %s (errcode %s); no new token request "
                              "for %d hours", self.cfg.agent_id, code, CREDENTIAL_BACKOFF_SECONDS // 3600)
                    raise refused
                raise WeComError(code, str(data.get("errmsg", "")), "gettoken", retry_after=jitter(5.0))
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise WeComTransportError("gettoken", "answer has no access_token")
            expires_in = float(data.get("expires_in", 7200) or 7200)
            self._token = token
            self._expires_at = self._clock() + max(expires_in - self.refresh_margin, expires_in / 2)
            self.token_fetches += 1
            log.info("fetched a WeCom access token for agent %s (valid %ss)", self.cfg.agent_id, int(expires_in))
            return token

    def invalidate(self, token: str) -> None:
        """Forget `token` if it is still the cached one."""
        if self._token == token:
            self._token = None
            self._expires_at = 0.0

    # -- HTTP ----------------------------------------------------------------------
    def _redact(self, path: str) -> str:
        return path.split("?")[0]

    async def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                       json_body: Any = None, raw: tuple[bytes, str] | None = None) -> dict[str, Any]:
        api = self._redact(path)
        window = self._windows.setdefault(api, RateWindow(API_CALLS_PER_MINUTE, 60.0, self._clock))
        wait = window.wait_time()
        if wait:
            raise WeComError(45009, "local per-API limit", api, retry_after=wait)
        window.add()
        kwargs: dict[str, Any] = {"params": {k: str(v) for k, v in (params or {}).items()}}
        if json_body is not None:
            # WeCom reads UTF-8 JSON; ensure_ascii=False keeps byte limits what we measured.
            kwargs["data"] = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            kwargs["headers"] = {"Content-Type": "application/json; charset=utf-8"}
        elif raw is not None:
            kwargs["data"] = raw[0]
            kwargs["headers"] = {"Content-Type": raw[1]}
        try:
            async with self._session.request(method, self.base + path, **kwargs) as resp:
                if resp.status != 200:
                    raise WeComTransportError(api, f"HTTP {resp.status}")
                raw = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise WeComTransportError(api, type(exc).__name__) from None
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise WeComTransportError(api, "answer is not JSON") from None
        if not isinstance(parsed, dict):
            raise WeComTransportError(api, "answer is not a JSON object")
        return parsed

    async def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                   json_body: Any = None, raw: tuple[bytes, str] | None = None) -> dict[str, Any]:
        """One API call with the token added; token errors refresh once, brief faults retry."""
        token_retries = 1
        attempt = 0
        while True:
            token = await self.access_token()
            q = dict(params or {})
            q["access_token"] = token
            try:
                data = await self._request(method, path, params=q, json_body=json_body, raw=raw)
            except WeComTransportError as exc:
                if attempt < self.quick_retries:
                    attempt += 1
                    await asyncio.sleep(jitter(self.quick_backoff * 2 ** attempt))
                    continue
                exc.retry_after = jitter(6.0)
                raise
            code = int(data.get("errcode", 0) or 0)
            if code == 0:
                return data
            errmsg = str(data.get("errmsg", ""))
            if code in TOKEN_ERRORS or code == 41001:
                self.invalidate(token)
                if token_retries > 0:
                    token_retries -= 1
                    continue
                raise WeComError(code, errmsg, path, retry_after=jitter(30.0))
            if code in QUICK_RETRY_ERRORS:
                if attempt < self.quick_retries:
                    attempt += 1
                    await asyncio.sleep(jitter(self.quick_backoff * 2 ** attempt))
                    continue
                raise WeComError(code, errmsg, path, retry_after=jitter(6.0))
            if code in RATE_LIMIT_ERRORS:
                raise WeComError(code, errmsg, path, retry_after=self.rate_limit_wait + jitter(10.0))
            raise WeComError(code, errmsg, path, retry_after=None)

    # -- the APIs we use -----------------------------------------------------------
    async def send_message(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "message/send", json_body=body)

    async def update_template_card(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "message/update_template_card", json_body=body)

    async def upload_media(self, kind: str, filename: str, content: bytes, content_type: str) -> str:
        """Upload a temporary file (valid 3 days) and return its media_id."""
        data = await self.call("POST", "media/upload", params={"type": kind},
                               raw=multipart_media(filename, content, content_type))
        media_id = data.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise WeComTransportError("media/upload", "answer has no media_id")
        return media_id

    async def download_media(self, media_id: str, max_bytes: int) -> tuple[bytes, str, str]:
        """media/get (developer.work.weixin.qq.com/document/path/90254): (content, filename, content type).

        Success is the file itself, like any HTTP download (`Content-disposition: attachment;
        filename="…"`); a failure is a JSON body with errcode (40007 invalid media_id). A file over
        `max_bytes` raises `MediaTooBig` without reading past the cap. Token errors refresh once.
        """
        for attempt in (1, 2):
            token = await self.access_token()
            window = self._windows.setdefault("media/get", RateWindow(API_CALLS_PER_MINUTE, 60.0, self._clock))
            if window.wait_time():
                raise WeComError(45009, "local per-API limit", "media/get", retry_after=window.wait_time())
            window.add()
            try:
                async with self._session.get(self.base + "media/get",
                                             params={"access_token": token, "media_id": media_id}) as resp:
                    if resp.status != 200:
                        raise WeComTransportError("media/get", f"HTTP {resp.status}")
                    ctype = resp.headers.get("Content-Type", "")
                    declared = resp.content_length
                    if declared is not None and declared > max_bytes:
                        raise MediaTooBig(declared)
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        body += chunk
                        if len(body) > max_bytes:
                            raise MediaTooBig(declared or len(body))
                    disposition = resp.headers.get("Content-Disposition", "")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise WeComTransportError("media/get", type(exc).__name__) from None
            if ctype.startswith(("application/json", "text/plain")) or (not disposition and body[:1] == b"{"):
                try:
                    data = json.loads(bytes(body))
                except (ValueError, UnicodeDecodeError):
                    raise WeComTransportError("media/get", "an error answer that is not JSON") from None
                code = int(data.get("errcode", 0) or 0) if isinstance(data, dict) else -1
                if code in TOKEN_ERRORS or code == 41001:
                    self.invalidate(token)
                    if attempt == 1:
                        continue
                errmsg = str(data.get("errmsg", "")) if isinstance(data, dict) else ""
                raise WeComError(code, errmsg, "media/get",
                                 retry_after=jitter(6.0) if code in RETRYABLE_ERRORS else None)
            return bytes(body), _disposition_filename(disposition), ctype
        raise AssertionError("unreachable")

    async def create_menu(self, menu: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "menu/create", params={"agentid": self.cfg.agent_id}, json_body=menu)

    async def approval_detail(self, sp_no: str) -> dict[str, Any]:
        """oa/getapprovaldetail (developer.work.weixin.qq.com/document/path/91983): the `info` of one approval."""
        data = await self.call("POST", "oa/getapprovaldetail", json_body={"sp_no": sp_no})
        info = data.get("info")
        if not isinstance(info, dict):
            raise WeComTransportError("oa/getapprovaldetail", "answer has no info")
        return info

    async def approval_numbers(self, start: int, end: int, *, cursor: str = "", size: int = 100,
                               template_id: str = "") -> tuple[list[str], str]:
        """oa/getapprovalinfo (批量获取审批单号, developer.work.weixin.qq.com/document/path/91816): the SpNos of
        approvals submitted in [start, end] (Unix seconds, at most 31 days apart), one page of at most 100.

        Body {starttime, endtime, new_cursor, size, filters: [{key: "template_id", value}]}; the answer's
        sp_no_list, and new_next_cursor only while more pages follow (the document's fields, as the
        wechat_sdk and Mud.Wechat.Work clients read them; the older integer `cursor` is superseded).
        """
        body: dict[str, Any] = {"starttime": start, "endtime": end, "new_cursor": cursor, "size": size}
        if template_id:
            body["filters"] = [{"key": "template_id", "value": template_id}]
        data = await self.call("POST", "oa/getapprovalinfo", json_body=body)
        numbers = data.get("sp_no_list")
        if not isinstance(numbers, list):
            raise WeComTransportError("oa/getapprovalinfo", "answer has no sp_no_list")
        return [str(n) for n in numbers], str(data.get("new_next_cursor") or "")

    async def department_list(self, dept_id: int | None = None) -> list[dict[str, Any]]:
        params = {"id": dept_id} if dept_id is not None else None
        data = await self.call("GET", "department/list", params=params)
        return list(data.get("department") or [])

    async def user_simplelist(self, department_id: int, fetch_child: bool = False) -> list[dict[str, Any]]:
        data = await self.call("GET", "user/simplelist", params={
            "department_id": department_id, "fetch_child": 1 if fetch_child else 0})
        return list(data.get("userlist") or [])


@asynccontextmanager
async def standalone_api(cfg: WeComConfig, **options: Any) -> AsyncIterator[WeComAPI]:
    """A client with its own HTTP session, for CLI commands that run without the bot."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30, connect=5)) as session:
        yield WeComAPI(cfg, session, **options)
