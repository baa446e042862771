"""The DingTalk (钉钉) internal-app robot adapter: Stream or HTTP callbacks in, OpenAPI out.

Stream mode (no public URL needed) runs the official dingtalk-stream SDK's client,
one connection per tenant, with handlers for robot messages and card presses.
Every frame becomes an Event that is stored in the inbox *before* the frame is
acked; the ack follows at once, without waiting for the conversation to run, and
the inbox's unique `msg:<msgId>` key makes DingTalk's redeliveries harmless.

Three things of SDK 0.24.3 do not fit a shared event loop, so `_TenantStreamClient`
keeps the SDK's handlers, frame parsing, routing, acks and keepalive but runs its
own connect loop:
- `DINGTALK_OPENAPI_ENDPOINT` is read once at import into module constants
  (`utils.DINGTALK_OPENAPI_ENDPOINT`, `DingTalkStreamClient.OPEN_CONNECTION_API`),
  one endpoint per process; each tenant's client here uses its own `api_base`;
- `open_connection` is a blocking `requests` call: it runs in a worker thread;
- `start()` swallows cancellation, retries every 3–10 s without backoff and drops
  the connection on a frame that is not JSON: the loop here backs off
  exponentially with jitter, stops when told and refuses bad frames without
  dropping the connection.

HTTP mode takes the same robot messages at `/dingtalk/{tenant_key}/callback`,
signed with `timestamp` + `sign` = base64(HMAC-SHA256(appSecret,
timestamp + "\\n" + appSecret)) and refused outside a one-hour window. Card presses
in HTTP mode arrive at the URL registered for the tenant's callbackRouteKey
(`register_card_callback`), which carries a per-tenant token.

Outbound: text/markdown/file go through `robot/oToMessages/batchSend` (identical
messages merged, 20 people a call) or, for a reply in a live 1:1 chat, through the
message's sessionWebhook; cards are StandardCard interactive cards whose `cardBizId`
is our card id, so a press names the card and an update replaces it in place.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import logging
import platform as _platform
import random
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote_plus

import requests
import websockets
from aiohttp import web
from dingtalk_stream import AckMessage, CallbackHandler, CallbackMessage, ChatbotMessage, Credential, DingTalkStreamClient
from dingtalk_stream.frames import Headers
from dingtalk_stream.version import VERSION_STRING

from bot.adapter import Adapter, OutboundItem, SendResult
from bot.core.config import TenantConfig
from bot.dingtalk_api import MAX_BATCH_USERS, DingTalkApi, DingTalkApiError
from bot.core.events import Event
from bot.replay import ReplayGuard, body_digest
from bot.storable import UNSTORABLE, storable
from cards import dingtalk as render
from cards.model import Message

log = logging.getLogger(__name__)

ROBOT_TOPIC = ChatbotMessage.TOPIC  # /v1.0/im/bot/messages/get
CARD_TOPIC = CallbackHandler.TOPIC_CARD_CALLBACK  # /v1.0/card/instances/callback
SIGNATURE_WINDOW_MS = 3600 * 1000
# How soon after its timestamp a second message with the same sign is still taken for a
# real one sent in the same millisecond (see http_callback).
SAME_MOMENT_MS = 5_000
# A reply goes through the sessionWebhook only while it has this long left to live.
SESSION_MARGIN_MS = 60 * 1000
# batchSend's flowControlledStaffIdList: per-person flow control; try those people again later.
FLOW_CONTROL_RETRY = 30.0
SEND_CONCURRENCY = 8


class InvalidCallback(ValueError):
    """A frame or request that is not a well-formed DingTalk callback; refused, nothing stored."""


# -- signatures and tokens ------------------------------------------------------------
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


# -- callbacks → events ---------------------------------------------------------------
def _str(d: dict[str, Any], key: str, *, required: bool = True) -> str:
    v = d.get(key)
    if isinstance(v, str) and v:
        return v
    if required:
        raise InvalidCallback(f"{key} missing or not a string")
    return ""


def robot_event(tenant: TenantConfig, data: Any) -> Event | None:
    """The Event of a robot message; None for a kind we do not read (pictures, audio …)."""
    if not isinstance(data, dict):
        raise InvalidCallback("robot message data is not an object")
    if not storable(data):
        raise InvalidCallback(f"robot message {UNSTORABLE}")
    msg_id = _str(data, "msgId")
    userid = _str(data, "senderStaffId")
    conv_type = data.get("conversationType")
    if conv_type not in ("1", "2"):
        raise InvalidCallback("conversationType is not '1' or '2'")
    msgtype = _str(data, "msgtype")
    robot_code = data.get("robotCode")
    assert tenant.dingtalk is not None
    if isinstance(robot_code, str) and robot_code and robot_code != tenant.dingtalk.robot_code:
        log.warning("dingtalk %s: message for robotCode %s, configured %s", tenant.key, robot_code,
                    tenant.dingtalk.robot_code)
    if msgtype == "text":
        text = data.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("content"), str):
            raise InvalidCallback("text message without text.content")
        content = text["content"]
    elif msgtype == "richText":
        parts = (data.get("content") or {}).get("richText") if isinstance(data.get("content"), dict) else None
        if not isinstance(parts, list):
            raise InvalidCallback("richText message without content.richText")
        content = "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    else:
        log.info("dingtalk %s: ignoring a %s message from %s", tenant.key, msgtype, userid)
        return None
    at_users = data.get("atUsers") or []
    if not isinstance(at_users, list):
        raise InvalidCallback("atUsers is not a list")
    robot_id = data.get("chatbotUserId")
    mentions: list[str] = []
    for u in at_users:
        if not isinstance(u, dict) or (robot_id and u.get("dingtalkId") == robot_id):
            continue
        staff = u.get("staffId")
        if isinstance(staff, str) and staff and staff not in mentions:
            mentions.append(staff)
    hint: dict[str, Any] = {"conversation_id": data.get("conversationId") if isinstance(data.get("conversationId"), str) else "",
                            "conversation_type": conv_type}
    webhook, expires = data.get("sessionWebhook"), data.get("sessionWebhookExpiredTime")
    if isinstance(webhook, str) and webhook.startswith(("https://", "http://")) and isinstance(expires, int):
        hint["session_webhook"] = webhook
        hint["expires"] = expires
    return Event(tenant=tenant.key, platform="dingtalk", userid=userid, kind="text", text=content.strip(),
                 mentions=mentions, hint=hint, dedup_key=f"msg:{msg_id}")


def _json_field(data: dict[str, Any], key: str) -> Any:
    v = data.get(key)
    if isinstance(v, str) and v:
        try:
            return json.loads(v)
        except ValueError:
            raise InvalidCallback(f"{key} is not JSON") from None
    return v


def card_event(tenant: TenantConfig, data: Any) -> Event:
    """The Event of a card button press (card instance callback)."""
    if not isinstance(data, dict):
        raise InvalidCallback("card callback data is not an object")
    if not storable(data):
        raise InvalidCallback(f"card callback {UNSTORABLE}")
    card_id = _str(data, "outTrackId")
    userid = _str(data, "userId")
    if data.get("userIdType", 1) not in (1, "1"):
        raise InvalidCallback("card callback userId is not a staff id (userIdType != 1)")
    action: dict[str, Any] | None = None
    for key in ("value", "content"):
        parsed = _json_field(data, key)
        if isinstance(parsed, dict) and isinstance(parsed.get("cardPrivateData"), dict):
            action = parsed["cardPrivateData"]
            break
    if action is None:
        raise InvalidCallback("card callback without cardPrivateData")
    params = action.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidCallback("cardPrivateData.params is not an object")
    ids = action.get("actionIds") or []
    if not isinstance(ids, list):
        raise InvalidCallback("cardPrivateData.actionIds is not a list")
    decoded = next((d for d in (render.parse_action_id(i) for i in ids) if d is not None), None)
    if decoded is not None:
        action_key, chosen = decoded
        raw_action = next(i for i in ids if render.parse_action_id(i) is not None)
    elif isinstance(params.get("key"), str) and params["key"]:
        action_key, chosen, raw_action = params["key"], {}, params["key"]
    else:
        raise InvalidCallback("card callback names no button of ours")
    values = {k: v for k, v in params.items() if k != "key"}
    values.update(chosen)
    return Event(tenant=tenant.key, platform="dingtalk", userid=userid, kind="action", card_id=card_id,
                 action_key=action_key, values=values, hint={"out_track_id": card_id},
                 dedup_key=f"card:{card_id}:{userid}:{raw_action}"[:255])


# -- the SDK client, per tenant ------------------------------------------------------------
class _TenantStreamClient(DingTalkStreamClient):
    """The SDK client with this tenant's endpoint instead of the process-wide constant."""

    def __init__(self, credential: Credential, api_base: str, logger: logging.Logger) -> None:
        super().__init__(credential, logger=logger)
        self.api_base = api_base.rstrip("/")

    def open_connection(self) -> dict[str, Any] | None:
        """The SDK's open_connection against this tenant's api_base, with a timeout; blocking."""
        url = self.api_base + "/v1.0/gateway/connections/open"
        topics = [{"type": "EVENT", "topic": "*"}] if self._is_event_required else []
        topics += [{"type": "CALLBACK", "topic": t} for t in self.callback_handler_map]
        body = json.dumps({
            "clientId": self.credential.client_id,
            "clientSecret": self.credential.client_secret,
            "subscriptions": topics,
            "ua": "dingtalk-sdk-python/v%s-union" % VERSION_STRING,
            "localIp": self.get_host_ip(),
        }).encode()
        headers = {
            "Content-Type": "application/json", "Accept": "application/json",
            "User-Agent": "DingTalkStream/1.0 SDK/%s Python/%s (+https://github.com/open-dingtalk/dingtalk-stream-sdk-python)"
                          % (VERSION_STRING, _platform.python_version()),
        }
        try:
            response = requests.post(url, headers=headers, data=body, timeout=15)
        except requests.RequestException as exc:
            self.logger.warning("open connection failed: %s", type(exc).__name__)
            return None
        if response.status_code != 200:
            self.logger.warning("open connection refused: HTTP %s %s", response.status_code, response.text[:200])
            return None
        try:
            result = response.json()
        except ValueError:
            return None
        if not isinstance(result, dict) or not isinstance(result.get("endpoint"), str) \
                or not isinstance(result.get("ticket"), str):
            self.logger.warning("open connection answered without endpoint/ticket")
            return None
        return result

    def get_access_token(self) -> str | None:  # pragma: no cover - the adapter uses DingTalkApi
        """Kept correct for SDK helpers: this tenant's endpoint, not the module constant."""
        now = int(time.time())
        if self._access_token and now < self._access_token["expireTime"]:
            return self._access_token["accessToken"]
        try:
            r = requests.post(self.api_base + "/v1.0/oauth2/accessToken", timeout=15,
                              json={"appKey": self.credential.client_id, "appSecret": self.credential.client_secret})
            r.raise_for_status()
            result = r.json()
        except (requests.RequestException, ValueError):
            return None
        result["expireTime"] = now + int(result.get("expireIn", 7200)) - 300
        self._access_token = result
        return result.get("accessToken")


class _QuietPings(logging.Filter):
    """SDK 0.24.3 logs every `ping` system frame as an unknown topic; it is routine."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "unknown message topic, topic=%s, message=%s" and record.args
                    and record.args[0] == "ping")


class _Handler(CallbackHandler):
    """Turns one topic's frames into inbox events; the SDK acks with the returned code."""

    def __init__(self, accept: Callable[[Any], Awaitable[int]]) -> None:
        super().__init__()
        self.logger = log
        self._accept = accept

    async def process(self, message: CallbackMessage) -> tuple[int, str]:
        code = await self._accept(message.data)
        return code, "OK" if code == AckMessage.STATUS_OK else "refused"


class StreamConnection:
    """One tenant's Stream connection, kept up with exponential backoff until stopped."""

    def __init__(self, adapter: "DingTalkAdapter", tenant: TenantConfig) -> None:
        assert tenant.dingtalk is not None
        self.adapter = adapter
        self.tenant = tenant
        sdk_log = logging.getLogger(f"{__name__}.stream.{tenant.key}")
        sdk_log.addFilter(_QuietPings())
        self.client = _TenantStreamClient(
            Credential(tenant.dingtalk.client_id, tenant.dingtalk.client_secret), tenant.dingtalk.api_base, sdk_log)
        self.client.register_callback_handler(ROBOT_TOPIC, _Handler(lambda d: adapter.accept_robot(tenant, d)))
        self.client.register_callback_handler(CARD_TOPIC, _Handler(lambda d: adapter.accept_card(tenant, d)))
        self.connected = False
        self.connects = 0
        self.down_since = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"dingtalk-stream-{self.tenant.key}")

    async def stop(self) -> None:
        self._stopping = True
        ws = self.client.websocket
        if ws is not None:
            try:
                await ws.close()
            except Exception:
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    def _delay(self, attempt: int) -> float:
        base = self.adapter.reconnect_base * (2 ** min(attempt, 16))
        return random.uniform(base / 2, min(base, self.adapter.reconnect_max))

    async def _run(self) -> None:
        self.client.pre_start()
        failures = 0
        while not self._stopping:
            asked_to_reconnect = False
            try:
                conn = await asyncio.to_thread(self.client.open_connection)
                if conn is None:
                    raise ConnectionError("open connection failed")
                uri = f"{conn['endpoint']}?ticket={quote_plus(conn['ticket'])}"
                async with websockets.connect(uri, open_timeout=15, max_size=4 * 1024 * 1024) as ws:
                    self.client.websocket = ws
                    self.connected = True
                    self.connects += 1
                    failures = 0
                    log.info("dingtalk %s: stream connected", self.tenant.key)
                    keepalive = asyncio.create_task(self.client.keepalive(ws))
                    # Frames are handled side by side, so callbacks arriving together share one inbox
                    # commit; one at a time, each waited for its own commit and acks queued behind it.
                    # They still reach the inbox in arrival order: nothing awaits before its queue.
                    inflight: set[asyncio.Task[str]] = set()
                    closing: set[asyncio.Future[None]] = set()
                    told_to_go = asyncio.Event()

                    def finished(task: asyncio.Task[str]) -> None:
                        inflight.discard(task)
                        if not task.cancelled() and task.exception() is None \
                                and task.result() == DingTalkStreamClient.TAG_DISCONNECT:
                            told_to_go.set()
                            closing.add(asyncio.ensure_future(ws.close()))  # ends the loop below

                    try:
                        async for raw in ws:
                            task = asyncio.create_task(self._on_frame(raw))
                            inflight.add(task)
                            task.add_done_callback(finished)
                            if told_to_go.is_set():
                                break
                        if inflight:  # let what is in hand be stored (and acked while the socket lives)
                            await asyncio.wait(set(inflight), timeout=5)
                        asked_to_reconnect = told_to_go.is_set()
                    finally:
                        keepalive.cancel()
                        self.connected = False
                        self.down_since = time.monotonic()
                        self.client.websocket = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dingtalk %s: stream connection failed: %s: %s", self.tenant.key, type(exc).__name__, exc)
            if self._stopping:
                return
            if asked_to_reconnect:
                log.info("dingtalk %s: gateway asked to reconnect", self.tenant.key)
                continue
            await asyncio.sleep(self._delay(failures))
            failures += 1

    async def _on_frame(self, raw: str | bytes) -> str:
        """Route one frame through the SDK; refuse what is not a well-formed frame."""
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            log.warning("dingtalk %s: refused a stream frame that is not JSON", self.tenant.key)
            return ""
        headers = frame.get("headers") if isinstance(frame, dict) else None
        if not isinstance(headers, dict):
            log.warning("dingtalk %s: refused a stream frame without headers", self.tenant.key)
            return ""
        message_id = headers.get("messageId")
        problem = _frame_problem(frame)
        if problem:
            log.warning("dingtalk %s: refused stream frame %s: %s", self.tenant.key, message_id, problem)
            await self._ack(message_id, AckMessage.STATUS_BAD_REQUEST)
            return ""
        try:
            return await self.client.route_message(frame)
        except Exception:
            log.exception("dingtalk %s: failed to handle stream frame %s", self.tenant.key, message_id)
            await self._ack(message_id, AckMessage.STATUS_SYSTEM_EXCEPTION)
            return ""

    async def _ack(self, message_id: Any, code: int) -> None:
        if not isinstance(message_id, str) or not message_id or self.client.websocket is None:
            return
        ack = AckMessage()
        ack.code = code
        ack.headers.message_id = message_id
        ack.headers.content_type = Headers.CONTENT_TYPE_APPLICATION_JSON
        ack.message = "refused" if code < 500 else "error"
        ack.data = {"response": None}
        try:
            await self.client.websocket.send(json.dumps(ack.to_dict()))
        except websockets.exceptions.ConnectionClosed:
            pass


def _frame_problem(frame: dict[str, Any]) -> str:
    headers = frame["headers"]
    if frame.get("type") not in ("SYSTEM", "EVENT", "CALLBACK"):
        return f"unknown type {frame.get('type')!r}"
    if not isinstance(headers.get("messageId"), str) or not headers["messageId"]:
        return "no messageId"
    if not isinstance(headers.get("topic"), str):
        return "no topic"
    for key in ("time", "eventBornTime"):
        if key in headers and not (str(headers[key]).isascii() and str(headers[key]).isdigit()):
            return f"{key} is not milliseconds"
    data = frame.get("data", "")
    if not isinstance(data, str):
        return "data is not a JSON string"
    if data:
        try:
            parsed = json.loads(data)
        except ValueError:
            return "data is not JSON"
        if not isinstance(parsed, dict):
            return "data is not a JSON object"
    elif frame["type"] == "CALLBACK":
        return "callback without data"
    return ""


# -- the adapter ----------------------------------------------------------------------------
class DingTalkAdapter(Adapter):
    platform = "dingtalk"

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        self.reconnect_base = 1.0
        self.reconnect_max = 60.0
        self.streams: dict[str, StreamConnection] = {}
        self._apis: dict[str, DingTalkApi] = {}
        # (tenant, userid) → (sessionWebhook, expiry ms) of the person's latest 1:1 message.
        self._sessions: dict[tuple[str, str], tuple[str, int]] = {}
        self.replays = ReplayGuard()

    def tenants(self) -> list[TenantConfig]:
        return [t for t in self.runtime.config.tenants if t.dingtalk is not None]

    def api(self, tenant: TenantConfig) -> DingTalkApi:
        """The OpenAPI client of a tenant (one per process: it holds the token and the rate window)."""
        assert tenant.dingtalk is not None
        api = self._apis.get(tenant.key)
        if api is None:
            api = self._apis[tenant.key] = DingTalkApi(tenant.dingtalk)
        return api

    # -- lifecycle -------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/dingtalk/{tenant_key}/callback", self.http_callback)

    async def start(self) -> None:
        for tenant in self.tenants():
            assert tenant.dingtalk is not None
            if tenant.dingtalk.mode == "stream" and tenant.key not in self.streams:
                conn = self.streams[tenant.key] = StreamConnection(self, tenant)
                conn.start()

    async def stop(self) -> None:
        streams, self.streams = list(self.streams.values()), {}
        await asyncio.gather(*(s.stop() for s in streams))
        apis, self._apis = list(self._apis.values()), {}
        for api in apis:
            await api.close()

    def healthy(self) -> bool:
        """Each Stream connection is up, or has been down for under two minutes (reconnecting)."""
        now = time.monotonic()
        return all(s.connected or now - s.down_since < 120 for s in self.streams.values())

    # -- inbound ---------------------------------------------------------------------------
    async def accept_robot(self, tenant: TenantConfig, data: Any) -> int:
        """Store a robot message; the ack code for DingTalk (200, 400 refused, 500 try again)."""
        try:
            event = robot_event(tenant, data)
        except InvalidCallback as exc:
            log.warning("dingtalk %s: refused a robot message: %s", tenant.key, exc)
            return AckMessage.STATUS_BAD_REQUEST
        if event is None:
            return AckMessage.STATUS_OK
        if not await self._accept(event):
            return AckMessage.STATUS_SYSTEM_EXCEPTION
        if event.hint.get("conversation_type") == "1" and "session_webhook" in event.hint:
            key = (tenant.key, event.userid)
            known = self._sessions.get(key)
            if known is None or known[1] < event.hint["expires"]:
                self._sessions[key] = (event.hint["session_webhook"], event.hint["expires"])
        return AckMessage.STATUS_OK

    async def accept_card(self, tenant: TenantConfig, data: Any) -> int:
        """Store a card press; the ack code for DingTalk."""
        try:
            event = card_event(tenant, data)
        except InvalidCallback as exc:
            log.warning("dingtalk %s: refused a card callback: %s", tenant.key, exc)
            return AckMessage.STATUS_BAD_REQUEST
        return AckMessage.STATUS_OK if await self._accept(event) else AckMessage.STATUS_SYSTEM_EXCEPTION

    async def _accept(self, event: Event) -> bool:
        """True once the event is in the inbox (fresh or a duplicate)."""
        try:
            await self.runtime.accept(event)
        except Exception:
            log.exception("dingtalk %s: could not store %s", event.tenant, event.dedup_key)
            return False
        return True

    async def http_callback(self, request: web.Request) -> web.Response:
        """HTTP mode: a robot message (signed) or a card press (registered URL with token)."""
        tenant = self.runtime.tenant(request.match_info["tenant_key"])
        if tenant is None or tenant.dingtalk is None or tenant.dingtalk.mode != "http":
            return web.json_response({"error": "unknown tenant"}, status=404)
        raw = await request.read()
        problem = check_signature(tenant.dingtalk.client_secret, request.headers.get("timestamp", ""),
                                  request.headers.get("sign", ""), self.runtime.clock.now())
        by_token = hmac.compare_digest(request.query.get("token", "").encode(), card_callback_token(tenant).encode())
        if problem and not by_token:
            log.warning("dingtalk %s: refused an HTTP callback from %s: %s", tenant.key, request.remote, problem)
            return web.json_response({"error": "signature"}, status=401)
        if problem is None:
            # The sign covers only the timestamp, not the body: one seen before may come back
            # on the same body (a retry). On another body it is either two real messages sent
            # in the same millisecond — they arrive together, at once — or a captured sign
            # replayed on a forged message later. Refuse only the latter: refusing the former
            # would lose a real message, and DingTalk may not resend it.
            ts = request.headers["timestamp"]
            now = self.runtime.clock.now().timestamp()
            burst = abs(now * 1000 - int(ts)) <= SAME_MOMENT_MS
            if not self.replays.admit((tenant.key, ts, request.headers["sign"]), body_digest(raw),
                                      expires_at=(int(ts) + SIGNATURE_WINDOW_MS) / 1000, now=now) and not burst:
                log.warning("dingtalk %s: refused an HTTP callback reusing the timestamp and sign of another",
                            tenant.key)
                return web.json_response({"error": "timestamp and sign already used for another message"},
                                         status=409)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            log.warning("dingtalk %s: refused an HTTP callback that is not JSON", tenant.key)
            return web.json_response({"error": "body is not JSON"}, status=400)
        if isinstance(data, dict) and "outTrackId" in data:
            code = await self.accept_card(tenant, data)
        elif problem:
            # The card token does not vouch for robot messages: those must be signed.
            log.warning("dingtalk %s: refused an unsigned robot message: %s", tenant.key, problem)
            return web.json_response({"error": "signature"}, status=401)
        else:
            code = await self.accept_robot(tenant, data)
        if code == AckMessage.STATUS_OK:
            return web.json_response({})
        return web.json_response({"error": "refused" if code < 500 else "try again"}, status=code)

    async def register_card_callback(self, tenant: TenantConfig, public_base_url: str) -> str:
        """Register where HTTP-mode card presses go; returns the registered URL."""
        url = f"{public_base_url.rstrip('/')}/dingtalk/{tenant.key}/callback?token={card_callback_token(tenant)}"
        await self.api(tenant).register_card_callback(card_route_key(tenant), url)
        return url

    # -- outbound --------------------------------------------------------------------------
    async def send(self, tenant: TenantConfig, userid: str, message: Message) -> SendResult:
        return (await self.send_batch(tenant, [OutboundItem(id=0, userid=userid, message=message)]))[0]

    async def send_batch(self, tenant: TenantConfig, items: list[OutboundItem]) -> dict[int, SendResult]:
        api = self.api(tenant)
        results: dict[int, SendResult] = {}
        jobs: list[Awaitable[None]] = []
        plain: dict[tuple[str, str], list[OutboundItem]] = defaultdict(list)
        files: dict[tuple[str, str, str], list[OutboundItem]] = defaultdict(list)
        for item in items:
            m = item.message
            if m.card is not None and m.card.broadcast:
                # A shared card (the 09:30 prompt) goes by batchSend, 20 people a call:
                # interactive cards go one person at a time, too slow at 20 QPS for a
                # whole company. Its buttons become "reply …" hints.
                m = render.broadcast_markdown(m)
                # The item carries the markdown too: a sessionWebhook reply renders item.message.
                item = OutboundItem(id=item.id, userid=item.userid, message=m)
            if m.kind in ("text", "markdown"):
                key, param = render.robot_message(m)
                plain[(key, json.dumps(param, ensure_ascii=False, sort_keys=True))].append(item)
            elif m.kind in ("file", "image"):
                files[(m.kind, m.path, m.filename or Path(m.path).name)].append(item)
            elif m.kind in ("card", "card_update") and m.card is not None:
                jobs.append(self._send_card(tenant, api, item, results))
            else:
                results[item.id] = SendResult(ok=False, error=f"cannot send a {m.kind} message", permanent=True)
        for (key, param_json), group in plain.items():
            jobs.append(self._send_plain(tenant, api, key, json.loads(param_json), group, results))
        for (kind, path, filename), group in files.items():
            jobs.append(self._send_file(api, kind, path, filename, group, results))
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def run(job: Awaitable[None]) -> None:
            async with gate:
                try:
                    await job
                except Exception:
                    # Items the job had not settled get no result and are retried; those it
                    # already sent keep theirs, so one bad job does not make the others go twice.
                    log.exception("dingtalk %s: a send job failed", tenant.key)
        await asyncio.gather(*(run(j) for j in jobs))
        return results

    async def _send_plain(self, tenant: TenantConfig, api: DingTalkApi, key: str, param: dict[str, Any],
                          group: list[OutboundItem], results: dict[int, SendResult]) -> None:
        """People in a live 1:1 chat get it through its sessionWebhook, the others by batchSend."""
        rest: list[OutboundItem] = []
        now_ms = int(self.runtime.clock.now().timestamp() * 1000)
        for item in group:
            session = self._sessions.get((tenant.key, item.userid))
            if session is None or session[1] - now_ms <= SESSION_MARGIN_MS:
                rest.append(item)
                continue
            try:
                await api.session_reply(session[0], render.session_webhook_body(item.message))
                results[item.id] = SendResult(ok=True, ref="sessionWebhook")
            except DingTalkApiError as exc:
                # Expired early or refused: the person still gets it through batchSend.
                log.info("dingtalk %s: sessionWebhook reply failed (%s), using batchSend", tenant.key, exc)
                self._sessions.pop((tenant.key, item.userid), None)
                rest.append(item)
        if rest:
            await self._batch(api, key, param, rest, results)

    async def _batch(self, api: DingTalkApi, key: str, param: dict[str, Any], group: list[OutboundItem],
                     results: dict[int, SendResult]) -> None:
        for chunk in _chunks(group):
            try:
                res = await api.batch_send([i.userid for i in chunk], key, param)
            except DingTalkApiError as exc:
                for i in chunk:
                    results[i.id] = _failed(exc)
                continue
            invalid, flow = set(res.invalid), set(res.flow_controlled)
            for i in chunk:
                if i.userid in invalid:
                    results[i.id] = SendResult(ok=False, error=f"invalid staff id {i.userid}", permanent=True)
                elif i.userid in flow:
                    results[i.id] = SendResult(ok=False, error=f"flow controlled: {i.userid}",
                                               retry_after=FLOW_CONTROL_RETRY)
                else:
                    results[i.id] = SendResult(ok=True, ref=res.process_query_key)

    async def _send_file(self, api: DingTalkApi, kind: str, path: str, filename: str, group: list[OutboundItem],
                         results: dict[int, SendResult]) -> None:
        if not path or not Path(path).is_file():
            for i in group:
                results[i.id] = SendResult(ok=False, error=f"file {path!r} no longer exists", permanent=True)
            return
        try:
            media_id = await api.upload_media(path, filename, "image" if kind == "image" else "file")
        except DingTalkApiError as exc:
            for i in group:
                results[i.id] = _failed(exc)
            return
        key, param = render.image_message(media_id) if kind == "image" else render.file_message(media_id, filename)
        captions = [i for i in group if i.message.text]
        await self._batch(api, key, param, group, results)
        # A caption goes as its own text after the file, only to those who got the file.
        for i in captions:
            if results[i.id].ok:
                try:
                    await api.batch_send([i.userid], "sampleText", {"content": i.message.text})
                except DingTalkApiError as exc:
                    log.warning("dingtalk: caption of file %s not sent: %s", filename, exc)

    async def _send_card(self, tenant: TenantConfig, api: DingTalkApi, item: OutboundItem,
                         results: dict[int, SendResult]) -> None:
        assert tenant.dingtalk is not None and item.message.card is not None
        card = item.message.card
        biz_id = card.id or f"dx_outbox_{item.id}"
        data = render.card_data(card)
        try:
            if item.message.kind == "card_update":
                await api.update_card(biz_id, data)
                results[item.id] = SendResult(ok=True, ref=biz_id)
            else:
                route = card_route_key(tenant) if tenant.dingtalk.mode == "http" else ""
                ref = await api.send_card(item.userid, biz_id, data, callback_route_key=route)
                results[item.id] = SendResult(ok=True, ref=ref or biz_id)
        except DingTalkApiError as exc:
            results[item.id] = _failed(exc)


def _failed(exc: DingTalkApiError) -> SendResult:
    return SendResult(ok=False, error=str(exc), retry_after=exc.retry_after, permanent=exc.permanent)


def _chunks(group: list[OutboundItem]) -> list[list[OutboundItem]]:
    """Calls of at most 20 distinct people; a second copy to one person goes in another call."""
    chunks: list[list[OutboundItem]] = []
    members: list[set[str]] = []
    for item in group:
        for chunk, who in zip(chunks, members):
            if len(chunk) < MAX_BATCH_USERS and item.userid not in who:
                chunk.append(item)
                who.add(item.userid)
                break
        else:
            chunks.append([item])
            members.append({item.userid})
    return chunks


# -- operator command: register the HTTP-mode card callback ------------------------------------
def main(argv: list[str] | None = None) -> int:
    """`python -m bot.dingtalk register-card-callback --tenant KEY --url https://bot.example.com`."""
    from bot.core.config import ConfigError, load_config

    p = argparse.ArgumentParser(prog="python -m bot.dingtalk")
    sub = p.add_subparsers(dest="cmd", required=True)
    reg = sub.add_parser("register-card-callback", help="tell DingTalk where HTTP-mode card presses go")
    reg.add_argument("--config", default="config.toml")
    reg.add_argument("--tenant", required=True)
    reg.add_argument("--url", required=True, help="the public base URL of this server, e.g. https://bot.example.com")
    args = p.parse_args(argv)
    try:
        tenant = load_config(args.config).tenant(args.tenant)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if tenant.dingtalk is None:
        print(f"tenant {tenant.key!r} has no [tenants.dingtalk] section", file=sys.stderr)
        return 2

    async def go() -> int:
        api = DingTalkApi(tenant.dingtalk)  # type: ignore[arg-type]
        try:
            url = f"{args.url.rstrip('/')}/dingtalk/{tenant.key}/callback?token={card_callback_token(tenant)}"
            await api.register_card_callback(card_route_key(tenant), url)
        except DingTalkApiError as exc:
            print(f"registration failed: {exc}", file=sys.stderr)
            return 1
        finally:
            await api.close()
        print(f"card presses of tenant {tenant.key} now go to {args.url.rstrip('/')}/dingtalk/{tenant.key}/callback")
        return 0

    return asyncio.run(go())


if __name__ == "__main__":
    raise SystemExit(main())
