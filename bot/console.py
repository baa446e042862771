"""The local console: a platform like WeCom and DingTalk, spoken over a small JSON API.

It is what `make run` shows, what tests drive, and how support reproduces a
conversation. It is off unless `[console] enabled`; bound beyond loopback it
requires the token (checked in constant time, never logged).
"""
from __future__ import annotations

import hmac
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import delete, select

from bot.adapter import Adapter, SendResult
from bot.core.clock import utcnow
from bot.core.config import TenantConfig
from bot.core.calendar import WorkCalendar, iso_week
from bot.core.events import Event
from bot.storable import MAX_JSON_DEPTH, MAX_QUERY_INT, UNSTORABLE, json_problem, storable
from cards.model import Message
from schedules.briefs import open_periods
from store.live import is_counted, live_from
from store.models import ConsoleMessage, Employee

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Dongxian-Token"
# The range a simulated clock (or a job's `at`) may be set in.
CLOCK_YEARS = (2000, 2100)


def token_ok(request: web.Request, token: str) -> bool:
    """Does the request carry the console token (header, bearer or ?token=)? Constant time."""
    if not token:
        return True
    given = request.headers.get(TOKEN_HEADER, "")
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        given = auth[7:]
    given = given or request.query.get("token", "")
    return hmac.compare_digest(given.encode(), token.encode())


def _bad(msg: str, status: int = 400) -> web.Response:
    return web.json_response({"error": msg}, status=status)


class ConsoleAdapter(Adapter):
    platform = "console"

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/console/api/users", self.users)
        r.add_post("/console/api/messages", self.post_message)
        r.add_post("/console/api/actions", self.post_action)
        r.add_get("/console/api/inbox", self.get_inbox)
        r.add_get("/console/api/files/{seq}", self.get_file)
        r.add_put("/console/api/clock", self.put_clock)
        r.add_delete("/console/api/clock", self.delete_clock)
        r.add_get("/console/api/clock", self.get_clock)
        r.add_get("/console/api/jobs", self.list_jobs)
        r.add_post("/console/api/jobs/{name}/run", self.run_job)
        r.add_get("/console/api/tenants", self.tenants)

    # -- auth and input ---------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        return token_ok(request, self.runtime.config.console.token)

    def _guard(self, request: web.Request) -> web.Response | None:
        if not self._authorized(request):
            return _bad("console token required", 401)
        return None

    async def _json(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            return _bad("body must be a JSON object")
        except RecursionError:
            return _bad(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        if (problem := json_problem(body)) is not None:
            return _bad(f"the body {problem}")
        if not storable(body):
            return _bad(f"the body {UNSTORABLE}")
        return body

    def _tenant(self, key: Any, *, chat: bool = False) -> TenantConfig | web.Response:
        if not isinstance(key, str) or not key:
            return _bad("tenant is required")
        tenant = self.runtime.tenant(key)
        if tenant is None:
            return _bad(f"unknown tenant {key!r}", 404)
        if chat and tenant.platform != "console":
            return _bad(f"tenant {key!r} talks over {tenant.platform}, not the console", 409)
        return tenant

    async def _known_user(self, tenant: TenantConfig, userid: Any) -> Employee | web.Response:
        if not isinstance(userid, str) or not userid:
            return _bad("userid is required")
        async with self.runtime.db.session() as s:
            emp = (await s.execute(select(Employee).where(
                Employee.tenant == tenant.key, Employee.userid == userid))).scalar_one_or_none()
        if emp is None:
            return _bad(f"no user {userid!r} in tenant {tenant.key!r}", 404)
        return emp

    # -- endpoints -------------------------------------------------------------
    async def tenants(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return web.json_response({"tenants": [
            {"key": t.key, "name": t.name, "platform": t.platform, "timezone": t.timezone, "locale": t.locale}
            for t in self.runtime.config.tenants]})

    async def users(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        tenant = self._tenant(request.query.get("tenant"))
        if isinstance(tenant, web.Response):
            return tenant
        async with self.runtime.db.session() as s:
            rows = (await s.execute(select(Employee).where(
                Employee.tenant == tenant.key, Employee.active.is_(True)).order_by(Employee.department, Employee.userid))).scalars()
            users = [{"userid": e.userid, "name": e.name, "department": e.department,
                      "roles": ["employee", *e.role_list], "pinyin": e.pinyin, "manager": e.manager_userid}
                     for e in rows]
        return web.json_response({"users": users})

    async def _chat_body(self, request: web.Request) -> tuple[dict[str, Any], TenantConfig] | web.Response:
        """The checked JSON body of a message or press, and its (console) tenant."""
        if (denied := self._guard(request)) is not None:
            return denied
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        tenant = self._tenant(body.get("tenant"), chat=True)
        if isinstance(tenant, web.Response):
            return tenant
        return body, tenant

    async def post_message(self, request: web.Request) -> web.Response:
        checked = await self._chat_body(request)
        if isinstance(checked, web.Response):
            return checked
        body, tenant = checked
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _bad("text is required")
        if len(text) > 2000:
            return _bad("text is longer than 2000 characters")
        user = await self._known_user(tenant, body.get("userid"))
        if isinstance(user, web.Response):
            return user
        client_id = body.get("client_id")
        dedup = f"msg:{user.userid}:{client_id}" if isinstance(client_id, str) and client_id else f"msg:{user.userid}:{utcnow().timestamp():.6f}"
        fresh = await self.runtime.accept(Event(tenant=tenant.key, platform="console", userid=user.userid,
                                                kind="text", text=text, dedup_key=dedup))
        return web.json_response({"accepted": fresh}, status=202)

    async def post_action(self, request: web.Request) -> web.Response:
        checked = await self._chat_body(request)
        if isinstance(checked, web.Response):
            return checked
        body, tenant = checked
        card_id, key, values = body.get("card_id"), body.get("key"), body.get("values", {})
        if not isinstance(card_id, str) or not card_id or not isinstance(key, str) or not key:
            return _bad("card_id and key are required")
        if not isinstance(values, dict):
            return _bad("values must be an object")
        user = await self._known_user(tenant, body.get("userid"))
        if isinstance(user, web.Response):
            return user
        # A double click is one press: the same person, card and button dedup to one event.
        fresh = await self.runtime.accept(Event(tenant=tenant.key, platform="console", userid=user.userid,
                                                kind="action", card_id=card_id, action_key=key, values=values,
                                                dedup_key=f"act:{user.userid}:{card_id}:{key}"))
        return web.json_response({"accepted": fresh}, status=202)

    async def get_inbox(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        tenant = self._tenant(request.query.get("tenant"))
        if isinstance(tenant, web.Response):
            return tenant
        userid = request.query.get("userid", "")
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return _bad("after must be a number")
        if not 0 <= after <= MAX_QUERY_INT:  # beyond BIGINT the database refuses the query (a 500)
            return _bad("after must be a number from 0 to 2^63-1")
        async with self.runtime.db.session() as s:
            rows = (await s.execute(select(ConsoleMessage).where(
                ConsoleMessage.tenant == tenant.key, ConsoleMessage.userid == userid,
                ConsoleMessage.seq > after).order_by(ConsoleMessage.seq).limit(500))).scalars()
            out = [self._render(r, tenant) for r in rows]
        return web.json_response({"messages": out})

    def _render(self, row: ConsoleMessage, tenant: TenantConfig) -> dict[str, Any]:
        item: dict[str, Any] = {"seq": row.seq, "kind": row.kind, "text": row.text,
                                "at": row.at.isoformat() if row.at else None}
        if row.kind == "card":
            card = row.body
            item["card"] = {"id": card.get("id", row.card_id), "title": card.get("title", ""),
                            "body": card.get("body", ""), "fields": card.get("fields", []),
                            "buttons": [] if card.get("result") else
                            [{"key": b["key"], "text": b["text"], "style": b.get("style", "default")} for b in card.get("buttons", [])],
                            "selects": card.get("selects", []), "submit": card.get("submit"),
                            "result": card.get("result", "")}
        if row.kind in ("file", "image"):
            item["file"] = {"name": row.body.get("filename", ""),
                            "url": f"/console/api/files/{row.seq}?tenant={tenant.key}&userid={row.userid}"}
        return item

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._guard(request)) is not None:
            return denied
        try:
            seq = int(request.match_info["seq"])
        except ValueError:
            return _bad("bad file id")
        if not 0 < seq <= MAX_QUERY_INT:
            return _bad("bad file id")
        async with self.runtime.db.session() as s:
            row = (await s.execute(select(ConsoleMessage).where(
                ConsoleMessage.seq == seq, ConsoleMessage.tenant == request.query.get("tenant", ""),
                ConsoleMessage.userid == request.query.get("userid", "")))).scalar_one_or_none()
        if row is None or row.kind not in ("file", "image"):
            return _bad("no such file", 404)
        path = Path(row.body.get("path", ""))
        if not path.is_file():
            return _bad("the file is no longer on the server", 410)
        return web.FileResponse(path, headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(row.body.get('filename', path.name))}"})

    # The clock panel moves console tenants' time only: WeCom and DingTalk verify callbacks against
    # real time (a moved clock put every real callback outside the replay window, and they were lost).
    def _clock_tenants(self, key: Any) -> list[TenantConfig] | web.Response:
        """The tenants a clock request is about: the one named, or every tenant it may move."""
        movable = self.runtime.config.console.simulate_platform_tenants
        if key not in (None, ""):
            tenant = self._tenant(key)
            if isinstance(tenant, web.Response):
                return tenant
            return [tenant]
        return [t for t in self.runtime.config.tenants if t.platform == "console" or movable]

    def _clock_view(self, tenants: list[TenantConfig]) -> web.Response:
        """The first tenant's time (they all share one when moved together) and which tenants it is."""
        key = tenants[0].key if tenants else ""
        now = self.runtime.now_for(key) if key else self.runtime.clock.now()
        simulated = self.runtime.simulated(key) if key else self.runtime.clock.simulated
        return web.json_response({"now": now.isoformat(), "simulated": simulated, "tenants": [t.key for t in tenants]})

    async def get_clock(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        tenants = self._clock_tenants(request.query.get("tenant"))
        if isinstance(tenants, web.Response):
            return tenants
        return self._clock_view(tenants)

    async def put_clock(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        when = _parse_time(body.get("now"))
        if isinstance(when, web.Response):
            return when
        tenants = self._clock_tenants(body.get("tenant"))
        if isinstance(tenants, web.Response):
            return tenants
        if not self.runtime.config.console.simulate_platform_tenants:
            for tenant in tenants:
                if tenant.platform != "console":
                    return _bad(f"tenant {tenant.key!r} talks over {tenant.platform} and runs on real time; "
                                "[console] simulate_platform_tenants = true allows moving it (development only)", 409)
        if not tenants:
            return _bad("no console tenant whose clock could be moved", 409)
        for tenant in tenants:
            self.runtime.simulate(tenant.key, when)
        return web.json_response({"now": when.isoformat(), "simulated": True, "tenants": [t.key for t in tenants]})

    async def delete_clock(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        key = request.query.get("tenant")
        tenants = self._clock_tenants(key) if key else list(self.runtime.config.tenants)
        if isinstance(tenants, web.Response):
            return tenants
        for tenant in tenants:
            self.runtime.simulate(tenant.key, None)
        return self._clock_view([t for t in tenants if t.platform == "console"] or tenants)

    async def list_jobs(self, request: web.Request) -> web.Response:
        """The jobs the console may run, from the registry (the page has no list of its own)."""
        if (denied := self._guard(request)) is not None:
            return denied
        locale = request.query.get("locale", "zh")
        return web.json_response({"jobs": self.runtime.jobs.names(),
                                  "labels": self.runtime.jobs.labels("en" if locale == "en" else "zh")})

    async def run_job(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        name = request.match_info["name"]
        if name not in self.runtime.jobs:
            return _bad(f"unknown job {name!r}; known: {', '.join(self.runtime.jobs.names())}", 404)
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        tenant = self._tenant(body.get("tenant"))
        if isinstance(tenant, web.Response):
            return tenant
        at = _parse_time(body["at"]) if body.get("at") else self.runtime.now_for(tenant.key)
        if isinstance(at, web.Response):
            return at
        sent = await self.runtime.run_job(name, tenant, at)
        self.runtime.wake_outbox()
        out: dict[str, Any] = {"job": name, "tenant": tenant.key, "at": at.isoformat(), "sent": sent}
        if not sent:
            out["note"] = await _why_nothing(self.runtime, name, tenant, at)
        return web.json_response(out)

    # -- sending -----------------------------------------------------------------
    async def send(self, tenant: TenantConfig, userid: str, message: Message) -> SendResult:
        async with self.runtime.db.transaction() as s:
            if message.kind == "card_update" and message.card is not None:
                kind, body = "card", message.card.to_dict()
            elif message.kind == "card" and message.card is not None:
                kind, body = "card", message.card.to_dict()
            elif message.kind in ("file", "image"):
                kind, body = "file", {"path": message.path, "filename": message.filename}
            else:
                kind, body = message.kind, {"title": message.title} if message.title else {}
            row = ConsoleMessage(tenant=tenant.key, userid=userid, kind=kind, text=message.plain(tenant.locale),
                                 card_id=message.card.id if message.card else "", body=body, at=utcnow())
            s.add(row)
            if message.kind == "card_update" and message.card is not None:
                # The card moves to the end with its new state, so a page polling with
                # after=SEQ sees the change. Insert first: SQLite would hand a deleted
                # newest row's number to the next insert, and pollers would miss it.
                await s.flush()
                await s.execute(delete(ConsoleMessage).where(
                    ConsoleMessage.tenant == tenant.key, ConsoleMessage.userid == userid,
                    ConsoleMessage.card_id == message.card.id, ConsoleMessage.seq != row.seq))
        return SendResult(ok=True)


def _parse_time(value: Any) -> datetime | web.Response:
    if not isinstance(value, str):
        return _bad("time must be an ISO-8601 string with a UTC offset")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return _bad(f"cannot read {value!r} as ISO-8601 time")
    if when.tzinfo is None:
        return _bad("the time needs a UTC offset, e.g. 2026-12-04T09:30:00+08:00")
    # Years far out overflow date arithmetic in handlers and jobs (year 9999 + a day).
    if not (CLOCK_YEARS[0] <= when.year <= CLOCK_YEARS[1]):
        return _bad(f"the time must be between the years {CLOCK_YEARS[0]} and {CLOCK_YEARS[1]}")
    return when


def _quote(name: str) -> str:
    from urllib.parse import quote
    return quote(name)


async def _why_nothing(runtime: Any, name: str, tenant: TenantConfig, at: datetime) -> str:
    """Why a job run by hand sent nothing, so "已发送 0 条" does not stand alone."""
    cal = WorkCalendar(tenant)
    day = at.astimezone(tenant.tz).date()
    if name == "review_briefs":
        if not tenant.review_periods:
            return "没有配置考评期：在租户配置的 review_periods 中加入 period 和 opens（开始日期）"
        if not open_periods(tenant, cal, day):
            opens = "、".join(f"{p.period} 于 {p.opens.isoformat()}" for p in tenant.review_periods)
            return f"今天不是考评期开始的日子（{opens}）"
        return "本期的事实简报已经发送过"
    if name in ("morning_prompt", "overdue_scan") and not cal.is_working_day(day):
        return "今天不是工作日"
    if name == "pulse":
        async with runtime.db.session() as s:
            if not is_counted(iso_week(day), await live_from(s, tenant.key)):
                return "这一周在上线日期之前，没有数据可发"
        return "本周的脉搏卡片已经发送过，或还没有经理和 HR"
    if name == "morning_prompt":
        return "需要提醒的人今天都已提醒过，或本周都已填写"
    return "没有到期需要发送的内容"
