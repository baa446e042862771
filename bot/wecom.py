"""The WeCom (企业微信) self-built app adapter: callbacks in, messages out.

Inbound: `/wecom/{tenant_key}/callback` answers the GET URL check and takes POSTed
encrypted messages. Each is verified, decrypted, turned into an Event and stored in
the inbox before WeCom gets its empty 200, so a crash never loses an accepted
message and WeCom's retries of it are refused by the inbox's unique key.

Outbound: the relay hands over batches; identical texts go out in one call to up to
1000 people. Every send uses WeCom's duplicate check, and a send whose outcome is
unknown (dropped connection, timeout) is retried later with byte-identical JSON so
WeCom drops the copy instead of showing it twice.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import mimetypes
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp import web

from bot.adapter import Adapter, Download, OutboundItem, SendResult
from bot.core.clock import utcnow
from bot.core.config import TenantConfig
from bot.core.events import Event
from bot.replay import ReplayGuard, body_digest
from bot.wecom_api import MediaTooBig, WeComAPI, WeComError, WeComTransportError, jitter
from bot.wecom_approval import SOURCE, incoming as approval_incoming, parse_approval_change
from bot.wecom_reconcile import approval_templates, stored_by_sweep, sweep as sweep_approvals
from bot.wecom_crypto import MAX_BODY_BYTES, CallbackQuery, CallbackRejected, WeComCrypto
from cards.model import Card, Message
from cards.wecom import (CardRenderError, TEXT_MAX_BYTES, clip_bytes, is_interactive, render_card_update,
                         render_message, render_template_card, render_text, truncated_mark)
from handlers.trace_rules import TraceSettings
from store import issued_cards, send_memory
from store.external_events import ingest

log = logging.getLogger(__name__)
# message/update_template_card: the response_code is invalid, used or expired (WWdoc 90313).
RESPONSE_CODE_USED = 60140

MAX_RECIPIENTS = 1000
# Long enough to cover the relay's retries of one message, short enough that a
# person asking the same thing twice in a day still gets both answers.
DUPLICATE_CHECK_INTERVAL = 1800
MEMBER_PER_MINUTE = 30
MEMBER_PER_HOUR = 1000
FILE_MAX_BYTES = 20 * 1024 * 1024
IMAGE_MAX_BYTES = 10 * 1024 * 1024
MEDIA_REUSE_SECONDS = 2 * 24 * 3600  # temporary media live 3 days
# The characters of the suffix that keeps a new reply apart from an equal recent one (invisible in
# WeCom). Chosen from the outbox id, so a retry of the same row is byte-identical (WeCom drops it)
# while another row with the same text is not swallowed by the duplicate check.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060"
# Old rows of the shared send memory are dropped this often (seconds).
MEMORY_GC_SECONDS = 600.0
PERMANENT_RESULT_ERRORS = ("invaliduser", "unlicenseduser")


@dataclass
class _Pending:
    body: str  # the exact JSON sent, to be sent again byte for byte
    since: float


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()


def _suffix(anchor: int, n: int) -> str:
    """Invisible characters spelling `anchor` (an outbox id) in base 4, plus n-1 for a further try."""
    digits, v = [], abs(anchor) % 4 ** 6
    for _ in range(6):
        digits.append(ZERO_WIDTH[v % 4])
        v //= 4
    return "".join(digits) + ZERO_WIDTH[0] * (n - 1)


def _split(value: Any) -> set[str]:
    if not isinstance(value, str) or not value:
        return set()
    return {v.strip().lower() for v in value.split("|") if v.strip()}


def event_from_xml(tenant_key: str, msg: dict[str, Any]) -> Event | None:
    """Map a decrypted callback to an Event; None for kinds the bot does not handle."""
    mtype = str(msg.get("MsgType", "")).strip()
    userid = str(msg.get("FromUserName", "")).strip()
    created = str(msg.get("CreateTime", "")).strip()
    if not userid:
        raise CallbackRejected(400, "callback without FromUserName")
    base = dict(tenant=tenant_key, platform="wecom", userid=userid)
    if mtype == "text":
        content = str(msg.get("Content", ""))
        msgid = str(msg.get("MsgId", "")).strip()
        key = msgid or f"{userid}:{created}:{hashlib.sha1(content.encode()).hexdigest()[:16]}"
        return Event(kind="text", text=content, dedup_key="msg:" + key, **base)
    if mtype == "image":
        # An image a person sent the app (WWdoc 90239: PicUrl, MediaId valid 3 days, MsgId). The app's
        # receive list has no file message (text, image, voice, video, location, link): files come
        # another way (the upload link, an approval's attachment).
        media_id = str(msg.get("MediaId", "")).strip()
        msgid = str(msg.get("MsgId", "")).strip()
        if not media_id:
            raise CallbackRejected(400, "image message without MediaId")
        return Event(kind="file", values={"ref": {"media_id": media_id}, "type": "image", "filename": ""},
                     dedup_key="msg:" + (msgid or f"{userid}:{created}:{media_id[:40]}"), **base)
    if mtype != "event":
        return None
    name = str(msg.get("Event", "")).strip()
    if name == "template_card_event":
        task_id = str(msg.get("TaskId", "")).strip()
        card_id = task_id.split(BROADCAST_SEP, 1)[0]  # a shared card's per-call suffix
        key = str(msg.get("EventKey", "")).strip()
        selected = msg.get("SelectedItems")
        hint = {"response_code": str(msg.get("ResponseCode", "")).strip()} if msg.get("ResponseCode") else {}
        if task_id != card_id:
            hint["task_id"] = task_id  # the update must name the task_id this copy was sent with
        return Event(kind="action", card_id=card_id, action_key=key,
                     values=selected if isinstance(selected, dict) else {}, hint=hint,
                     dedup_key=f"card:{userid}:{created}:{task_id}:{key}", **base)
    if name == "click":
        key = str(msg.get("EventKey", "")).strip()
        return Event(kind="menu", action_key=key, dedup_key=f"menu:{userid}:{created}:{key}", **base)
    if name == "enter_agent":
        return Event(kind="enter", dedup_key=f"enter:{userid}:{created}", **base)
    return None


# Separates a card's id from the per-call suffix in its WeCom task_id
# (task_id allows [0-9a-zA-Z_-@]; our card ids are hex after a letter).
BROADCAST_SEP = "_"
_task_seq = itertools.count(1)


def fresh_task_id(card_task_id: str, item_id: int) -> str:
    """A task_id no call has used: WeCom answers a reused one with errcode 0 and delivers nothing [O].

    Unique by construction: the outbox row (claimed by one process at a time), the time in
    nanoseconds and this process's sequence. ≤128 bytes of [0-9A-Za-z_-@] as task_id must be.
    A replay of an unsure call resends its remembered body, task_id included: that is the same
    call, which WeCom's duplicate check answers without delivering twice.
    """
    suffix = f"{item_id}-{time.time_ns():x}-{next(_task_seq):x}"
    return f"{card_task_id[:128 - len(suffix) - 1]}{BROADCAST_SEP}{suffix}"


class WeComAdapter(Adapter):
    platform = "wecom"

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        self._session: aiohttp.ClientSession | None = None
        self._apis: dict[str, WeComAPI] = {}
        self._cryptos: dict[str, WeComCrypto] = {}
        # Tuning for tests and private deployments: passed to each WeComAPI.
        self.api_options: dict[str, Any] = {}
        self.send_concurrency = 8
        self._monotonic: Callable[[], float] = time.monotonic
        # (outbox id, step) → the body whose outcome is unknown; step is main/caption/fallback.
        self._pending: dict[tuple[int, str], _Pending] = {}
        # Bodies being sent right now by this process (not yet visible to the others through the database).
        self._inflight: set[str] = set()
        # Wall-clock time for the shared send memory (rows every instance reads); tests may shift it.
        self._wall: Callable[[], datetime] = utcnow
        self._memory_gc_at = 0.0
        self._media: dict[tuple[str, str, int, int], tuple[str, float]] = {}
        self._captioned: set[int] = set()
        self._updates_tried: set[int] = set()
        self._used_codes: set[str] = set()
        # (tenant, userid, card id) → the task_id its latest copy went out with; a restart falls
        # back to the one kept with the issued card (store/issued_cards.py).
        self._task_ids: dict[tuple[str, str, str], str] = {}
        # Ids of direct sends (not outbox rows): negative, and apart from other processes' (they key the
        # shared duplicate-check memory), far from fan-out recipients' -(row id * 1000 + i).
        self._local_ids = -(2 ** 55) - secrets.randbits(52)
        self.replays = ReplayGuard()
        # The nightly job (schedules/trace.py) sweeps WeCom 审批 for callbacks that never came through us.
        job_env = getattr(runtime, "job_env", None)
        if job_env is not None:
            job_env.sweeps[SOURCE] = self.sweep_approvals

    async def sweep_approvals(self, tenant: TenantConfig, start: datetime, end: datetime, now: datetime) -> int:
        """Store the approval changes of [start, end] whose callbacks never came; how many were new."""
        if tenant.wecom is None:
            return 0
        report = await sweep_approvals(self.runtime.db, tenant.key, self.api(tenant),
                                       approval_templates(tenant), start, end, now)
        if report.added:
            self.runtime.wake_inbox()
        return report.added

    # -- lifecycle -------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/wecom/{tenant_key}/callback", self.handle_verify)
        app.router.add_post("/wecom/{tenant_key}/callback", self.handle_callback)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15, connect=5))
            self._apis.clear()
        return self._session

    async def start(self) -> None:
        self.session()

    async def stop(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        self._apis.clear()

    def api(self, tenant: TenantConfig) -> WeComAPI:
        if tenant.wecom is None:
            raise ValueError(f"tenant {tenant.key!r} has no [tenants.wecom] section")
        session = self.session()
        api = self._apis.get(tenant.key)
        if api is None:
            api = WeComAPI(tenant.wecom, session, **self.api_options)
            self._apis[tenant.key] = api
        return api

    async def download(self, tenant: TenantConfig, ref: dict[str, str], max_bytes: int) -> Download:
        """An image a person sent: media/get with its MediaId (valid 3 days; 40007 once it is not)."""
        media_id = str(ref.get("media_id", ""))
        if not media_id:
            return Download(problem="gone", detail="no media_id")
        try:
            content, filename, ctype = await self.api(tenant).download_media(media_id, max_bytes)
        except MediaTooBig as exc:
            return Download(problem="too_big", detail=f"{exc.size} bytes > {max_bytes}")
        except WeComError as exc:
            if exc.errcode == 40007:
                return Download(problem="gone", detail="40007 invalid media_id")
            return Download(problem="failed", detail=f"{exc.errcode} {exc.errmsg}"[:200],
                            retry_after=exc.retry_after if exc.retry_after is not None else None)
        except WeComTransportError as exc:
            return Download(problem="failed", detail=str(exc)[:200], retry_after=exc.retry_after)
        return Download(content, filename, ctype)

    def _crypto(self, tenant: TenantConfig) -> WeComCrypto:
        assert tenant.wecom is not None
        crypto = self._cryptos.get(tenant.key)
        if crypto is None:
            try:
                crypto = WeComCrypto(tenant.wecom.token, tenant.wecom.encoding_aes_key, tenant.wecom.corp_id)
            except ValueError as exc:
                raise CallbackRejected(500, f"tenant {tenant.key}: {exc}") from None
            self._cryptos[tenant.key] = crypto
        return crypto

    # -- inbound -----------------------------------------------------------------------
    def _tenant(self, request: web.Request) -> TenantConfig:
        tenant = self.runtime.tenant(request.match_info["tenant_key"])
        if tenant is None or tenant.wecom is None:
            raise CallbackRejected(404, "no WeCom tenant at this URL")
        return tenant

    @staticmethod
    def _query(request: web.Request) -> CallbackQuery:
        q = request.query
        # base64 never holds a space: a '+' that reached us unencoded was decoded to one.
        return CallbackQuery(q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""),
                             q.get("echostr", "").replace(" ", "+"))

    def _refuse(self, request: web.Request, exc: CallbackRejected) -> web.Response:
        self.runtime.stats["wecom_callbacks_refused"] += 1
        log.warning("WeCom callback %s %s refused: %s", request.method, request.path, exc.reason)
        return web.Response(status=exc.status, text=exc.reason)

    async def handle_verify(self, request: web.Request) -> web.Response:
        """GET: the URL check when the callback is configured; answer the bare plaintext."""
        try:
            tenant = self._tenant(request)
            assert tenant.wecom is not None
            plain = self._crypto(tenant).verify_url(self._query(request), self.runtime.clock.now(),
                                                    tenant.wecom.replay_window_seconds)
        except CallbackRejected as exc:
            return self._refuse(request, exc)
        return web.Response(body=plain.encode("utf-8"), content_type="text/plain")

    async def _read_capped(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise CallbackRejected(413, "body too large")
        # Whole, not streamed: the app's read-timeout middleware may have read it already;
        # read() stops at the app's client_max_size, so this cap is checked after at most that.
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise CallbackRejected(413, "body too large") from None
        if len(body) > MAX_BODY_BYTES:
            raise CallbackRejected(413, "body too large")
        return body

    async def handle_callback(self, request: web.Request) -> web.Response:
        """POST: verify, decrypt, store, then answer 200 with an empty body."""
        try:
            tenant = self._tenant(request)
            assert tenant.wecom is not None
            body = await self._read_capped(request)
            query = self._query(request)
            now = self.runtime.clock.now()
            msg, signed = self._crypto(tenant).open_callback(body, query, now, tenant.wecom.replay_window_seconds)
            # A WeCom retry repeats timestamp, nonce and Encrypt; the same pair on another Encrypt is a replay.
            # Keyed on what the signature covers, not the whole body: an altered (unsigned) wrapper sent
            # first must not make the genuine callback look like a replay.
            if not self.replays.admit((tenant.key, query.timestamp, query.nonce), body_digest(signed.encode()),
                                      expires_at=int(query.timestamp) + tenant.wecom.replay_window_seconds,
                                      now=now.timestamp()):
                raise CallbackRejected(403, "nonce already used for another message")
            agent = str(msg.get("AgentID", "")).strip()
            if agent and agent != str(tenant.wecom.agent_id):
                log.warning("WeCom callback for tenant %s names agent %s, configured is %s; ignored",
                            tenant.key, agent, tenant.wecom.agent_id)
                return web.Response(status=200)
            if str(msg.get("Event", "")).strip() == "sys_approval_change":
                info = parse_approval_change(self._crypto(tenant).decrypt(signed))
                return await self._approval(tenant, info, now)
            event = event_from_xml(tenant.key, msg)
        except CallbackRejected as exc:
            return self._refuse(request, exc)
        if event is None:
            log.info("WeCom callback of kind %s/%s for tenant %s ignored", msg.get("MsgType"),
                     msg.get("Event", ""), tenant.key)
            return web.Response(status=200)
        # A failure here answers 500, so WeCom retries instead of us losing the event.
        await self.runtime.accept(event)
        return web.Response(status=200)

    async def _approval(self, tenant: TenantConfig, info: dict[str, Any], now: datetime) -> web.Response:
        """Fetch the form (oa/getapprovaldetail), store the event, then answer: a failure answers 500 and
        WeCom delivers again, so nothing is acknowledged that was not stored."""
        if info["template_id"] not in TraceSettings.of(tenant).codes(SOURCE):
            detail = None  # no rule reads this template's form: 留痕 needs none of it
        else:
            try:
                detail = await self.api(tenant).approval_detail(info["sp_no"])
            except (WeComError, WeComTransportError) as exc:
                log.warning("WeCom approval %s of %s: detail not fetched (%s); WeCom will deliver again",
                            info["sp_no"], tenant.key, exc)
                return web.Response(status=500, text="approval detail unavailable")
        if await stored_by_sweep(self.runtime.db, tenant.key, info):
            return web.Response(status=200)  # the nightly sweep stored this state before its callback came
        if await ingest(self.runtime.db, tenant.key, approval_incoming(info, detail), now):
            self.runtime.wake_inbox()
        return web.Response(status=200)

    # -- outbound ----------------------------------------------------------------------
    async def send(self, tenant: TenantConfig, userid: str, message: Message) -> SendResult:
        self._local_ids -= 1  # negative ids never collide with outbox rows
        item = OutboundItem(id=self._local_ids, userid=userid, message=message)
        return (await self.send_batch(tenant, [item]))[item.id]

    async def _waits(self, tenant: TenantConfig, userids: list[str]) -> dict[str, float]:
        """Seconds each person must wait: WeCom silently drops messages over its per-member limits.

        Counted from the shared send memory, so every instance and every restart agree.
        """
        now = self._wall()
        sent = await send_memory.member_sends(self.runtime.db, tenant.key, "wecom", userids, now, 3600.0)
        waits: dict[str, float] = {}
        for uid in {u.lower() for u in userids}:
            times = sent.get(uid, [])
            recent = [t for t in times if t > now - timedelta(seconds=60)]
            wait = 0.0
            if len(recent) >= MEMBER_PER_MINUTE:
                wait = (recent[-MEMBER_PER_MINUTE] + timedelta(seconds=60) - now).total_seconds()
            if len(times) >= MEMBER_PER_HOUR:
                wait = max(wait, (times[-MEMBER_PER_HOUR] + timedelta(seconds=3600) - now).total_seconds())
            waits[uid] = max(wait, 0.01) if wait else 0.0
        return waits

    def _gc(self) -> None:
        now = self._monotonic()
        horizon = DUPLICATE_CHECK_INTERVAL - 120
        for i, p in list(self._pending.items()):
            if now - p.since > horizon:
                del self._pending[i]  # beyond WeCom's duplicate window: a fresh send is no riskier
        if len(self._used_codes) > 100_000:  # codes live 72 h; WeCom refuses stale ones anyway
            self._used_codes.clear()
        if len(self._media) > 10_000:
            self._media.clear()

    async def send_batch(self, tenant: TenantConfig, items: list[OutboundItem]) -> dict[int, SendResult]:
        """Send in waves: a person's n-th message goes out only after their (n-1)-th.

        Within a wave nobody appears twice, so batching identical texts never
        reorders one person's conversation; a person whose message must be retried
        gets the rest of theirs deferred too, so a retry does not overtake them.
        """
        if tenant.wecom is None:
            return {i.id: SendResult(ok=False, error="tenant has no WeCom config", permanent=True) for i in items}
        self._gc()
        if self._monotonic() >= self._memory_gc_at:
            self._memory_gc_at = self._monotonic() + MEMORY_GC_SECONDS
            try:
                await send_memory.forget_before(self.runtime.db, self._wall() - timedelta(
                    seconds=max(DUPLICATE_CHECK_INTERVAL, 3600) + 60))
            except Exception as exc:  # housekeeping: the next batch tries again
                log.warning("could not drop old send memory (%s)", type(exc).__name__)
        api = self.api(tenant)
        waves: list[list[OutboundItem]] = []
        position: dict[str, int] = {}
        for item in items:
            n = position.get(item.userid.lower(), 0)
            position[item.userid.lower()] = n + 1
            if n == len(waves):
                waves.append([])
            waves[n].append(item)
        results: dict[int, SendResult] = {}
        blocked: dict[str, float] = {}
        for wave in waves:
            todo = []
            for item in wave:
                wait = blocked.get(item.userid.lower())
                if wait is not None:
                    results[item.id] = SendResult(ok=False, error="an earlier message to this person is pending",
                                                  retry_after=wait)
                else:
                    todo.append(item)
            done = await self._send_wave(tenant, api, todo)
            results.update(done)
            for item in todo:
                res = done[item.id]
                if not res.ok and not res.permanent:
                    blocked[item.userid.lower()] = (res.retry_after or 1.0) + 0.5
        return results

    async def _send_wave(self, tenant: TenantConfig, api: WeComAPI, items: list[OutboundItem]) -> dict[int, SendResult]:
        results: dict[int, SendResult] = {}
        replays: dict[str, list[OutboundItem]] = {}
        merge: dict[str, list[OutboundItem]] = {}
        singles: list[OutboundItem] = []
        rendered: dict[int, tuple[dict[str, Any], str]] = {}
        for item in items:
            pending = self._pending.get((item.id, "main")) if item.message.kind in ("text", "markdown", "card") else None
            if pending is not None:
                replays.setdefault(pending.body, []).append(item)
                continue
            if item.message.kind in ("text", "markdown", "card"):
                # The people of one fan-out row share one Message object: render it once,
                # not 1000 times.
                known = rendered.get(id(item.message))
                if known is None:
                    try:
                        content = render_message(item.message, tenant.locale)
                    except CardRenderError as exc:
                        results[item.id] = SendResult(ok=False, error=f"cannot render: {exc}", permanent=True)
                        continue
                    known = rendered[id(item.message)] = (content, _canonical(content))
                content, canonical = known
                card = item.message.card
                if content["msgtype"] in ("text", "markdown") or (card is not None and card.broadcast):
                    merge.setdefault(canonical, []).append(item)
                    continue
            singles.append(item)

        jobs: list[Awaitable[dict[int, SendResult]]] = []
        for body_json, group in replays.items():
            jobs.append(self._replay(tenant, api, body_json, group))
        for content_json, group in merge.items():
            for chunk in self._chunks(group):
                jobs.append(self._send_merged(tenant, api, json.loads(content_json), chunk))
        for item in singles:
            jobs.append(self._send_single(tenant, api, item))

        sem = asyncio.Semaphore(self.send_concurrency)

        async def run(job: Awaitable[dict[int, SendResult]]) -> dict[int, SendResult]:
            async with sem:
                return await job

        for part in await asyncio.gather(*(run(j) for j in jobs)):
            results.update(part)
        return results

    @staticmethod
    def _chunks(group: list[OutboundItem]) -> list[list[OutboundItem]]:
        """Up to 1000 distinct people a call; a second identical message to one person goes in a later call."""
        chunks: list[list[OutboundItem]] = []
        seen: list[set[str]] = []
        for item in group:
            uid = item.userid.lower()
            for chunk, users in zip(chunks, seen):
                if uid not in users and len(chunk) < MAX_RECIPIENTS:
                    chunk.append(item)
                    users.add(uid)
                    break
            else:
                chunks.append([item])
                seen.append({uid})
        return chunks

    async def _admit(self, tenant: TenantConfig, items: list[OutboundItem],
                     results: dict[int, SendResult]) -> list[OutboundItem]:
        admitted = []
        waits = await self._waits(tenant, [i.userid for i in items])
        for item in items:
            wait = waits.get(item.userid.lower(), 0.0)
            if wait:
                results[item.id] = SendResult(ok=False, error="per-member message limit reached",
                                              retry_after=wait + jitter(2.0))
            else:
                admitted.append(item)
        return admitted

    async def _unique(self, tenant: TenantConfig, body: dict[str, Any], items: list[OutboundItem],
                      step: str) -> dict[str, Any]:
        """The body to send: as is, or with a suffix from the outbox id if an equal one went out lately.

        A body this item (same first item and step) already sent is chosen again unchanged, so a
        retry after a lost answer or a failed "mark sent" is byte-identical and WeCom drops the
        copy; a body someone else sent within the duplicate-check interval is avoided.
        """
        kind = body.get("msgtype")
        if kind not in ("text", "markdown"):
            return body
        original = body[kind]["content"]
        anchor = items[0].id
        candidates = [body]
        for n in range(1, 4):
            tail = _suffix(anchor, n)
            candidates.append({**body, kind: {"content": clip_bytes(original, TEXT_MAX_BYTES - 3 * len(tail),
                                                                   truncated_mark(tenant.locale)) + tail}})
        digests = [_digest(c) for c in candidates]
        owners = await send_memory.body_owners(self.runtime.db, tenant.key, digests, self._wall(),
                                               DUPLICATE_CHECK_INTERVAL)
        for c, d in zip(candidates, digests):
            if (anchor, step) in owners.get(d, set()):
                return c  # what this item sent before: the same bytes again
        for c, d in zip(candidates, digests):
            if not owners.get(d) and d not in self._inflight:
                return c
        return candidates[-1]

    async def _send_merged(self, tenant: TenantConfig, api: WeComAPI, content: dict[str, Any],
                           chunk: list[OutboundItem]) -> dict[int, SendResult]:
        results: dict[int, SendResult] = {}
        admitted = await self._admit(tenant, chunk, results)
        if not admitted:
            return results
        assert tenant.wecom is not None
        body = {"touser": "|".join(i.userid for i in admitted), "agentid": tenant.wecom.agent_id,
                **content, "enable_duplicate_check": 1, "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL}
        if body.get("msgtype") == "template_card":
            # A shared card goes out in many calls, and WeCom wants a new task_id for each;
            # presses come back with it, and event_from_xml strips the suffix again.
            card = dict(body["template_card"])
            card["task_id"] = fresh_task_id(card["task_id"], admitted[0].id)
            body["template_card"] = card
        results.update(await self._deliver(tenant, api, await self._unique(tenant, body, admitted, "main"), admitted))
        return results

    async def _replay(self, tenant: TenantConfig, api: WeComAPI, body_json: str,
                      items: list[OutboundItem]) -> dict[int, SendResult]:
        results: dict[int, SendResult] = {}
        admitted = await self._admit(tenant, items, results)
        if admitted:
            results.update(await self._deliver(tenant, api, json.loads(body_json), admitted))
        return results

    async def _deliver(self, tenant: TenantConfig, api: WeComAPI, body: dict[str, Any],
                       items: list[OutboundItem], *, step: str = "main") -> dict[int, SendResult]:
        """One message/send call for `items`; per-person results; remember the body when unsure."""
        body_json = _canonical(body)
        digest = _digest(body)
        try:
            # Written before the call: the others must see the body and the counts even if we die mid-call.
            await send_memory.record_send(self.runtime.db, tenant.key, "wecom", item=items[0].id, step=step,
                                          digest=digest, userids=[i.userid for i in items], now=self._wall())
        except Exception as exc:
            log.warning("send memory unavailable (%s); %d message(s) wait", type(exc).__name__, len(items))
            return {i.id: SendResult(ok=False, error=f"send memory unavailable: {type(exc).__name__}",
                                     retry_after=5) for i in items}
        self._inflight.add(digest)
        try:
            data = await api.send_message(body)
        except WeComError as exc:
            if exc.errcode == 81013:
                return {i.id: SendResult(ok=False, error="recipient not in the app's scope (81013)", permanent=True)
                        for i in items}
            if exc.retry_after is None:
                return {i.id: SendResult(ok=False, error=str(exc), permanent=True) for i in items}
            self._remember(items, body_json, step)
            return {i.id: SendResult(ok=False, error=str(exc), retry_after=exc.retry_after) for i in items}
        except WeComTransportError as exc:
            self._remember(items, body_json, step)
            return {i.id: SendResult(ok=False, error=str(exc), retry_after=exc.retry_after) for i in items}
        finally:
            self._inflight.discard(digest)
        invalid = _split(data.get("invaliduser"))
        unlicensed = _split(data.get("unlicenseduser"))
        ref = str(data.get("msgid", ""))
        if body.get("msgtype") == "template_card" and len(items) == 1:
            sent_id = str(body["template_card"].get("task_id", ""))
            self._task_ids[(tenant.key, items[0].userid, sent_id.split(BROADCAST_SEP, 1)[0])] = sent_id
            if data.get("response_code"):
                # Kept with the issued card: a later card_update greys it out without a press.
                await self._keep_code(tenant, items[0].userid, sent_id, str(data["response_code"]))
        out: dict[int, SendResult] = {}
        for item in items:
            self._pending.pop((item.id, step), None)
            uid = item.userid.lower()
            if uid in invalid or uid in unlicensed:
                why = "invaliduser" if uid in invalid else "unlicenseduser"
                out[item.id] = SendResult(ok=False, error=f"WeCom refused the recipient ({why})", permanent=True)
            else:
                out[item.id] = SendResult(ok=True, ref=ref)
        return out

    def _remember(self, items: list[OutboundItem], body_json: str, step: str) -> None:
        now = self._monotonic()
        for item in items:
            self._pending.setdefault((item.id, step), _Pending(body_json, now))

    async def _send_single(self, tenant: TenantConfig, api: WeComAPI, item: OutboundItem) -> dict[int, SendResult]:
        results: dict[int, SendResult] = {}
        kind = item.message.kind
        # A card update is not a new message, so it does not wait for the per-member budget.
        if kind != "card_update" and not await self._admit(tenant, [item], results):
            return results
        try:
            if kind == "card":
                pending = self._pending.get((item.id, "main"))
                if pending is not None:
                    return await self._deliver(tenant, api, json.loads(pending.body), [item])
                content = render_message(item.message, tenant.locale)
                if content.get("msgtype") == "template_card":
                    content["template_card"]["task_id"] = fresh_task_id(content["template_card"]["task_id"], item.id)
                return await self._deliver(tenant, api, self._body(tenant, item, content), [item])
            if kind == "card_update":
                return {item.id: await self._update_card(tenant, api, item)}
            if kind in ("file", "image"):
                return {item.id: await self._send_file(tenant, api, item)}
        except CardRenderError as exc:
            return {item.id: SendResult(ok=False, error=f"cannot render: {exc}", permanent=True)}
        return {item.id: SendResult(ok=False, error=f"WeCom cannot send {kind!r} messages", permanent=True)}

    def _body(self, tenant: TenantConfig, item: OutboundItem, content: dict[str, Any]) -> dict[str, Any]:
        assert tenant.wecom is not None
        return {"touser": item.userid, "agentid": tenant.wecom.agent_id, **content,
                "enable_duplicate_check": 1, "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL}

    # -- card updates --------------------------------------------------------------------
    async def _keep_code(self, tenant: TenantConfig, userid: str, task_id: str, code: str) -> None:
        try:
            async with self.runtime.db.transaction() as s:
                await issued_cards.keep_response_code(s, tenant=tenant.key, card_id=task_id.split(BROADCAST_SEP, 1)[0],
                                                      userid=userid, code=code, task_id=task_id)
        except Exception as exc:  # the card went out; without its code it can still be answered by a press
            log.warning("card %s: response_code not kept (%s)", task_id, type(exc).__name__)

    async def _spend(self, tenant: TenantConfig, userid: str, card_id: str, code: str) -> None:
        """A code used, or refused as used or expired: never tried again here, nor by another process."""
        self._used_codes.add(code)
        try:
            async with self.runtime.db.transaction() as s:
                await issued_cards.spend_response_code(s, tenant=tenant.key, card_id=card_id, userid=userid, code=code)
        except Exception as exc:
            log.warning("card %s: spent response_code not recorded (%s)", card_id, type(exc).__name__)

    async def _send_time_code(self, tenant: TenantConfig, userid: str, card_id: str) -> tuple[str, str]:
        """(response_code, task_id) message/send returned for this card, if the code is still unused."""
        if not card_id:
            return "", ""
        async with self.runtime.db.session() as s:
            code, task_id = await issued_cards.response_code(s, tenant=tenant.key, card_id=card_id, userid=userid)
        return ("", "") if code in self._used_codes else (code, task_id)

    async def _update_card(self, tenant: TenantConfig, api: WeComAPI, item: OutboundItem) -> SendResult:
        card = item.message.card
        if card is None:
            return SendResult(ok=False, error="card_update without a card", permanent=True)
        code = str(item.message.hint.get("response_code", "") or "")
        # The update names the task_id this person's copy went out with (id + per-call suffix).
        task_id = str(item.message.hint.get("task_id", "") or "") or self._task_ids.get((tenant.key, item.userid, card.id), "")
        if not code or code in self._used_codes:
            code, sent_task_id = await self._send_time_code(tenant, item.userid, card.id)
            task_id = task_id or sent_task_id
        if not code or not is_interactive(card):
            return await self._fallback_text(tenant, api, item, card)
        assert tenant.wecom is not None
        body = render_card_update(card, userid=item.userid, agent_id=tenant.wecom.agent_id, response_code=code,
                                  locale=tenant.locale)
        if task_id:
            body["template_card"]["task_id"] = task_id
        try:
            await api.update_template_card(body)
        except WeComTransportError as exc:
            self._updates_tried.add(item.id)
            return SendResult(ok=False, error=str(exc), retry_after=exc.retry_after)
        except WeComError as exc:
            if exc.retry_after is not None:
                return SendResult(ok=False, error=str(exc), retry_after=exc.retry_after)
            await self._spend(tenant, item.userid, card.id, code)
            if item.id in self._updates_tried:
                # The earlier attempt whose answer we lost most likely used the code.
                self._updates_tried.discard(item.id)
                return SendResult(ok=True, ref="updated")
            if exc.errcode == RESPONSE_CODE_USED:
                # The code is used or expired: no retry can succeed. The person gets the card in
                # its new state as a fresh message (a new task_id), so the answer is still on a card.
                log.info("card %s: response_code used or expired (60140); sending it afresh to %s", card.id,
                         item.userid)
                return await self._fresh_card(tenant, api, item, card)
            log.info("card %s could not be updated (%s); telling %s in a message", card.id, exc.errcode,
                     item.userid)
            return await self._fallback_text(tenant, api, item, card)
        await self._spend(tenant, item.userid, card.id, code)
        self._updates_tried.discard(item.id)
        return SendResult(ok=True, ref="updated")

    async def _fresh_card(self, tenant: TenantConfig, api: WeComAPI, item: OutboundItem, card: Card) -> SendResult:
        pending = self._pending.get((item.id, "fresh"))
        if pending is not None:
            body = json.loads(pending.body)
        else:
            template = render_template_card(card, fresh=True, locale=tenant.locale)
            template["task_id"] = fresh_task_id(template["task_id"], item.id)
            body = self._body(tenant, item, {"msgtype": "template_card", "template_card": template})
        return (await self._deliver(tenant, api, body, [item], step="fresh"))[item.id]

    async def _fallback_text(self, tenant: TenantConfig, api: WeComAPI, item: OutboundItem, card: Card) -> SendResult:
        body = self._body(tenant, item, render_text(card.as_text(tenant.locale), tenant.locale))
        pending = self._pending.get((item.id, "fallback"))
        res = await self._deliver(tenant, api, json.loads(pending.body) if pending else await self._unique(tenant, body, [item], "fallback"), [item],
                                  step="fallback")
        return res[item.id]

    # -- files ---------------------------------------------------------------------------
    async def _send_file(self, tenant: TenantConfig, api: WeComAPI, item: OutboundItem) -> SendResult:
        msg = item.message
        if msg.text and item.id not in self._captioned:
            cap_pending = self._pending.get((item.id, "caption"))
            cap_body = (json.loads(cap_pending.body) if cap_pending
                        else await self._unique(tenant, self._body(tenant, item, render_text(msg.text, tenant.locale)), [item], "caption"))
            cap = await self._deliver(tenant, api, cap_body, [item], step="caption")
            if not cap[item.id].ok:
                return cap[item.id]
            self._captioned.add(item.id)
        pending = self._pending.get((item.id, "main"))
        if pending is not None:
            body = json.loads(pending.body)
        else:
            kind = "image" if msg.kind == "image" else "file"
            path = Path(msg.path)
            try:
                st = path.stat()
            except OSError:
                return SendResult(ok=False, error="the file to send is gone", permanent=True)
            limit = IMAGE_MAX_BYTES if kind == "image" else FILE_MAX_BYTES
            if st.st_size > limit or st.st_size < 5:
                return SendResult(ok=False, error=f"{kind} size {st.st_size} is outside WeCom's limits", permanent=True)
            key = (tenant.key, str(path.resolve()), st.st_size, st.st_mtime_ns)
            cached = self._media.get(key)
            if cached and self._monotonic() - cached[1] < MEDIA_REUSE_SECONDS:
                media_id = cached[0]
            else:
                content = await asyncio.to_thread(path.read_bytes)
                name = msg.filename or path.name
                ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
                try:
                    media_id = await api.upload_media(kind, name, content, ctype)
                except WeComTransportError as exc:
                    return SendResult(ok=False, error=str(exc), retry_after=exc.retry_after)
                except WeComError as exc:
                    return SendResult(ok=False, error=str(exc), retry_after=exc.retry_after,
                                      permanent=exc.retry_after is None)
                self._media[key] = (media_id, self._monotonic())
            body = self._body(tenant, item, {"msgtype": kind, kind: {"media_id": media_id}})
        res = (await self._deliver(tenant, api, body, [item]))[item.id]
        if res.ok:
            self._captioned.discard(item.id)
            # A later send of the same file must not repeat this exact body (WeCom would drop it).
            self._media = {k: v for k, v in self._media.items() if v[0] != body[body["msgtype"]]["media_id"]}
        return res
