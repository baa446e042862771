"""An asyncio client for the DingTalk OpenAPI of one internal app.

New-style APIs (`api.dingtalk.com/v1.0/…`) take the token in the
`x-acs-dingtalk-access-token` header and report errors as an HTTP 4xx/5xx with
`{code, message, requestid}`. Old-style ones (`oapi.dingtalk.com`: media upload,
the directory) take `?access_token=` and answer HTTP 200 with `{errcode, errmsg}`.
Both accept the same app access token.

The token is cached, fetched by one caller at a time (single-flight), renewed
before it expires and dropped when DingTalk says it is invalid. Every API is held
under DingTalk's 20 calls per second per app; errors come back as DingTalkApiError
saying whether and when a retry makes sense, and the caller (the outbox relay)
does the retrying.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import aiohttp

from bot.core.config import DingTalkConfig
from bot.dingtalk.signing import card_api_secret

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-acs-dingtalk-access-token"
DEFAULT_API_BASE = "https://api.dingtalk.com"
DEFAULT_OAPI_BASE = "https://oapi.dingtalk.com"
MAX_BATCH_USERS = 20
_URL_QUERY = re.compile(r"(https?://[^\s'\"?]+)\?[^\s'\")]*")

_QPS_CODES = {"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "Forbidden.AccessDenied.QpsLimitForApi"}
_AUTH_CODES = {"InvalidAuthentication", "InvalidAccessToken", "AuthenticationFailed.InvalidToken", "Unauthorized"}
_OLD_AUTH_ERRCODES = {40014, 42001, 88, 40001}
_OLD_QPS_ERRCODES = {90018, 90002, 90006}


class DingTalkApiError(Exception):
    """A failed call; `retry_after` is None when retrying cannot help."""

    def __init__(self, message: str, *, status: int = 0, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        return self.retry_after is None


@dataclass
class BatchSendResult:
    process_query_key: str = ""
    invalid: list[str] = field(default_factory=list)
    flow_controlled: list[str] = field(default_factory=list)
    # People DingTalk filtered out (Tea model BatchSendOTOResponseBody): not delivered.
    filtered: list[str] = field(default_factory=list)


def oapi_base_for(api_base: str) -> str:
    """Where the old-style APIs live: oapi.dingtalk.com for the real service, else the same host.

    A proxy or a test double given as `api_base` serves both kinds of API.
    """
    host = urlsplit(api_base).hostname or ""
    if host == "api.dingtalk.com":
        return DEFAULT_OAPI_BASE
    return api_base.rstrip("/")


class _CallWindow:
    """At most `qps` calls in any sliding second, per API (DingTalk counts per app and API)."""

    def __init__(self, qps: int) -> None:
        self.qps = qps
        self._calls: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, api: str) -> None:
        if self.qps <= 0:
            return
        lock = self._locks.setdefault(api, asyncio.Lock())
        calls = self._calls.setdefault(api, deque())
        async with lock:
            while True:
                now = time.monotonic()
                while calls and now - calls[0] >= 1.0:
                    calls.popleft()
                if len(calls) < self.qps:
                    calls.append(now)
                    return
                # A little past the window's end: the server measures on arrival.
                await asyncio.sleep(1.0 - (now - calls[0]) + 0.05)


class DingTalkApi:
    """The OpenAPI of one DingTalk app (one tenant)."""

    def __init__(self, cfg: DingTalkConfig, *, qps: int = 20, refresh_margin: float = 300.0,
                 timeout: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.api_base = cfg.api_base.rstrip("/")
        self.oapi_base = oapi_base_for(cfg.api_base)
        self.refresh_margin = refresh_margin
        self.clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._token = ""
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._window = _CallWindow(qps)
        self.token_fetches = 0

    # -- plumbing ----------------------------------------------------------------
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def token(self) -> str:
        """The app access token, fetched once for all concurrent callers and renewed early."""
        if self._token and self.clock() < self._token_expires - self.refresh_margin:
            return self._token
        async with self._token_lock:
            if self._token and self.clock() < self._token_expires - self.refresh_margin:
                return self._token
            status, body = await self._raw("POST", f"{self.api_base}/v1.0/oauth2/accessToken",
                                           json_body={"appKey": self.cfg.client_id, "appSecret": self.cfg.client_secret})
            token = body.get("accessToken") if isinstance(body, dict) else None
            if status != 200 or not isinstance(token, str) or not token:
                raise _new_style_error("accessToken", status, body)
            expire_in = body.get("expireIn", 7200)
            self._token = token
            self._token_expires = self.clock() + (float(expire_in) if isinstance(expire_in, (int, float)) else 7200.0)
            self.token_fetches += 1
            return token

    def invalidate_token(self, token: str) -> None:
        """Forget `token` (rejected by DingTalk) unless a newer one already replaced it."""
        if self._token == token:
            self._token = ""
            self._token_expires = 0.0

    async def _raw(self, method: str, url: str, *, json_body: Any = None, params: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None, data: Any = None) -> tuple[int, Any]:
        try:
            async with self._http().request(method, url, json=json_body, params=params, headers=headers, data=data) as r:
                text = await r.text()
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # Some aiohttp errors quote the URL: its query holds the access token or the sessionWebhook key.
            why = _URL_QUERY.sub(r"\1?…", str(exc))
            raise DingTalkApiError(f"{method} {urlsplit(url).path}: {type(exc).__name__}: {why}", retry_after=5.0) from None
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {"message": text[:200]}
        return status, body

    async def call(self, method: str, path: str, body: dict[str, Any] | None,
                   params: dict[str, str] | None = None) -> dict[str, Any]:
        """A new-style API call; retried once with a fresh token when the token is refused."""
        for attempt in (1, 2):
            token = await self.token()
            await self._window.wait(path)
            status, resp = await self._raw(method, f"{self.api_base}{path}", json_body=body, params=params,
                                           headers={TOKEN_HEADER: token, "Content-Type": "application/json"})
            if 200 <= status < 300:
                return resp if isinstance(resp, dict) else {}
            err = _new_style_error(path, status, resp)
            if err.code in _AUTH_CODES or status == 401:
                self.invalidate_token(token)
                if attempt == 1:
                    continue
                err.retry_after = 5.0
            raise err
        raise AssertionError("unreachable")

    async def call_old(self, path: str, body: dict[str, Any] | None = None, *,
                       form: Callable[[], aiohttp.FormData] | None = None) -> dict[str, Any]:
        """An old-style (oapi) call; errcode 0 is success. `form` builds a multipart body (once per try)."""
        for attempt in (1, 2):
            token = await self.token()
            await self._window.wait(path)
            status, resp = await self._raw("POST", f"{self.oapi_base}{path}", json_body=body,
                                           data=form() if form is not None else None,
                                           params={"access_token": token})
            errcode = resp.get("errcode", 0) if isinstance(resp, dict) else -1
            if status == 200 and errcode == 0:
                return resp
            if errcode in _OLD_AUTH_ERRCODES or status == 401:
                self.invalidate_token(token)
                if attempt == 1:
                    continue
            raise _old_style_error(path, status, resp)
        raise AssertionError("unreachable")

    # -- messages ----------------------------------------------------------------
    async def batch_send(self, user_ids: list[str], msg_key: str, msg_param: dict[str, Any]) -> BatchSendResult:
        """One robot 1:1 message to up to 20 people."""
        if not 1 <= len(user_ids) <= MAX_BATCH_USERS:
            raise ValueError(f"batchSend takes 1..{MAX_BATCH_USERS} user ids, got {len(user_ids)}")
        resp = await self.call("POST", "/v1.0/robot/oToMessages/batchSend", {
            "robotCode": self.cfg.robot_code, "userIds": user_ids, "msgKey": msg_key,
            "msgParam": json.dumps(msg_param, ensure_ascii=False)})
        return BatchSendResult(
            process_query_key=str(resp.get("processQueryKey") or ""),
            invalid=[u for u in resp.get("invalidStaffIdList") or [] if isinstance(u, str)],
            flow_controlled=[u for u in resp.get("flowControlledStaffIdList") or [] if isinstance(u, str)],
            filtered=[u for u in resp.get("filteredStaffIdList") or [] if isinstance(u, str)],
        )

    # -- cards (消息卡片高级版) -----------------------------------------------------------
    # The card-instance API: the SDK's CardReplier and the official create-and-deliver-cards
    # page. The legacy StandardCard API (robot/interactiveCards/send) has no Stream callbacks
    # and cannot be granted to new apps, so it is not used.
    async def create_and_deliver_card(self, user_id: str, out_track_id: str, template_id: str,
                                      params: dict[str, str], *, callback_route_key: str = "") -> None:
        """Create a card from `template_id` and put it in the person's 1:1 robot chat.

        callbackType STREAM brings presses over the Stream connection of this clientId;
        HTTP sends them to the URL registered for `callback_route_key`.
        """
        body: dict[str, Any] = {
            "cardTemplateId": template_id,
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": params},
            "callbackType": "HTTP" if callback_route_key else "STREAM",
            "openSpaceId": f"dtv1.card//IM_ROBOT.{user_id}",
            "imRobotOpenSpaceModel": {"supportForward": False},
            "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": self.cfg.robot_code},
            "userIdType": 1,
        }
        if callback_route_key:
            body["callbackRouteKey"] = callback_route_key
        resp = await self.call("POST", "/v1.0/card/instances/createAndDeliver", body)
        # HTTP 200 can still carry a failed delivery: result.deliverResults[].success (Tea model
        # CreateAndDeliverResponseBody).
        result = resp.get("result") if isinstance(resp.get("result"), dict) else {}
        failed = [d for d in result.get("deliverResults") or [] if isinstance(d, dict) and d.get("success") is False]
        if failed:
            why = str(failed[0].get("errorMsg") or "delivery failed")
            raise DingTalkApiError(f"createAndDeliver: {why}", code="deliverFailed", retry_after=30.0)

    async def create_card(self, out_track_id: str, template_id: str, params: dict[str, str]) -> None:
        """Create a card instance and deliver it nowhere (what `dongxian dingtalk check` uses)."""
        await self.call("POST", "/v1.0/card/instances", {
            "cardTemplateId": template_id, "outTrackId": out_track_id,
            "cardData": {"cardParamMap": params}, "callbackType": "STREAM",
            "imRobotOpenSpaceModel": {"supportForward": False}})

    async def update_card(self, out_track_id: str, params: dict[str, str]) -> None:
        """Replace the card's public data by key (PUT /v1.0/card/instances), after its press was answered."""
        await self.call("PUT", "/v1.0/card/instances", {
            "outTrackId": out_track_id, "cardData": {"cardParamMap": params},
            "cardUpdateOptions": {"updateCardDataByKey": True}, "userIdType": 1})

    async def register_card_callback(self, route_key: str, url: str) -> dict[str, Any]:
        """Tell DingTalk where presses of cards sent with `route_key` go (HTTP mode).

        The apiSecret given here is what DingTalk signs those presses with
        (x-ddpaas-signature); the answer echoes `{callbackUrl, apiSecret}`.
        """
        resp = await self.call("POST", "/v1.0/card/callbacks/register", {
            "callbackRouteKey": route_key, "callbackUrl": url,
            "apiSecret": card_api_secret(self.cfg), "forceUpdate": True})
        result = resp.get("result")
        return result if isinstance(result, dict) else {}

    async def upload_media(self, path: str, filename: str, media_type: str = "file", *,
                           content: bytes | None = None) -> str:
        """Upload a file (or `content` under `filename`); returns the media id used by file and image messages."""
        if content is None:
            content = await asyncio.to_thread(Path(path).read_bytes)
        # Multipart encodes non-ASCII names in ways servers read differently; the name people
        # see travels in the message (sampleFile.fileName), so the upload needs none of it.
        suffix = Path(filename).suffix if Path(filename).suffix.isascii() else ""
        upload_name = filename if filename.isascii() else f"file{suffix}"

        def form() -> aiohttp.FormData:
            f = aiohttp.FormData()
            f.add_field("type", media_type)
            f.add_field("media", content, filename=upload_name, content_type="application/octet-stream")
            return f

        resp = await self.call_old("/media/upload", form=form)
        media_id = resp.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise DingTalkApiError("media upload returned no media_id", retry_after=5.0)
        return media_id

    async def message_file_url(self, download_code: str) -> str:
        """The temporary downloadUrl of a file or picture a person sent the robot (robot messageFiles/download)."""
        resp = await self.call("POST", "/v1.0/robot/messageFiles/download",
                               {"downloadCode": download_code, "robotCode": self.cfg.robot_code})
        url = resp.get("downloadUrl")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise DingTalkApiError("messageFiles/download returned no downloadUrl", retry_after=5.0)
        return url

    async def fetch(self, url: str, max_bytes: int) -> tuple[bytes, str, int]:
        """GET a downloadUrl (no token: the URL is the credential): (content, content type, status).

        Stops reading past `max_bytes` and returns what it has with status 413, so a file over the cap
        costs no more than the cap."""
        try:
            async with self._http().get(url) as r:
                if r.status != 200:
                    return b"", "", r.status
                if r.content_length is not None and r.content_length > max_bytes:
                    return b"", r.headers.get("Content-Type", ""), 413
                body = bytearray()
                async for chunk in r.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > max_bytes:
                        return b"", r.headers.get("Content-Type", ""), 413
                return bytes(body), r.headers.get("Content-Type", ""), 200
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise DingTalkApiError(f"GET downloadUrl: {type(exc).__name__}", retry_after=5.0) from None

    async def session_reply(self, url: str, body: dict[str, Any]) -> None:
        """Reply through a message's sessionWebhook (no token: the URL is the credential)."""
        await self._window.wait("sessionWebhook")
        status, resp = await self._raw("POST", url, json_body=body)
        errcode = resp.get("errcode", 0) if isinstance(resp, dict) else -1
        if status != 200 or errcode not in (0, None):
            raise DingTalkApiError(f"sessionWebhook: HTTP {status} errcode {errcode}", status=status,
                                   code=str(errcode), retry_after=None if 400 <= status < 500 else 5.0)

    # -- OA approvals --------------------------------------------------------------
    async def process_instance(self, instance_id: str) -> dict[str, Any]:
        """查询审批实例: GET /v1.0/workflow/processInstances?processInstanceId= (header
        x-acs-dingtalk-access-token) → {"result": {title, status, result, originatorUserId,
        formComponentValues: [{id, name, value, componentType, extValue}], tasks: [{taskId, userId, status,
        result, createTime, finishTime}], …}, "success"} — open.dingtalk.com "查询审批实例", with the field
        list of the alibabacloud dingtalk SDK's workflow_1_0 GetProcessInstanceResponseBodyResult."""
        resp = await self.call("GET", "/v1.0/workflow/processInstances", None,
                               params={"processInstanceId": instance_id})
        result = resp.get("result")
        if not isinstance(result, dict):
            raise DingTalkApiError("GET /v1.0/workflow/processInstances: answer has no result", retry_after=5.0)
        return result

    # -- directory ---------------------------------------------------------------
    async def department(self, dept_id: int) -> dict[str, Any]:
        return (await self.call_old("/topapi/v2/department/get", {"dept_id": dept_id})).get("result") or {}

    async def sub_departments(self, dept_id: int) -> list[dict[str, Any]]:
        result = (await self.call_old("/topapi/v2/department/listsub", {"dept_id": dept_id})).get("result")
        return [d for d in result or [] if isinstance(d, dict)]

    async def department_users(self, dept_id: int) -> list[dict[str, Any]]:
        """Every member of one department (not of its sub-departments), page by page."""
        users: list[dict[str, Any]] = []
        cursor = 0
        while True:
            result = (await self.call_old("/topapi/v2/user/list",
                                          {"dept_id": dept_id, "cursor": cursor, "size": 100})).get("result") or {}
            users += [u for u in result.get("list") or [] if isinstance(u, dict)]
            nxt = result.get("next_cursor")
            if not result.get("has_more") or nxt is None or nxt == cursor:
                return users
            cursor = nxt

    async def user(self, userid: str) -> dict[str, Any]:
        return (await self.call_old("/topapi/v2/user/get", {"userid": userid})).get("result") or {}


def _new_style_error(api: str, status: int, body: Any) -> DingTalkApiError:
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    text = f"{api}: HTTP {status} {code} {message}".strip()
    if code == "param.callbackRouteKeyExist":
        retry: float | None = None  # documented as an HTTP 500, but the same registration cannot succeed later
    elif code in _QPS_CODES or status == 429:
        retry = 1.0
    elif status >= 500 or status == 0:
        retry = 2.0
    elif code == "Forbidden.AccessDenied.ApiCountLimitForOrg":
        retry = 3600.0  # the monthly call allowance: nothing to do but wait
    elif code == "invalidClientIdOrSecret":
        retry = 300.0  # a configuration problem the operator can fix without losing messages
    elif code == "Forbidden.AccessDenied.AccessTokenPermissionDenied":
        retry = 600.0  # a permission the admin has not granted yet (dongxian dingtalk check names it)
    elif code in _AUTH_CODES or status == 401:
        retry = 5.0
    else:
        retry = None
    return DingTalkApiError(text, status=status, code=code, retry_after=retry)


def _old_style_error(api: str, status: int, body: Any) -> DingTalkApiError:
    errcode = body.get("errcode") if isinstance(body, dict) else None
    errmsg = body.get("errmsg", "") if isinstance(body, dict) else ""
    text = f"{api}: HTTP {status} errcode {errcode} {errmsg}".strip()
    if status >= 500 or status == 0 or errcode == -1 or errcode in _OLD_QPS_ERRCODES:
        retry: float | None = 1.0 if errcode in _OLD_QPS_ERRCODES else 2.0
    elif errcode in _OLD_AUTH_ERRCODES or status == 401:
        retry = 5.0
    else:
        retry = None
    return DingTalkApiError(text, status=status, code=str(errcode), retry_after=retry)
