"""One tenant's Stream connection, on the official dingtalk-stream SDK.

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
"""
from __future__ import annotations

import asyncio
import json
import logging
import platform as _platform
import random
import time
from typing import Any, Awaitable, Callable, Protocol
from urllib.parse import quote_plus

import requests
import websockets
from dingtalk_stream import (AckMessage, CallbackHandler, CallbackMessage, ChatbotMessage, Credential,
                             DingTalkStreamClient, EventHandler, EventMessage)
from dingtalk_stream.frames import Headers
from dingtalk_stream.version import VERSION_STRING

from bot.core.config import TenantConfig
from bot.dingtalk.events import frame_problem
from handlers.trace_rules import TraceSettings



class StreamOwner(Protocol):
    """What a connection needs of the adapter that owns it (the adapter imports this module, not the reverse)."""

    reconnect_base: float
    reconnect_max: float

    async def accept_robot(self, tenant: TenantConfig, data: Any) -> int: ...

    async def accept_card(self, tenant: TenantConfig, data: Any) -> int: ...

    async def accept_event(self, tenant: TenantConfig, event_id: str, event_type: str, data: Any) -> int: ...

log = logging.getLogger(__name__)

ROBOT_TOPIC = ChatbotMessage.TOPIC  # /v1.0/im/bot/messages/get
CARD_TOPIC = CallbackHandler.TOPIC_CARD_CALLBACK  # /v1.0/card/instances/callback


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


class _Events(EventHandler):
    """Event frames (OA approvals) into external events; the SDK acks with the returned code."""

    def __init__(self, accept: Callable[[str, str, Any], Awaitable[int]]) -> None:
        super().__init__()
        self.logger = log
        self._accept = accept

    async def process(self, event: EventMessage) -> tuple[int, str]:
        code = await self._accept(event.headers.event_id or "", event.headers.event_type or "", event.data)
        return code, "OK" if code == AckMessage.STATUS_OK else "refused"


class StreamConnection:
    """One tenant's Stream connection, kept up with exponential backoff until stopped."""

    def __init__(self, adapter: StreamOwner, tenant: TenantConfig) -> None:
        assert tenant.dingtalk is not None
        self.adapter = adapter
        self.tenant = tenant
        sdk_log = logging.getLogger(f"{__name__}.{tenant.key}")
        sdk_log.addFilter(_QuietPings())
        self.client = _TenantStreamClient(
            Credential(tenant.dingtalk.client_id, tenant.dingtalk.client_secret), tenant.dingtalk.api_base, sdk_log)
        self.client.register_callback_handler(ROBOT_TOPIC, _Handler(lambda d: adapter.accept_robot(tenant, d)))
        self.client.register_callback_handler(CARD_TOPIC, _Handler(lambda d: adapter.accept_card(tenant, d)))
        if TraceSettings.of(tenant).codes("dingtalk_oa") or any(
                r.source == "dingtalk_oa" for r in TraceSettings.of(tenant).rules):
            # Only a tenant whose rules read OA approvals subscribes to events (topic "*" is every event).
            self.client.register_all_event_handler(
                _Events(lambda i, t, d: adapter.accept_event(tenant, i, t, d)))
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
        problem = frame_problem(frame)
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
