"""A strict fake DingTalk on 127.0.0.1: Stream gateway, OpenAPI and session webhooks.

It speaks the wire protocol as documented (shared protocols notes, DingTalk part):
`/v1.0/gateway/connections/open` hands out a one-time ticket valid 90 s and a local
`ws://` endpoint; the gateway pushes frames (specVersion, type, headers with
messageId/topic/time/contentType, `data` as a JSON string), checks every ack,
sends `ping` and `disconnect` system frames and redelivers robot messages and card
callbacks that were not acked (or were acked with a 5xx). The OpenAPI validates
strictly, answers with DingTalk's error bodies and limits each app to 20 calls per
second per API. Faults can be injected per API.

Where DingTalk's behaviour is not documented the fake is strict and records what
it saw in `protocol_errors`; tests assert that list stays empty.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import random
import re
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp
from aiohttp import web

TEMPLATE_FILE = Path(__file__).resolve().parents[2] / "docs" / "dingtalk-card-template.json"
GENERAL_TEMPLATE_ID = "5d1c3a0e-7f7b-4f3e-9d1a-0b0c0d0e0f10.schema"
CARD_WRITE = "Card.Instance.Write"
# The fake's name for the StandardCard API's permission, which new internal apps cannot get.
LEGACY_CARD = "Robot.InteractiveCard.Legacy"
PRESS_ANSWER_DEADLINE = 2.0  # event-callback-card: answer a press within 2 s
# Documented sampleFile types (robot-message-type page).
FILE_TYPES = {"xlsx", "pdf", "zip", "rar", "doc", "docx"}
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"

# msgKey → parameters it requires (robot-message-type page).
MSG_KEYS: dict[str, tuple[str, ...]] = {
    "sampleText": ("content",),
    "sampleMarkdown": ("title", "text"),
    "sampleImageMsg": ("photoURL",),
    "sampleLink": ("text", "title", "picUrl", "messageUrl"),
    "sampleActionCard": ("title", "text", "singleTitle", "singleURL"),
    "sampleFile": ("mediaId", "fileName", "fileType"),
}
_COMPONENT_ID = re.compile(r"^[A-Za-z0-9_]{1,2048}$")
_CONTENT_TYPES = {"markdown", "text", "divider", "action", "image", "imageList", "section"}


def real_now_ms() -> int:
    return int(time.time() * 1000)


def card_callback_sign(api_secret: str, timestamp: str) -> str:
    """HTTP card callbacks: x-ddpaas-signature = base64(HMAC-SHA256(key=apiSecret, msg=timestamp))."""
    return base64.b64encode(hmac.new(api_secret.encode(), timestamp.encode(), hashlib.sha256).digest()).decode()


def callback_sign(secret: str, timestamp: str) -> str:
    """The HTTP-mode robot callback signature: base64(HMAC-SHA256(secret, timestamp\\nsecret))."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class FakeApp:
    client_id: str
    client_secret: str
    robot_code: str
    corp_id: str = "dingcorp"
    robot_user_id: str = "$:LWCP_v1:$robot"
    # Permissions granted in the developer console. StandardCard (robot/interactiveCards/send)
    # "不支持新增": a new internal app cannot be granted it, so it is not here by default.
    permissions: set[str] = field(default_factory=lambda: {"qyapi_robot_sendmsg", "Card.Instance.Write"})


@dataclass
class Delivered:
    """One message as a person would see it in their robot chat."""

    userid: str
    kind: str  # text | markdown | file | image | card | link | actionCard
    via: str  # batchSend | session | card
    content: dict[str, Any]
    card_biz_id: str = ""


@dataclass
class FakeCard:
    """A card in someone's robot chat: a StandardCard (legacy API) or a card instance of a template."""

    biz_id: str
    app: FakeApp
    userid: str
    data: dict[str, Any]  # StandardCard: its cardData; instance: its cardParamMap
    kind: str = "standard"  # standard | instance
    template_id: str = ""
    callback_type: str = ""  # instance: STREAM | HTTP | "" (no callbacks)
    route_key: str = ""
    callback_url: str = ""  # StandardCard in HTTP mode: its send field callbackUrl
    versions: list[dict[str, Any]] = field(default_factory=list)
    template: dict[str, Any] = field(default_factory=dict)
    pressing: int = 0  # presses sent whose answer (ack or HTTP response) has not come back yet

    def buttons(self) -> list[dict[str, Any]]:
        """The buttons a person sees, each as {label: {text}, id, params}."""
        if self.kind == "instance":
            out = []
            for c in self.template.get("layout", []):
                if c.get("component") != "button" or not _visible(c, self.data):
                    continue
                action = c.get("action") or {}
                out.append({"label": {"type": "text", "text": _fill(c["text"], self.data)},
                            "id": action.get("actionId", ""), "actionType": "request" if action.get("type") == "callback" else "openLink",
                            "params": {k: _fill(v, self.data) for k, v in (action.get("params") or {}).items()}})
            return out
        out = []
        for c in self.data.get("contents", []):
            if c.get("type") == "action":
                out += [a for a in c.get("actions", []) if a.get("type") == "button"]
        return out

    def markdown(self) -> str:
        """What the card shows as text: body, visible key-value rows (**key**：value) and result."""
        if self.kind == "instance":
            lines = []
            for c in self.template.get("layout", []):
                if not _visible(c, self.data):
                    continue
                if c.get("component") in ("markdown", "text"):
                    lines.append(_fill(c["text"], self.data))
                elif c.get("component") == "key_value":
                    lines.append(f"**{_fill(c['key'], self.data)}**：{_fill(c['value'], self.data)}")
            return "\n".join(line for line in lines if line)
        return "\n".join(c.get("text", "") for c in self.data.get("contents", []) if c.get("type") == "markdown")

    @property
    def title(self) -> str:
        if self.kind == "instance":
            return next((_fill(c["text"], self.data) for c in self.template.get("layout", [])
                         if c.get("component") == "title"), "")
        return str(self.data.get("header", {}).get("title", {}).get("text", ""))


_VAR = re.compile(r"\$\{(\w+)\}")


def _fill(text: str, params: dict[str, str]) -> str:
    return _VAR.sub(lambda m: params.get(m.group(1), ""), text)


def _visible(component: dict[str, Any], params: dict[str, str]) -> bool:
    cond = component.get("visible_when")
    if not cond:
        return True
    var, _, want = cond.partition(" == ")
    return _fill(var, params) == want.strip("'")


def template_variables(template: dict[str, Any]) -> set[str]:
    return {v["name"] for v in template.get("variables", [])}


@dataclass
class Frame:
    message_id: str
    app: FakeApp
    frame: dict[str, Any]
    kind: str  # robot | card | system
    data: dict[str, Any]
    conn_id: str = ""
    sent_at: float = 0.0
    ack: dict[str, Any] | None = None
    ack_latency: float | None = None
    redelivered_as: str = ""


@dataclass
class StreamConn:
    id: str
    app: FakeApp
    ws: web.WebSocketResponse
    topics: set[tuple[str, str]]
    closing: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Session:
    app: FakeApp
    conversation_id: str
    conversation_type: str
    userid: str
    expires_ms: int


class FakeDingTalk:
    """The fake; `await start()` it, point `api_base` at `base_url`, `await stop()` it."""

    def __init__(self, *, qps_limit: int = 20, ticket_ttl: float = 90.0, redeliver_after: float = 2.0,
                 disconnect_grace: float = 10.0, ack_deadline: float = 1.0, session_ttl_ms: int = 5_400_000,
                 now_ms: Callable[[], int] = real_now_ms, seed: int = 0) -> None:
        self.qps_limit = qps_limit
        self.ticket_ttl = ticket_ttl
        self.redeliver_after = redeliver_after
        self.disconnect_grace = disconnect_grace
        self.ack_deadline = ack_deadline
        self.session_ttl_ms = session_ttl_ms
        self.now_ms = now_ms
        self.rng = random.Random(seed)
        self.apps: dict[str, FakeApp] = {}
        self.departments: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self.users: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.tokens: dict[str, tuple[FakeApp, float]] = {}
        self.tickets: dict[str, dict[str, Any]] = {}
        self.conns: dict[str, StreamConn] = {}
        self.frames: dict[str, Frame] = {}
        self.outgoing: deque[Frame] = deque()  # frames waiting for a connection
        self.sessions: dict[str, _Session] = {}
        self.cards: dict[str, FakeCard] = {}
        self.templates: dict[str, dict[str, Any]] = {}  # cardTemplateId → definition (made in the card builder)
        self.filtered: set[str] = set()  # people batchSend reports in filteredStaffIdList
        self.unanswerable_presses: list[str] = []  # presses the real platform would never deliver
        self.media: dict[str, tuple[FakeApp, str, bytes]] = {}
        # downloadCode of a picture or file a person sent → (app, file name, content); downloadUrl token → content
        self.received: dict[str, tuple[FakeApp, str, bytes]] = {}
        self.download_urls: dict[str, tuple[bytes, float]] = {}
        self.routes: dict[tuple[str, str], tuple[str, str]] = {}
        # OA approval instances by processInstanceId: the `result` GET /v1.0/workflow/processInstances answers
        self.process_instances: dict[str, dict[str, Any]] = {}
        self.delivered: dict[str, list[Delivered]] = defaultdict(list)
        self.protocol_errors: list[str] = []
        self.calls: Counter[str] = Counter()
        self.rejected: Counter[tuple[str, str]] = Counter()
        self.token_requests = 0
        self.connections_opened = 0
        self.open_gate: asyncio.Event | None = None  # while set to an unset Event, connections/open waits
        self.open_waiting = asyncio.Event()
        self._faults: dict[str, deque[str]] = defaultdict(deque)
        self._fault_rates: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._flow: Counter[str] = Counter()
        self._qps: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http: aiohttp.ClientSession | None = None
        self.base_url = ""
        self.add_template()  # the general template, built and published by the admin (docs/dingtalk.md)

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(client_max_size=30 * 1024 * 1024)
        r = app.router
        r.add_post("/v1.0/gateway/connections/open", self._open_connection)
        r.add_get("/connect", self._ws)
        r.add_post("/v1.0/oauth2/accessToken", self._access_token)
        r.add_post("/v1.0/robot/oToMessages/batchSend", self._batch_send)
        r.add_post("/v1.0/im/v1.0/robot/interactiveCards/send", self._card_send)
        r.add_put("/v1.0/im/robots/interactiveCards", self._card_update)
        r.add_post("/v1.0/card/callbacks/register", self._register_route)
        r.add_post("/v1.0/card/instances/createAndDeliver", self._create_and_deliver)
        r.add_post("/v1.0/card/instances", self._create_instance)
        r.add_put("/v1.0/card/instances", self._update_instance)
        r.add_post("/robot/sendBySession", self._session_webhook)
        r.add_post("/media/upload", self._media_upload)
        r.add_get("/v1.0/workflow/processInstances", self._process_instance)
        r.add_post("/v1.0/robot/messageFiles/download", self._message_file_download)
        r.add_get("/robot-files/{token}", self._robot_file)
        r.add_post("/topapi/v2/department/get", self._dept_get)
        r.add_post("/topapi/v2/department/listsub", self._dept_listsub)
        r.add_post("/topapi/v2/user/list", self._user_list)
        r.add_post("/topapi/v2/user/get", self._user_get)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._spawn(self._redelivery_loop())
        return self.base_url

    async def stop(self) -> None:
        for conn in list(self.conns.values()):
            await conn.ws.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- setup -------------------------------------------------------------------
    def add_app(self, client_id: str = "dingclient", client_secret: str = "dingsecret",
                robot_code: str = "", corp_id: str = "dingcorp") -> FakeApp:
        app = FakeApp(client_id, client_secret, robot_code or client_id, corp_id)
        self.apps[client_id] = app
        self.departments[client_id].setdefault(1, {"dept_id": 1, "name": corp_id, "parent_id": 0})
        return app

    def add_department(self, app: FakeApp, dept_id: int, name: str, parent_id: int = 1) -> None:
        if dept_id == 1:
            self.departments[app.client_id][1]["name"] = name
            return
        self.departments[app.client_id][dept_id] = {"dept_id": dept_id, "name": name, "parent_id": parent_id}

    def add_user(self, app: FakeApp, userid: str, name: str = "", dept_ids: list[int] | None = None,
                 manager_userid: str | None = None) -> None:
        user = {"userid": userid, "name": name or userid, "dept_id_list": dept_ids or [1],
                "unionid": "union_" + userid, "active": True, "leader": False}
        if manager_userid:
            user["manager_userid"] = manager_userid
        self.users[app.client_id][userid] = user

    def add_template(self, template_id: str = GENERAL_TEMPLATE_ID, definition: dict[str, Any] | None = None) -> str:
        """A template built and published in the card builder; by default the general one shipped in docs/."""
        self.templates[template_id] = definition or json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
        return template_id

    # -- faults ------------------------------------------------------------------
    def fail_next(self, api: str, *kinds: str) -> None:
        """Make the next calls of `api` fail: kinds 'qps', '5xx' or 'auth', in order."""
        self._faults[api].extend(kinds)

    def set_fault_rate(self, api: str, rate: float, kinds: tuple[str, ...] = ("qps", "5xx")) -> None:
        """Fail a share of the calls of `api` ('*' for every API) with one of `kinds`."""
        self._fault_rates[api] = (rate, kinds)

    def flow_control(self, userid: str, times: int = 1) -> None:
        """The next `times` batchSends to `userid` report them in flowControlledStaffIdList."""
        self._flow[userid] += times

    def revoke_tokens(self, app: FakeApp) -> None:
        """DingTalk invalidating tokens early: the next use is refused."""
        for tok, (a, _) in list(self.tokens.items()):
            if a is app:
                del self.tokens[tok]

    def _fault(self, api: str) -> str:
        if self._faults[api]:
            return self._faults[api].popleft()
        for key in (api, "*"):
            if key in self._fault_rates:
                rate, kinds = self._fault_rates[key]
                if self.rng.random() < rate:
                    return self.rng.choice(kinds)
        return ""

    # -- helpers -----------------------------------------------------------------
    def _new_error(self, status: int, code: str, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message, "requestid": uuid.uuid4().hex.upper()}, status=status)

    def _old_error(self, errcode: int, errmsg: str, status: int = 200) -> web.Response:
        return web.json_response({"errcode": errcode, "errmsg": errmsg, "request_id": uuid.uuid4().hex}, status=status)

    async def _json_body(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.text())
        except ValueError:
            return None

    def _over_qps(self, app: FakeApp, api: str) -> bool:
        if self.qps_limit <= 0:
            return False
        now = time.monotonic()
        window = self._qps[(app.client_id, api)]
        while window and now - window[0] >= 1.0:
            window.popleft()
        window.append(now)
        return len(window) > self.qps_limit

    async def _permitted_call(self, request: web.Request, api: str,
                              permission: str) -> tuple[FakeApp, Any] | web.Response:
        """The refusal of a new-style API call (token, QPS, injected faults, a permission the app lacks),
        or the app and the JSON body (not yet checked for its shape: each API refuses that in its own words)."""
        app, denied = await self._new_style_gate(request, api)
        if denied is not None:
            return denied
        assert app is not None
        denied = self._denied(app, permission)
        if denied is not None:
            return denied
        return app, await self._json_body(request)

    async def _new_style_gate(self, request: web.Request, api: str) -> tuple[FakeApp | None, web.Response | None]:
        """Token, QPS limit and injected faults of a new-style API."""
        self.calls[api] += 1
        token = request.headers.get("x-acs-dingtalk-access-token")
        if not token:
            return None, self._new_error(400, "AuthenticationFailed.MissingParameter", "缺少参数 x-acs-dingtalk-access-token")
        entry = self.tokens.get(token)
        if entry is None or entry[1] < time.monotonic():
            self.rejected[(api, "auth")] += 1
            return None, self._new_error(400, "InvalidAuthentication", "不合法的access_token")
        app = entry[0]
        if self._over_qps(app, api):
            self.rejected[(api, "qps-limit")] += 1
            return None, self._qps_error()
        fault = self._fault(api)
        if fault:
            self.rejected[(api, fault)] += 1
            if fault == "qps":
                return None, self._qps_error()
            if fault == "auth":
                self.revoke_tokens(app)
                return None, self._new_error(400, "InvalidAuthentication", "不合法的access_token")
            return None, self._new_error(503, "ServiceUnavailable", "服务暂不可用，请稍后重试")
        return app, None

    def _denied(self, app: FakeApp, permission: str) -> web.Response | None:
        """Forbidden.AccessDenied.AccessTokenPermissionDenied unless the app was granted `permission`."""
        if permission in app.permissions:
            return None
        self.rejected[(permission, "permission")] += 1
        return self._new_error(403, "Forbidden.AccessDenied.AccessTokenPermissionDenied",
                               f"应用尚未开通所需的权限：[{permission}]")

    def _qps_error(self) -> web.Response:
        return self._new_error(403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                               "调用该接口触发应用QPS限流，请稍后重试")

    async def _old_style_gate(self, request: web.Request, api: str) -> tuple[FakeApp | None, web.Response | None]:
        self.calls[api] += 1
        token = request.query.get("access_token", "")
        entry = self.tokens.get(token)
        if not token or entry is None or entry[1] < time.monotonic():
            self.rejected[(api, "auth")] += 1
            return None, self._old_error(40014, "不合法的access_token")
        app = entry[0]
        if self._over_qps(app, api):
            self.rejected[(api, "qps-limit")] += 1
            return None, self._old_error(90018, "当前企业调用该接口超过限制")
        fault = self._fault(api)
        if fault:
            self.rejected[(api, fault)] += 1
            if fault == "qps":
                return None, self._old_error(90018, "当前企业调用该接口超过限制")
            if fault == "auth":
                self.revoke_tokens(app)
                return None, self._old_error(40014, "不合法的access_token")
            return None, self._old_error(-1, "系统繁忙", status=500)
        return app, None

    # -- token -------------------------------------------------------------------
    async def _access_token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("appKey"), str) or not isinstance(body.get("appSecret"), str):
            return self._new_error(400, "MissingappKey", "appKey或appSecret参数缺失")
        app = self.apps.get(body["appKey"])
        if app is None or not hmac.compare_digest(app.client_secret, body["appSecret"]):
            return self._new_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        fault = self._fault("accessToken")
        if fault:
            self.rejected[("accessToken", fault)] += 1
            return self._new_error(503, "ServiceUnavailable", "服务暂不可用，请稍后重试")
        now = time.monotonic()
        for tok, (a, exp) in self.tokens.items():
            if a is app and exp - now > 0:
                return web.json_response({"accessToken": tok, "expireIn": int(exp - now)})
        tok = uuid.uuid4().hex
        self.tokens[tok] = (app, now + 7200)
        return web.json_response({"accessToken": tok, "expireIn": 7200})

    # -- stream: connections -------------------------------------------------------
    async def _open_connection(self, request: web.Request) -> web.Response:
        self.calls["connectionsOpen"] += 1
        if self.open_gate is not None:
            self.open_waiting.set()
            await self.open_gate.wait()
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return self._new_error(400, "InvalidParameter", "请求体不是JSON对象")
        app = self.apps.get(body.get("clientId", ""))
        if app is None or not isinstance(body.get("clientSecret"), str) \
                or not hmac.compare_digest(app.client_secret, body["clientSecret"]):
            return self._new_error(401, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        subs = body.get("subscriptions")
        if not isinstance(subs, list) or not subs or not all(
                isinstance(s, dict) and s.get("type") in ("EVENT", "CALLBACK", "SYSTEM")
                and isinstance(s.get("topic"), str) and s["topic"] for s in subs):
            return self._new_error(400, "InvalidParameter", "subscriptions 无效")
        if not isinstance(body.get("ua", ""), str) or not isinstance(body.get("localIp", ""), str):
            return self._new_error(400, "InvalidParameter", "ua/localIp 无效")
        fault = self._fault("connectionsOpen")
        if fault:
            self.rejected[("connectionsOpen", fault)] += 1
            return self._new_error(503, "ServiceUnavailable", "服务暂不可用，请稍后重试")
        ticket = uuid.uuid4().hex
        self.tickets[ticket] = {"app": app, "topics": {(s["type"], s["topic"]) for s in subs},
                                "expires": time.monotonic() + self.ticket_ttl, "used": False}
        return web.json_response({"endpoint": self.base_url.replace("http://", "ws://") + "/connect", "ticket": ticket})

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ticket = self.tickets.get(request.query.get("ticket", ""))
        if ticket is None or ticket["used"] or ticket["expires"] < time.monotonic():
            return web.json_response({"code": "InvalidTicket", "message": "ticket 无效或已过期"}, status=401)
        ticket["used"] = True
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = StreamConn(id=uuid.uuid4().hex[:16], app=ticket["app"], ws=ws, topics=ticket["topics"])
        self.conns[conn.id] = conn
        self.connections_opened += 1
        self._spawn(self._flush_outgoing())
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._on_ack(conn, msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.protocol_errors.append("binary frame from client")
        finally:
            self.conns.pop(conn.id, None)
            conn.closed.set()
        return ws

    def live(self, app: FakeApp, topic: tuple[str, str] | None = None) -> list[StreamConn]:
        return [c for c in self.conns.values() if c.app is app and not c.closing and not c.ws.closed
                and (topic is None or topic in c.topics)]

    async def wait_connected(self, app: FakeApp, count: int = 1, timeout: float = 10.0, *,
                             opened_at_least: int = 0) -> None:
        async def ready() -> None:
            while len(self.live(app)) < count or self.connections_opened < opened_at_least:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(ready(), timeout)

    # -- stream: frames ------------------------------------------------------------
    def _frame(self, app: FakeApp, type_: str, topic: str, data: dict[str, Any], kind: str) -> Frame:
        mid = f"{uuid.uuid4().hex[:8]}_{next(self._ids)}_{uuid.uuid4().hex[:11]}"
        frame = {
            "specVersion": "1.0", "type": type_,
            "headers": {"appId": app.client_id, "contentType": "application/json", "messageId": mid,
                        "time": str(self.now_ms()), "topic": topic},
            "data": json.dumps(data, ensure_ascii=False),
        }
        f = Frame(message_id=mid, app=app, frame=frame, kind=kind, data=data)
        self.frames[mid] = f
        return f

    async def _send(self, f: Frame) -> bool:
        topic = (f.frame["type"], f.frame["headers"]["topic"])
        conns = self.live(f.app, topic if f.kind != "system" else None)
        if not conns:  # wait for a connection that subscribes to the topic
            self.outgoing.append(f)
            return False
        conn = self.rng.choice(conns)
        f.frame["headers"]["connectionId"] = conn.id
        f.conn_id = conn.id
        f.sent_at = time.monotonic()
        try:
            await conn.ws.send_str(json.dumps(f.frame, ensure_ascii=False))
        except (ConnectionError, RuntimeError):
            f.sent_at = 0.0
            self.outgoing.append(f)
            return False
        return True

    async def _flush_outgoing(self) -> None:
        for _ in range(len(self.outgoing)):
            if not self.outgoing:
                return
            await self._send(self.outgoing.popleft())

    def _on_ack(self, conn: StreamConn, text: str) -> None:
        try:
            ack = json.loads(text)
        except ValueError:
            self.protocol_errors.append(f"ack is not JSON: {text[:80]!r}")
            return
        if not isinstance(ack, dict) or not isinstance(ack.get("code"), int) or not isinstance(ack.get("headers"), dict):
            self.protocol_errors.append(f"ack without code/headers: {text[:120]!r}")
            return
        mid = ack["headers"].get("messageId")
        f = self.frames.get(mid) if isinstance(mid, str) else None
        if f is None:
            self.protocol_errors.append(f"ack for unknown messageId {mid!r}")
            return
        if f.ack is not None:
            self.protocol_errors.append(f"second ack for {mid}")
            return
        if not isinstance(ack.get("data"), str):
            self.protocol_errors.append(f"ack data of {mid} is not a JSON string")
        else:
            try:
                json.loads(ack["data"])
            except ValueError:
                self.protocol_errors.append(f"ack data of {mid} is not JSON")
        if not isinstance(ack.get("message", ""), str):
            self.protocol_errors.append(f"ack message of {mid} is not a string")
        f.ack = ack
        f.ack_latency = time.monotonic() - f.sent_at if f.sent_at else None
        if f.kind == "card" and ack["code"] < 500:
            card = self.cards.get(str(f.data.get("outTrackId", "")))
            if card is not None and card.pressing:
                card.pressing -= 1
        topic = f.frame["headers"]["topic"]
        if f.kind == "system" and topic == "ping" and ack["code"] == 200:
            try:
                echoed = json.loads(ack["data"]).get("opaque")
            except (ValueError, AttributeError):
                echoed = None
            if echoed != f.data.get("opaque"):
                self.protocol_errors.append(f"ping ack did not echo opaque: {ack.get('data')!r}")

    async def _redelivery_loop(self) -> None:
        while True:
            await asyncio.sleep(min(0.05, self.redeliver_after / 4))
            now = time.monotonic()
            for f in list(self.frames.values()):
                if f.kind in ("system", "raw") or f.redelivered_as or not f.sent_at:
                    continue
                failed = f.ack is not None and f.ack.get("code", 0) >= 500
                if (f.ack is None or failed) and now - f.sent_at >= self.redeliver_after:
                    if f.kind == "event":
                        await self._redeliver_event(f)
                        continue
                    again = self._frame(f.app, f.frame["type"], f.frame["headers"]["topic"], f.data, f.kind)
                    f.redelivered_as = again.message_id
                    await self._send(again)

    async def _redeliver_event(self, f: Frame) -> None:
        """An event again, with its eventId (what receivers deduplicate on), on an EVENT "*" subscription."""
        conns = self.live(f.app, ("EVENT", "*"))
        if not conns:
            return  # tried again on a later beat, once something subscribes
        again = self._frame(f.app, "EVENT", "*", f.data, "event")
        keep = ("topic", "eventType", "eventId", "eventBornTime", "eventCorpId", "eventUnifiedAppId")
        again.frame["headers"].update({k: f.frame["headers"][k] for k in keep if k in f.frame["headers"]},
                                      connectionId=conns[0].id)
        again.conn_id, again.sent_at = conns[0].id, time.monotonic()
        f.redelivered_as = again.message_id
        await conns[0].ws.send_str(json.dumps(again.frame, ensure_ascii=False))

    async def _push(self, app: FakeApp, topic: str, data: dict[str, Any], kind: str) -> Frame:
        f = self._frame(app, "CALLBACK", topic, data, kind)
        await self._send(f)
        return f

    async def push_event(self, app: FakeApp, event_type: str, data: dict[str, Any], *, event_id: str = "") -> Frame:
        """An EVENT frame (OA approvals: bpms_instance_change / bpms_task_change) to a connection that
        subscribed to events. Headers as the SDK reads them (eventId, eventType, eventBornTime, eventCorpId);
        [?] the gateway's `topic` header of an event frame is not documented: the fake sends the event type,
        and delivers only on an EVENT "*" subscription, the one the SDK makes."""
        f = self._frame(app, "EVENT", "*", data, "event")
        h = f.frame["headers"]
        h.update(topic=event_type, eventType=event_type, eventId=event_id or uuid.uuid4().hex,
                 eventBornTime=str(self.now_ms()), eventCorpId=app.corp_id, eventUnifiedAppId=app.client_id)
        conns = self.live(app, ("EVENT", "*"))
        assert conns, "no connection subscribed to events"
        f.frame["headers"]["connectionId"] = conns[0].id
        f.conn_id = conns[0].id
        f.sent_at = time.monotonic()
        await conns[0].ws.send_str(json.dumps(f.frame, ensure_ascii=False))
        return f

    async def push_robot_message(self, app: FakeApp, userid: str, text: str, *, conversation_type: str = "1",
                                 conversation_id: str = "", at_users: list[str] = (),  # type: ignore[assignment]
                                 at_robot: bool = True, msg_id: str = "", extra: dict[str, Any] | None = None) -> Frame:
        """A person writes to the robot (1:1, or in a group with an @ of the robot)."""
        return await self._push(app, ROBOT_TOPIC, self.robot_message(
            app, userid, text, conversation_type=conversation_type, conversation_id=conversation_id,
            at_users=list(at_users), at_robot=at_robot, msg_id=msg_id, extra=extra), "robot")

    async def push_frame(self, app: FakeApp, raw: dict[str, Any] | str) -> Frame | None:
        """Send anything (malformed frames) to a live connection; a frame with a messageId has its ack recorded."""
        conns = self.live(app)
        assert conns, "no live stream connection"
        tracked = None
        if isinstance(raw, dict) and isinstance(raw.get("headers"), dict) and isinstance(raw["headers"].get("messageId"), str):
            tracked = Frame(message_id=raw["headers"]["messageId"], app=app, frame=raw, kind="raw", data={},
                            conn_id=conns[0].id, sent_at=time.monotonic())
            self.frames[tracked.message_id] = tracked
        await conns[0].ws.send_str(raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False))
        return tracked

    def robot_message(self, app: FakeApp, userid: str, text: str, *, conversation_type: str = "1",
                      conversation_id: str = "", at_users: list[str] | None = None, at_robot: bool = True,
                      msg_id: str = "", extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a robot message as DingTalk composes it."""
        now = self.now_ms()
        user = self.users[app.client_id].get(userid, {"name": userid})
        cid = conversation_id or ("cid" + base64.b64encode(f"{app.client_id}:{userid}".encode()).decode())
        session = uuid.uuid4().hex
        expires = now + self.session_ttl_ms
        self.sessions[session] = _Session(app, cid, conversation_type, userid, expires)
        group = conversation_type == "2"
        ats = [{"dingtalkId": f"$:LWCP_v1:${u}", "staffId": u} for u in (at_users or [])]
        if group and at_robot:
            ats.insert(0, {"dingtalkId": app.robot_user_id})
        data: dict[str, Any] = {
            "conversationId": cid, "conversationType": conversation_type, "msgId": msg_id or f"msg{uuid.uuid4().hex}==",
            "msgtype": "text", "text": {"content": (" " + text) if group else text},
            "senderStaffId": userid, "senderNick": user.get("name", userid), "senderId": f"$:LWCP_v1:${userid}",
            "senderCorpId": app.corp_id, "chatbotCorpId": app.corp_id, "chatbotUserId": app.robot_user_id,
            "robotCode": app.robot_code, "isAdmin": False, "isInAtList": group and at_robot,
            "atUsers": ats, "createAt": now,
            "sessionWebhook": f"{self.base_url}/robot/sendBySession?session={session}",
            "sessionWebhookExpiredTime": expires,
        }
        if group:
            data["conversationTitle"] = "项目群"
        if extra:
            data.update(extra)
        return data

    async def send_ping(self, app: FakeApp) -> Frame:
        f = self._frame(app, "SYSTEM", "ping", {"opaque": uuid.uuid4().hex}, "system")
        assert await self._send(f), "no live connection for ping"
        return f

    async def send_disconnect(self, app: FakeApp) -> StreamConn:
        """Ask the client to reconnect; the fake closes the socket itself after the grace period."""
        conns = self.live(app)
        assert conns, "no live connection to disconnect"
        conn = conns[0]
        f = self._frame(app, "SYSTEM", "disconnect", {"reason": "gateway upgrade"}, "system")
        await self._send(f)
        conn.closing = True

        async def close_later() -> None:
            try:
                await asyncio.wait_for(conn.closed.wait(), self.disconnect_grace)
            except asyncio.TimeoutError:
                self.protocol_errors.append(f"client kept connection {conn.id} open after disconnect")
                await conn.ws.close()
        self._spawn(close_later())
        return conn

    def final_frame(self, f: Frame) -> Frame:
        while f.redelivered_as:
            f = self.frames[f.redelivered_as]
        return f

    async def wait_acked(self, frames: list[Frame], timeout: float = 10.0) -> None:
        """Until every frame (or its redelivery) is acked with a code below 500."""
        async def done() -> None:
            while True:
                finals = [self.final_frame(f) for f in frames]
                if all(f.ack is not None and f.ack.get("code", 0) < 500 for f in finals):
                    return
                await asyncio.sleep(0.01)
        await asyncio.wait_for(done(), timeout)

    def late_or_missing_acks(self) -> list[str]:
        """Pushed frames not acked within the ack deadline (the gateway's complaint list)."""
        out = []
        for f in self.frames.values():
            if not f.sent_at:
                continue
            if f.ack is None or (f.ack_latency or 0) > self.ack_deadline:
                out.append(f"{f.message_id} ({f.kind}, {f.frame['headers']['topic']})")
        return out

    # -- card presses -----------------------------------------------------------------
    async def press(self, biz_id: str, userid: str, button_text: str, *,
                    callback_headers: dict[str, str] | None = None) -> int:
        """`userid` presses the button labelled `button_text`, and DingTalk delivers the press as it really would.

        A card instance with callbackType STREAM: over Stream (topic /v1.0/card/instances/callback)
        to a connection of the clientId that made it. HTTP: a POST to the URL registered for its
        callbackRouteKey, signed with that route's apiSecret. A StandardCard press never comes back
        over Stream (developerpedia card FAQ), only to its send field callbackUrl. Returns the HTTP
        status in HTTP mode, else 0; a press that is not delivered is listed in `unanswerable_presses`.
        """
        card = self.cards.get(biz_id)
        assert card is not None, f"no card {biz_id}"
        assert card.userid == userid, f"card {biz_id} was sent to {card.userid}, not {userid}"
        buttons = [b for b in card.buttons() if b["label"]["text"] == button_text]
        assert buttons, f"no button {button_text!r} on card {card.title!r}: {[b['label']['text'] for b in card.buttons()]}"
        btn = buttons[0]
        assert btn["actionType"] == "request", "only callback buttons call back"
        private = json.dumps({"cardPrivateData": {"actionIds": [btn["id"]], "params": btn.get("params") or {}}},
                             ensure_ascii=False)
        # event-callback-card: type, outTrackId, corpId, userId, content (a JSON string); the Go SDK's
        # CardRequest adds extension, spaceId, spaceType, userIdType. `value` is not in the official doc.
        data = {"extension": "{}", "corpId": card.app.corp_id, "spaceType": "IM_ROBOT", "userIdType": 1,
                "type": "actionCallback", "userId": userid, "content": private, "spaceId": userid,
                "outTrackId": biz_id}
        if card.kind == "standard":
            if not card.callback_url:
                self.unanswerable_presses.append(f"StandardCard {biz_id}: no Stream callbacks, no callbackUrl")
                return 0
            return await self.post(card.callback_url, data, headers=callback_headers)
        if card.callback_type == "HTTP":
            route = self.routes.get((card.app.client_id, card.route_key))
            assert route is not None, f"card callback route {card.route_key!r} not registered"
            url, api_secret = route
            ts = str(self.now_ms())
            headers = {"x-ddpaas-signature-timestamp": ts,
                       "x-ddpaas-signature": card_callback_sign(api_secret, ts), **(callback_headers or {})}
            card.pressing += 1
            started = time.monotonic()
            try:
                return await self.post(url, data, headers=headers)
            finally:
                card.pressing -= 1
                if time.monotonic() - started > PRESS_ANSWER_DEADLINE:
                    self.protocol_errors.append(f"press on card {biz_id} answered after {PRESS_ANSWER_DEADLINE} s")
        if card.callback_type != "STREAM":
            self.unanswerable_presses.append(f"card {biz_id} was created without callbackType")
            return 0
        if not any((("CALLBACK", CARD_TOPIC) in c.topics) for c in self.conns.values() if c.app is card.app):
            self.protocol_errors.append("card pressed but no stream connection subscribes to card callbacks")
        card.pressing += 1
        await self._push(card.app, CARD_TOPIC, data, "card")
        return 0

    # -- HTTP mode ------------------------------------------------------------------
    async def post(self, url: str, data: Any, *, headers: dict[str, str] | None = None) -> int:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        body = data if isinstance(data, (str, bytes)) else json.dumps(data, ensure_ascii=False)
        async with self._http.post(url, data=body, headers={"Content-Type": "application/json", **(headers or {})}) as r:
            await r.read()
            return r.status

    def signed_headers(self, app: FakeApp, timestamp_ms: int | None = None) -> dict[str, str]:
        ts = str(self.now_ms() if timestamp_ms is None else timestamp_ms)
        return {"timestamp": ts, "sign": callback_sign(app.client_secret, ts)}

    async def post_robot_message(self, app: FakeApp, url: str, userid: str, text: str, **kw: Any) -> int:
        """HTTP mode: DingTalk POSTs the robot message with `timestamp` and `sign` headers."""
        return await self.post(url, self.robot_message(app, userid, text, **kw), headers=self.signed_headers(app))

    def add_process_instance(self, instance_id: str, *, process_code: str, title: str, originator: str,
                             form: list[tuple[str, str]], tasks: list[dict[str, Any]] | None = None,
                             status: str = "RUNNING", result: str = "") -> dict[str, Any]:
        """An approval instance as 查询审批实例 returns it (fields of the alibabacloud dingtalk SDK's
        workflow_1_0 GetProcessInstanceResponseBodyResult); `form` is (name, value) of each component."""
        inst = {"title": title, "processCode": process_code, "originatorUserId": originator, "status": status,
                "result": result, "businessId": instance_id[-12:], "createTime": "2026-12-04T08:00Z",
                "formComponentValues": [{"id": f"TextField-{i}", "name": n, "value": v, "componentType": "TextField"}
                                        for i, (n, v) in enumerate(form)],
                "tasks": list(tasks or []), "operationRecords": [], "approverUserIds": [], "ccUserIds": []}
        self.process_instances[instance_id] = inst
        return inst

    async def _process_instance(self, request: web.Request) -> web.Response:
        """GET /v1.0/workflow/processInstances?processInstanceId= (查询审批实例): header
        x-acs-dingtalk-access-token, the id in the query string, no body; {"result": {…}, "success": true}.
        DingTalk's error code for an unknown instance is not documented [?]: the fake answers 400."""
        app, denied = await self._new_style_gate(request, "processInstances")
        if denied is not None:
            return denied
        if await request.read():
            self.protocol_errors.append("GET processInstances with a body")
        instance_id = request.query.get("processInstanceId", "")
        if not instance_id:
            return self._new_error(400, "MissingprocessInstanceId", "processInstanceId is mandatory for this action.")
        inst = self.process_instances.get(instance_id)
        if inst is None:
            return self._new_error(400, "InvalidParameter.ProcessInstanceId", "审批实例不存在")
        return web.json_response({"result": inst, "success": True})

    async def _register_route(self, request: web.Request) -> web.Response:
        """register-card-callback-address: needs Card.Instance.Write; an existing key without
        forceUpdate is HTTP 500 param.callbackRouteKeyExist; answers {success, result: {callbackUrl, apiSecret}}."""
        called = await self._permitted_call(request, "callbackRegister", CARD_WRITE)
        if isinstance(called, web.Response):
            return called
        app, body = called
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) and body[k]
                                                 for k in ("callbackRouteKey", "callbackUrl")):
            return self._new_error(400, "param.invalid", "无效参数")
        if not body["callbackUrl"].startswith(("http://", "https://")):
            return self._new_error(400, "param.callbackUrlInvalid", "回调地址无效")
        key = (app.client_id, body["callbackRouteKey"])
        if key in self.routes and not body.get("forceUpdate"):
            return self._new_error(500, "param.callbackRouteKeyExist", "回调路由已存在")
        api_secret = body.get("apiSecret") if isinstance(body.get("apiSecret"), str) and body.get("apiSecret") \
            else uuid.uuid4().hex  # DingTalk makes one up when none is given
        self.routes[key] = (body["callbackUrl"], api_secret)
        return web.json_response({"success": True, "result": {"callbackUrl": body["callbackUrl"], "apiSecret": api_secret}})

    # -- messages -----------------------------------------------------------------------
    async def _batch_send(self, request: web.Request) -> web.Response:
        called = await self._permitted_call(request, "batchSend", "qyapi_robot_sendmsg")
        if isinstance(called, web.Response):
            return called
        app, body = called
        if not isinstance(body, dict):
            return self._new_error(400, "invalidParameter", "请求体不是JSON对象")
        if body.get("robotCode") != app.robot_code:
            return self._new_error(400, "chatbot.notFound", "机器人不存在")
        users = body.get("userIds")
        if not isinstance(users, list) or not users or not all(isinstance(u, str) and u for u in users):
            return self._new_error(400, "invalidParameter.userIds.empty", "userIds 参数无效")
        if len(users) > 20:
            return self._new_error(400, "invalidParameter.userIds.overMax", "userIds 超过最大数量 20")
        if len(set(users)) != len(users):
            self.protocol_errors.append(f"batchSend with repeated userIds {users}")
        msg_key = body.get("msgKey")
        if msg_key not in MSG_KEYS:
            return self._new_error(400, "invalidParameter.msgKey.invalid", "msgKey 无效")
        param = self._msg_param(app, msg_key, body.get("msgParam"))
        if param is None:
            return self._new_error(400, "invalidParameter.msgParam.invalid", "msgParam 无效")
        invalid, flow, filtered, sent = [], [], [], []
        for u in dict.fromkeys(users):
            if u not in self.users[app.client_id]:
                invalid.append(u)
            elif u in self.filtered:
                filtered.append(u)
            elif self._flow[u] > 0:
                self._flow[u] -= 1
                flow.append(u)
            else:
                sent.append(u)
                self.delivered[u].append(Delivered(u, _kind_of(msg_key), "batchSend", param))
        return web.json_response({"processQueryKey": uuid.uuid4().hex, "invalidStaffIdList": invalid,
                                  "flowControlledStaffIdList": flow, "filteredStaffIdList": filtered})

    def _msg_param(self, app: FakeApp, msg_key: str, raw: Any) -> dict[str, Any] | None:
        if not isinstance(raw, str):
            return None
        try:
            param = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(param, dict):
            return None
        for k in MSG_KEYS[msg_key]:
            if not isinstance(param.get(k), str) or not param[k]:
                return None
        if msg_key == "sampleFile":
            if param["fileType"] not in FILE_TYPES:
                return None
            media = self.media.get(param["mediaId"])
            if media is None or media[0] is not app:
                return None
        return param

    async def _session_webhook(self, request: web.Request) -> web.Response:
        self.calls["sessionWebhook"] += 1
        session = self.sessions.get(request.query.get("session", ""))
        if session is None or session.expires_ms < self.now_ms():
            return self._old_error(300001, "session 不存在或已过期")
        fault = self._fault("sessionWebhook")
        if fault:
            self.rejected[("sessionWebhook", fault)] += 1
            return self._old_error(-1, "系统繁忙", status=500)
        body = await self._json_body(request)
        if not isinstance(body, dict) or body.get("msgtype") not in ("text", "markdown"):
            return self._old_error(40035, "不合法的参数")
        part = body.get(body["msgtype"])
        need = ("content",) if body["msgtype"] == "text" else ("title", "text")
        if not isinstance(part, dict) or not all(isinstance(part.get(k), str) and part[k] for k in need):
            return self._old_error(40035, "不合法的参数")
        who = session.userid if session.conversation_type == "1" else f"group:{session.conversation_id}"
        self.delivered[who].append(Delivered(who, body["msgtype"], "session", part))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _media_upload(self, request: web.Request) -> web.Response:
        app, denied = await self._old_style_gate(request, "mediaUpload")
        if denied is not None:
            return denied
        assert app is not None
        if not request.content_type.startswith("multipart/"):
            return self._old_error(40035, "不合法的参数")
        media_type, filename, content = "", "", b""
        async for part in await request.multipart():
            if part.name == "type":
                media_type = (await part.text()).strip()
            elif part.name == "media":
                filename = part.filename or ""
                content = bytes(await part.read())
        if media_type not in ("image", "voice", "video", "file"):
            return self._old_error(40004, "不合法的媒体文件类型")
        if not filename or not content:
            return self._old_error(41005, "缺少多媒体文件数据")
        if len(content) > 20 * 1024 * 1024:
            return self._old_error(40006, "不合法的文件大小")
        media_id = "@lA" + uuid.uuid4().hex
        self.media[media_id] = (app, filename, content)
        return web.json_response({"errcode": 0, "errmsg": "ok", "media_id": media_id, "type": media_type,
                                  "created_at": self.now_ms()})

    # -- files people send the robot -----------------------------------------------------
    async def push_file_message(self, app: FakeApp, userid: str, content: bytes, *, filename: str = "",
                                picture: bool = False, msg_id: str = "") -> Frame:
        """A person sends the robot a picture (msgtype picture, content.downloadCode) or a file (msgtype
        file, content.downloadCode + fileName), in a 1:1 chat: files are only received 1:1 (DP receive.md)."""
        code = "dc" + uuid.uuid4().hex
        self.received[code] = (app, filename, content)
        data = self.robot_message(app, userid, "", msg_id=msg_id)
        del data["text"]
        data["msgtype"] = "picture" if picture else "file"
        data["content"] = {"downloadCode": code} if picture else {"downloadCode": code, "fileName": filename}
        return await self._push(app, ROBOT_TOPIC, data, "robot")

    async def _message_file_download(self, request: web.Request) -> web.Response:
        """POST /v1.0/robot/messageFiles/download {downloadCode, robotCode} → {downloadUrl} (robot_1_0
        DownloadMessageFile in aliyun/dingtalk-sdk; the SDK's get_image_download_url). [?] The codes of an
        unknown downloadCode or a robotCode of another robot are not documented: the fake refuses both
        with HTTP 400 and never hands out another robot's file."""
        app, denied = await self._new_style_gate(request, "messageFilesDownload")
        if denied is not None:
            return denied
        assert app is not None
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("downloadCode"), str) or not body["downloadCode"]:
            return self._new_error(400, "MissingdownloadCode", "downloadCode is mandatory for this action.")
        if not isinstance(body.get("robotCode"), str) or not body["robotCode"]:
            return self._new_error(400, "MissingrobotCode", "robotCode is mandatory for this action.")
        entry = self.received.get(body["downloadCode"])
        if body["robotCode"] != app.robot_code or entry is None or entry[0] is not app:
            self.rejected[("messageFilesDownload", "unknown")] += 1
            return self._new_error(400, "invalidParameter.downloadCode", "downloadCode 无效")
        token = uuid.uuid4().hex
        # [?] how long a downloadUrl lives is not documented ("临时下载链接"): the fake gives an hour.
        self.download_urls[token] = (entry[2], time.monotonic() + 3600)
        return web.json_response({"downloadUrl": f"{self.base_url}/robot-files/{token}"})

    async def _robot_file(self, request: web.Request) -> web.StreamResponse:
        entry = self.download_urls.get(request.match_info["token"])
        if entry is None or entry[1] < time.monotonic():
            return web.Response(status=403, text="AccessDenied")  # an OSS-style refusal of a stale link [?]
        return web.Response(body=entry[0], content_type="application/octet-stream")

    # -- cards ------------------------------------------------------------------------
    def _card_data(self, raw: Any) -> dict[str, Any] | str:
        """The parsed StandardCard data, or why it is refused."""
        if not isinstance(raw, str):
            return "cardData must be a JSON string"
        try:
            data = json.loads(raw)
        except ValueError:
            return "cardData is not JSON"
        if not isinstance(data, dict):
            return "cardData is not an object"
        header = data.get("header", {})
        if not isinstance(header, dict) or not isinstance(header.get("title", {}), dict):
            return "header.title must be an object"
        title = header.get("title")
        if title is not None and (title.get("type") != "text" or not isinstance(title.get("text"), str)):
            return "header.title must be {type: text, text}"
        contents = data.get("contents")
        if not isinstance(contents, list) or not contents:
            return "contents must be a non-empty list"
        ids: set[str] = set()

        def check_id(x: Any) -> bool:
            if not isinstance(x, str) or not _COMPONENT_ID.match(x) or x in ids:
                return False
            ids.add(x)
            return True

        for c in contents:
            if not isinstance(c, dict) or c.get("type") not in _CONTENT_TYPES or not check_id(c.get("id")):
                return f"bad content element {str(c)[:80]}"
            if c["type"] in ("markdown", "text") and not isinstance(c.get("text"), str):
                return "markdown element without text"
            if c["type"] == "action":
                actions = c.get("actions")
                if not isinstance(actions, list) or not actions:
                    return "action element without actions"
                for a in actions:
                    if not isinstance(a, dict) or a.get("type") != "button" or not check_id(a.get("id")):
                        return f"bad button {str(a)[:80]}"
                    label = a.get("label")
                    if not isinstance(label, dict) or label.get("type") != "text" or not isinstance(label.get("text"), str) \
                            or not label["text"] or ("id" in label and not check_id(label["id"])):
                        return "button label must be {type: text, text, id}"
                    if a.get("actionType") not in ("request", "openLink"):
                        return "button actionType must be request or openLink"
                    if a["actionType"] == "openLink" and not isinstance((a.get("url") or {}).get("all"), str):
                        return "openLink button without url.all"
                    if a.get("status", "normal") not in ("primary", "normal"):
                        return "button status must be primary or normal"
        return data

    async def _card_send(self, request: web.Request) -> web.Response:
        called = await self._permitted_call(request, "cardSend", LEGACY_CARD)
        if isinstance(called, web.Response):
            return called
        app, body = called
        if not isinstance(body, dict):
            return self._new_error(400, "param.empty", "入参为空")
        if "callbackRouteKey" in body:
            self.protocol_errors.append("StandardCard send with callbackRouteKey, which that API does not have "
                                        "(its field is callbackUrl)")
        if body.get("cardTemplateId") != "StandardCard":
            return self._new_error(400, "card.templateEmpty", "卡片模板ID为空")
        if body.get("robotCode") != app.robot_code:
            return self._new_error(400, "chatbot.notFound", "机器人不存在")
        biz_id = body.get("cardBizId")
        if not isinstance(biz_id, str) or not biz_id or len(biz_id) > 128:
            return self._new_error(400, "card.outTraceIdEmpty", "业务标识outTrackId为空")
        data = self._card_data(body.get("cardData"))
        if isinstance(data, str):
            return self._new_error(400, "param.invalid", f"无效参数：{data}")
        single, group = body.get("singleChatReceiver"), body.get("openConversationId")
        if (single is None) == (group is None):
            return self._new_error(400, "param.invalid", "singleChatReceiver 与 openConversationId 须且只能填一个")
        if group is not None:
            return self._new_error(400, "param.invalid", "the fake supports 1:1 cards only")
        try:
            receiver = json.loads(single) if isinstance(single, str) else None
        except ValueError:
            receiver = None
        userid = receiver.get("userId") if isinstance(receiver, dict) else None
        if not isinstance(userid, str) or userid not in self.users[app.client_id]:
            return self._new_error(400, "userInfo.convertError", "消息接收者UID解码错误")
        callback_url = body.get("callbackUrl", "")
        if callback_url and not (isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))):
            return self._new_error(400, "param.invalid", "callbackUrl 无效")
        existing = self.cards.get(biz_id)
        if existing is not None:
            if existing.app is not app:
                return self._new_error(400, "param.invalid", "cardBizId 已被使用")
            if existing.userid == userid:
                return web.json_response({"processQueryKey": "pq_" + biz_id})  # idempotent resend
            self.protocol_errors.append(f"card {biz_id} sent to a second person")
        card = FakeCard(biz_id=biz_id, app=app, userid=userid, data=data, callback_url=callback_url, versions=[data])
        self.cards[biz_id] = card
        self.delivered[userid].append(Delivered(userid, "card", "card", data, card_biz_id=biz_id))
        return web.json_response({"processQueryKey": "pq_" + biz_id})

    async def _card_update(self, request: web.Request) -> web.Response:
        called = await self._permitted_call(request, "cardUpdate", LEGACY_CARD)
        if isinstance(called, web.Response):
            return called
        app, body = called
        if not isinstance(body, dict):
            return self._new_error(400, "param.empty", "入参为空")
        card = self.cards.get(body.get("cardBizId", ""))
        if card is None or card.app is not app:
            return self._new_error(400, "param.invalid", "cardBizId 不存在")
        data = self._card_data(body.get("cardData"))
        if isinstance(data, str):
            return self._new_error(400, "param.invalid", f"无效参数：{data}")
        card.data = data
        card.versions.append(data)
        return web.json_response({"success": True, "result": True})

    # -- cards: 消息卡片高级版 (card instances of a template) ---------------------------------
    # Bodies and errors: create-and-deliver-cards / interface-for-creating-a-card-instance /
    # interactive-card-update-interface pages, the Tea SDK models (CreateAndDeliverResponseBody:
    # {success, result: {outTrackId, deliverResults: [{success, spaceId, spaceType, errorMsg, carrierId}]}}).
    # The error code for an unknown template id is not documented [?]: the fake answers
    # 400 param.cardTemplateNotExist and the bot only relies on "template" being in the code.
    def _card_params(self, template: dict[str, Any], card_data: Any) -> dict[str, str] | str:
        if not isinstance(card_data, dict) or not isinstance(card_data.get("cardParamMap"), dict):
            return "cardData.cardParamMap must be an object"
        params = card_data["cardParamMap"]
        for k, v in params.items():
            if not isinstance(v, str):
                return f"cardParamMap value of {k!r} is not a string"
            if len(k.encode()) > 100 or len(v.encode()) > 1024:
                return f"cardParamMap {k!r}: key over 100 bytes or value over 1 KB"
        unknown = set(params) - template_variables(template)
        if unknown:
            self.protocol_errors.append(f"cardParamMap keys the template does not have: {sorted(unknown)}")
        return dict(params)

    async def _instance(self, request: web.Request, api: str, *, deliver: bool) -> web.Response:
        called = await self._permitted_call(request, api, CARD_WRITE)
        if isinstance(called, web.Response):
            return called
        app, body = called
        if not isinstance(body, dict):
            return self._new_error(400, "param.empty", "入参为空")
        template_id = body.get("cardTemplateId")
        if not isinstance(template_id, str) or not template_id:
            return self._new_error(400, "param.cardTemplateIdEmpty", "卡片模版 Id 为空")
        template = self.templates.get(template_id)
        if template is None:
            return self._new_error(400, "param.cardTemplateNotExist", "卡片模板不存在")
        track = body.get("outTrackId")
        if not isinstance(track, str) or not track or len(track) > 128:
            return self._new_error(400, "param.outTrackIdEmpty", "业务标识 outTrackId 为空")
        params = self._card_params(template, body.get("cardData"))
        if isinstance(params, str):
            return self._new_error(400, "param.invalid", f"无效参数：{params}")
        callback_type = body.get("callbackType", "")
        if callback_type not in ("", "STREAM", "HTTP"):
            return self._new_error(400, "param.invalid", "callbackType 须为 STREAM 或 HTTP")
        route = body.get("callbackRouteKey", "")
        if callback_type == "HTTP" and (app.client_id, route) not in self.routes:
            return self._new_error(400, "param.callbackRouteKeyNotExist", "回调路由未注册")
        if callback_type != "HTTP" and route:
            self.protocol_errors.append(f"card {track}: callbackRouteKey without callbackType HTTP")
        if track in self.cards:
            return self._new_error(400, "param.outTrackIdExist", "outTrackId 已存在")
        userid, results = "", []
        if deliver:
            space = body.get("openSpaceId")
            model = body.get("imRobotOpenDeliverModel")
            if not isinstance(space, str) or not space.startswith("dtv1.card//IM_ROBOT.") or not isinstance(model, dict):
                return self._new_error(400, "param.openSpaceModelInvalid", "openSpaceId 或投放参数无效")
            if model.get("spaceType") != "IM_ROBOT":
                return self._new_error(400, "param.openSpaceModelInvalid", "imRobotOpenDeliverModel.spaceType 须为 IM_ROBOT")
            userid = space[len("dtv1.card//IM_ROBOT."):]
            if userid not in self.users[app.client_id]:
                return self._new_error(400, "param.userIdNotExist", "用户 userId 不存在")
            if model.get("robotCode") != app.robot_code:
                # The instance is made, the delivery fails: HTTP 200 with success false in deliverResults.
                results.append({"spaceType": "IM_ROBOT", "spaceId": userid, "success": False,
                                "errorMsg": "robot not found"})
            else:
                results.append({"spaceType": "IM_ROBOT", "spaceId": userid, "success": True,
                                "carrierId": uuid.uuid4().hex})
        card = FakeCard(biz_id=track, app=app, userid=userid, data=params, kind="instance", template_id=template_id,
                        callback_type=callback_type, route_key=route if callback_type == "HTTP" else "",
                        versions=[dict(params)], template=template)
        self.cards[track] = card
        if results and results[0]["success"]:
            self.delivered[userid].append(Delivered(userid, "card", "card", dict(params), card_biz_id=track))
        elif deliver:
            card.userid = ""  # made but in nobody's chat
        return web.json_response({"success": True, "result": {"outTrackId": track, "deliverResults": results}})

    async def _create_and_deliver(self, request: web.Request) -> web.Response:
        return await self._instance(request, "cardCreateAndDeliver", deliver=True)

    async def _create_instance(self, request: web.Request) -> web.Response:
        return await self._instance(request, "cardCreate", deliver=False)

    async def _update_instance(self, request: web.Request) -> web.Response:
        called = await self._permitted_call(request, "cardInstanceUpdate", CARD_WRITE)
        if isinstance(called, web.Response):
            return called
        app, body = called
        if not isinstance(body, dict):
            return self._new_error(400, "param.empty", "入参为空")
        card = self.cards.get(body.get("outTrackId", ""))
        if card is None or card.app is not app or card.kind != "instance":
            return self._new_error(400, "param.outTrackIdNotExist", "卡片实例不存在")
        if card.pressing:
            self.protocol_errors.append(f"card {card.biz_id} updated through the API inside its press callback")
        params = self._card_params(card.template, body.get("cardData"))
        if isinstance(params, str):
            return self._new_error(400, "param.invalid", f"无效参数：{params}")
        by_key = bool((body.get("cardUpdateOptions") or {}).get("updateCardDataByKey"))
        card.data = {**card.data, **params} if by_key else params
        card.versions.append(dict(card.data))
        return web.json_response({"success": True, "result": True})

    def cards_of(self, userid: str) -> list[FakeCard]:
        return [c for c in self.cards.values() if c.userid == userid]

    # -- directory --------------------------------------------------------------------
    async def _dept_get(self, request: web.Request) -> web.Response:
        app, denied = await self._old_style_gate(request, "departmentGet")
        if denied is not None:
            return denied
        assert app is not None
        body = await self._json_body(request)
        dept = self.departments[app.client_id].get(body.get("dept_id") if isinstance(body, dict) else None)
        if dept is None:
            return self._old_error(60003, "部门不存在")
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": dict(dept)})

    async def _dept_listsub(self, request: web.Request) -> web.Response:
        app, denied = await self._old_style_gate(request, "departmentListsub")
        if denied is not None:
            return denied
        assert app is not None
        body = await self._json_body(request)
        dept_id = body.get("dept_id") if isinstance(body, dict) else None
        if dept_id not in self.departments[app.client_id]:
            return self._old_error(60003, "部门不存在")
        subs = [dict(d) for d in self.departments[app.client_id].values() if d["parent_id"] == dept_id]
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": subs})

    async def _user_list(self, request: web.Request) -> web.Response:
        app, denied = await self._old_style_gate(request, "userList")
        if denied is not None:
            return denied
        assert app is not None
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("cursor"), int) or not isinstance(body.get("size"), int):
            return self._old_error(40035, "不合法的参数")
        if not 1 <= body["size"] <= 100:
            return self._old_error(40035, "size 须在 1 到 100 之间")
        dept_id = body.get("dept_id")
        if dept_id not in self.departments[app.client_id]:
            return self._old_error(60003, "部门不存在")
        members = [u for u in self.users[app.client_id].values() if dept_id in u["dept_id_list"]]
        page = members[body["cursor"]: body["cursor"] + body["size"]]
        more = body["cursor"] + body["size"] < len(members)
        # The list API has no manager field: only user/get returns manager_userid.
        items = [{k: v for k, v in u.items() if k != "manager_userid"} for u in page]
        result: dict[str, Any] = {"has_more": more, "list": items}
        if more:
            result["next_cursor"] = body["cursor"] + body["size"]
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": result})

    async def _user_get(self, request: web.Request) -> web.Response:
        app, denied = await self._old_style_gate(request, "userGet")
        if denied is not None:
            return denied
        assert app is not None
        body = await self._json_body(request)
        user = self.users[app.client_id].get(body.get("userid") if isinstance(body, dict) else None)
        if user is None:
            return self._old_error(60121, "找不到该用户")
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": dict(user)})


def tenant_config(app: FakeApp, base_url: str, key: str = "acme", mode: str = "stream", *,
                  card_template_id: str = GENERAL_TEMPLATE_ID, **extra: Any) -> dict[str, Any]:
    """A `[[tenants]]` entry talking to this fake (with the general card template unless told otherwise)."""
    return {"key": key, "name": "示例科技", "dingtalk": {
        "client_id": app.client_id, "client_secret": app.client_secret, "robot_code": app.robot_code,
        "mode": mode, "api_base": base_url, "card_template_id": card_template_id}, **extra}


def _kind_of(msg_key: str) -> str:
    return {"sampleText": "text", "sampleMarkdown": "markdown", "sampleFile": "file",
            "sampleImageMsg": "image", "sampleLink": "link", "sampleActionCard": "actionCard"}[msg_key]
