"""The DingTalk (钉钉) internal-app robot adapter: Stream or HTTP callbacks in, OpenAPI out.

Stream mode (no public URL needed) runs one SDK connection per tenant (bot.dingtalk.stream).
Every frame becomes an Event that is stored in the inbox *before* the frame is
acked; the ack follows at once, without waiting for the conversation to run, and
the inbox's unique `msg:<msgId>` key makes DingTalk's redeliveries harmless.

HTTP mode takes the same robot messages at `/dingtalk/{tenant_key}/callback`,
signed as bot.dingtalk.signing checks; card presses in HTTP mode arrive at the same URL,
registered for the tenant's callbackRouteKey (`register_card_callback`) and signed with
the x-ddpaas-signature headers.

Outbound: text/markdown/file go through `robot/oToMessages/batchSend` (identical
messages merged, 20 people a call) or, for a reply in a live 1:1 chat, through the
message's sessionWebhook. Cards are 消息卡片高级版 instances of the tenant's general
template (createAndDeliver into the 1:1 robot chat, callbackType STREAM or HTTP) whose
outTrackId is our card id, so a press names the card and an update (PUT
/v1.0/card/instances, sent by the outbox after the press was acked) replaces it in place.
Without a template id, cards go as markdown that says what to type.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Awaitable

from aiohttp import web
from dingtalk_stream import AckMessage

from bot.adapter import Adapter, Download, OutboundItem, SendResult
from bot.core.config import TenantConfig
from bot.core.events import Event
from bot.dingtalk.api import MAX_BATCH_USERS, DingTalkApi, DingTalkApiError
from bot.dingtalk.oa import SOURCE as OA_SOURCE, InvalidOaEvent, incoming as oa_incoming, with_detail
from handlers.trace_rules import TraceSettings
from store.external_events import ingest
from bot.dingtalk.events import InvalidCallback, card_event, robot_event
from bot.dingtalk.signing import (CARD_SIGNATURE_HEADER, CARD_TIMESTAMP_HEADER, SAME_MOMENT_MS, SIGNATURE_WINDOW_MS,
                                  card_api_secret, card_route_key, card_timestamp_ms, check_card_signature, check_signature)
from bot.dingtalk.stream import StreamConnection
from bot.replay import ReplayGuard, body_digest
from cards import dingtalk as render
from cards.model import Message

log = logging.getLogger(__name__)

# A reply goes through the sessionWebhook only while it has this long left to live.
SESSION_MARGIN_MS = 60 * 1000
# batchSend's flowControlledStaffIdList: per-person flow control; try those people again later.
FLOW_CONTROL_RETRY = 30.0
SEND_CONCURRENCY = 8

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
        self._warned_no_template: set[str] = set()

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
            if not tenant.dingtalk.card_template_id and tenant.key not in self._warned_no_template:
                self._warned_no_template.add(tenant.key)
                log.warning("dingtalk %s: no card_template_id configured; cards go out as markdown with typed "
                            "answers until one is set (docs/dingtalk.md)", tenant.key)
            if tenant.dingtalk.mode == "stream" and tenant.key not in self.streams:
                conn = self.streams[tenant.key] = StreamConnection(self, tenant)
                conn.start()

    async def stop(self) -> None:
        streams, self.streams = list(self.streams.values()), {}
        await asyncio.gather(*(s.stop() for s in streams))
        apis, self._apis = list(self._apis.values()), {}
        for api in apis:
            await api.close()

    def notices(self) -> list[str]:
        """What /readyz reports without being unready: tenants whose cards fall back to markdown."""
        return [f"{t.key}: no card_template_id, cards go out as markdown with typed answers"
                for t in self.tenants() if t.dingtalk is not None and not t.dingtalk.card_template_id]

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

    async def accept_event(self, tenant: TenantConfig, event_id: str, event_type: str, data: Any) -> int:
        """Store an OA approval event (bot/dingtalk/oa.py) before it is acked; other events are acked and dropped."""
        try:
            item = oa_incoming(event_id, event_type, data)
        except InvalidOaEvent as exc:
            log.warning("dingtalk %s: refused event %s (%s): %s", tenant.key, event_id, event_type, exc)
            return AckMessage.STATUS_BAD_REQUEST
        if item is None:
            return AckMessage.STATUS_OK
        if item.code and item.code in TraceSettings.of(tenant).codes(OA_SOURCE):
            # A rule reads this process: its form comes with the event, or the event is not acked
            # (DingTalk delivers it again), so nothing is stored without the facts the rule needs.
            try:
                item = with_detail(item, await self.api(tenant).process_instance(str(item.extra["instance"])))
            except DingTalkApiError as exc:
                log.warning("dingtalk %s: instance of event %s not read (%s); DingTalk will deliver it again",
                            tenant.key, event_id, exc)
                return AckMessage.STATUS_SYSTEM_EXCEPTION
        try:
            if await ingest(self.runtime.db, tenant.key, item, self.runtime.clock.now()):
                self.runtime.wake_inbox()
        except Exception:
            log.exception("dingtalk %s: event %s not stored; DingTalk will deliver it again", tenant.key, event_id)
            return AckMessage.STATUS_SYSTEM_EXCEPTION
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
        """HTTP mode: a robot message (timestamp + sign) or a card press (x-ddpaas-signature)."""
        tenant = self.runtime.tenant(request.match_info["tenant_key"])
        if tenant is None or tenant.dingtalk is None or tenant.dingtalk.mode != "http":
            return web.json_response({"error": "unknown tenant"}, status=404)
        raw = await request.read()
        is_card = CARD_SIGNATURE_HEADER in request.headers or CARD_TIMESTAMP_HEADER in request.headers
        now_dt = self.runtime.clock.now()
        if is_card:
            ts, sign = request.headers.get(CARD_TIMESTAMP_HEADER, ""), request.headers.get(CARD_SIGNATURE_HEADER, "")
            problem = check_card_signature(card_api_secret(tenant.dingtalk), ts, sign, now_dt)
        else:
            ts, sign = request.headers.get("timestamp", ""), request.headers.get("sign", "")
            problem = check_signature(tenant.dingtalk.client_secret, ts, sign, now_dt)
        if problem:
            log.warning("dingtalk %s: refused an HTTP callback from %s: %s", tenant.key, request.remote, problem)
            return web.json_response({"error": "signature"}, status=401)
        # Either signature covers only the timestamp, not the body: one seen before may come back
        # on the same body (a retry). On another body it is either two real callbacks sent in the
        # same millisecond — they arrive together, at once — or a captured signature replayed on a
        # forged body later. Refuse only the latter: refusing the former would lose a real message,
        # and DingTalk may not resend it.
        ts_ms = card_timestamp_ms(ts) if is_card else int(ts)
        assert ts_ms is not None
        now = now_dt.timestamp()
        burst = abs(now * 1000 - ts_ms) <= SAME_MOMENT_MS
        if not self.replays.admit((tenant.key, ts, sign), body_digest(raw),
                                  expires_at=(ts_ms + SIGNATURE_WINDOW_MS) / 1000, now=now) and not burst:
            log.warning("dingtalk %s: refused an HTTP callback reusing the timestamp and signature of another",
                        tenant.key)
            return web.json_response({"error": "timestamp and sign already used for another message"}, status=409)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            log.warning("dingtalk %s: refused an HTTP callback that is not JSON", tenant.key)
            return web.json_response({"error": "body is not JSON"}, status=400)
        if is_card:
            code = await self.accept_card(tenant, data)
        elif isinstance(data, dict) and "outTrackId" in data:
            # A press signed as a robot message: card presses carry the x-ddpaas headers.
            log.warning("dingtalk %s: refused a card press without x-ddpaas-signature", tenant.key)
            return web.json_response({"error": "signature"}, status=401)
        else:
            code = await self.accept_robot(tenant, data)
        if code == AckMessage.STATUS_OK:
            # The press is answered at once with no card change: the update follows from the
            # outbox through PUT /v1.0/card/instances, never from inside the callback.
            return web.json_response({})
        return web.json_response({"error": "refused" if code < 500 else "try again"}, status=code)

    async def register_card_callback(self, tenant: TenantConfig, public_base_url: str) -> str:
        """Register where HTTP-mode card presses go; returns the registered URL."""
        url = card_callback_url(tenant, public_base_url)
        await self.api(tenant).register_card_callback(card_route_key(tenant), url)
        return url

    # -- outbound --------------------------------------------------------------------------
    async def download(self, tenant: TenantConfig, ref: dict[str, str], max_bytes: int) -> Download:
        """A picture or file a person sent the robot: its downloadCode → a downloadUrl → the bytes."""
        code = str(ref.get("download_code", ""))
        if not code:
            return Download(problem="gone", detail="no downloadCode")
        api = self.api(tenant)
        try:
            url = await api.message_file_url(code)
            content, ctype, status = await api.fetch(url, max_bytes)
        except DingTalkApiError as exc:
            if exc.permanent and 400 <= exc.status < 500:
                return Download(problem="gone", detail=str(exc)[:200])
            return Download(problem="failed", detail=str(exc)[:200], retry_after=exc.retry_after)
        if status == 413:
            return Download(problem="too_big", detail=f"over {max_bytes} bytes")
        if status != 200:
            return Download(problem="gone" if 400 <= status < 500 else "failed", detail=f"downloadUrl HTTP {status}",
                            retry_after=None if 400 <= status < 500 else 5.0)
        return Download(content, "", ctype)

    async def send(self, tenant: TenantConfig, userid: str, message: Message) -> SendResult:
        return (await self.send_batch(tenant, [OutboundItem(id=0, userid=userid, message=message)]))[0]

    async def send_batch(self, tenant: TenantConfig, items: list[OutboundItem]) -> dict[int, SendResult]:
        api = self.api(tenant)
        results: dict[int, SendResult] = {}
        jobs: list[Awaitable[None]] = []
        plain: dict[tuple[str, str], list[OutboundItem]] = defaultdict(list)
        files: dict[tuple[str, str, str], list[OutboundItem]] = defaultdict(list)
        assert tenant.dingtalk is not None
        template = tenant.dingtalk.card_template_id
        for item in items:
            m = item.message
            if m.card is not None and m.kind in ("card", "card_update") and not _fits_template(m, template):
                # A shared card (the 09:30 prompt) goes by batchSend, 20 people a call:
                # interactive cards go one person at a time, too slow at 20 QPS for a
                # whole company. Without a template every card goes this way. Its buttons
                # become the words to type.
                m = render.card_markdown(m, tenant.locale)
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
            invalid, flow, filtered = set(res.invalid), set(res.flow_controlled), set(res.filtered)
            for i in chunk:
                if i.userid in invalid:
                    results[i.id] = SendResult(ok=False, error=f"invalid staff id {i.userid}", permanent=True)
                elif i.userid in filtered:
                    # Why DingTalk filters someone is not documented [?]; resending the same message
                    # is not known to help, so it is dead-lettered where the operator sees it.
                    results[i.id] = SendResult(ok=False, error=f"filtered by DingTalk: {i.userid}", permanent=True)
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
        content: bytes | None = None
        if kind == "file" and render.file_type(filename) not in render.SAMPLE_FILE_TYPES:
            # sampleFile takes only documented types (xlsx, pdf, zip, rar, doc, docx): a CSV export
            # or an HTML brief goes inside a zip of the same name.
            content = await asyncio.to_thread(_zipped, path, filename)
            filename = f"{Path(filename).stem or 'file'}.zip"
        try:
            media_id = await api.upload_media(path, filename, "image" if kind == "image" else "file", content=content)
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
        out_track_id = card.id or f"dx_outbox_{item.id}"
        params = render.card_params(card)
        try:
            if item.message.kind == "card_update":
                await api.update_card(out_track_id, params)
            else:
                route = card_route_key(tenant) if tenant.dingtalk.mode == "http" else ""
                await api.create_and_deliver_card(item.userid, out_track_id, tenant.dingtalk.card_template_id,
                                                  params, callback_route_key=route)
            results[item.id] = SendResult(ok=True, ref=out_track_id)
        except DingTalkApiError as exc:
            if item.message.kind == "card" and exc.code == "param.outTrackIdExist":
                # An earlier attempt whose answer was lost made it: the card is there [?: code].
                results[item.id] = SendResult(ok=True, ref=out_track_id)
            elif item.message.kind == "card_update" and exc.permanent:
                # The card cannot be changed (gone, or sent as markdown before a template was set):
                # the person is told the outcome in a message instead, so it is not lost.
                log.info("dingtalk %s: card %s cannot be updated (%s); telling %s in a message", tenant.key,
                         out_track_id, exc.code, item.userid)
                key, param = render.robot_message(render.card_markdown(item.message, tenant.locale))
                await self._batch(api, key, param, [item], results)
            else:
                results[item.id] = _failed(exc)


def _zipped(path: str, filename: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, arcname=filename)
    return buf.getvalue()


def card_callback_url(tenant: TenantConfig, public_base_url: str) -> str:
    """Where DingTalk posts this tenant's HTTP-mode card presses (signed, so no secret in the URL)."""
    return f"{public_base_url.rstrip('/')}/dingtalk/{tenant.key}/callback"


def _fits_template(message: Message, template: str) -> bool:
    """Whether a card goes as a card instance: a template is configured and the card fits its slots."""
    card = message.card
    if card is None or card.broadcast or not template:
        return False
    try:
        render.card_params(card)
    except render.CardTooBig as exc:
        log.warning("dingtalk: %s; sent as markdown", exc)
        return False
    return True


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
