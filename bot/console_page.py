"""The console in a browser: the page, its assets, and the role-aware pulse endpoints.

The page is plain HTML/CSS/JS from `bot/console_static/` (no build step, nothing
from the network). It talks to the console JSON API (bot/console.py) and to the
endpoints below, which answer with what the chosen person may see: an employee
their own actions, a manager their reporting line, HR and admins the company.
Every view of other people's figures is written to the audit log.
"""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datetime import date, datetime, time, timedelta, timezone

from bot.core.config import TenantConfig
from bot.console import CLOCK_YEARS, token_ok
from bot.console_guard import GUARD_KEY
from store.audit import VIEW_AUDIT, search
from store.live import is_counted, live_from
from store.usage import record_use
from store.weekly import actions_between
from store.models import AuditLog, Employee

STATIC_DIR = Path(__file__).with_name("console_static")
# The page's files, listed once at start: a fixed set, so no path tricks and no directory listing.
# console.js is the entry module; the others are the ES modules it imports (no build step).
_ASSETS = {"console.css": "text/css",
           **{p.name: "text/javascript" for p in sorted(STATIC_DIR.glob("*.js"))}}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TREND_WEEKS = 12
_MAX_EXPORT_WEEKS = 53
# The page needs nothing from elsewhere; blob: is how fetched charts and downloads are shown.
_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    # The first URL may carry ?token=; no-referrer keeps it from leaking onwards.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def add_page_routes(app: web.Application, runtime: Any) -> None:
    """Serve the console page at /console/ and its pulse and export endpoints."""
    page = ConsolePage(runtime)
    r = app.router
    r.add_get("/console", page.redirect)
    r.add_get("/console/", page.index)
    r.add_get("/console/static/{name}", page.asset)
    r.add_get("/console/api/pulse", page.pulse)
    r.add_get("/console/api/pulse/chart.png", page.chart)
    r.add_get("/console/api/export.xlsx", page.export)
    r.add_get("/console/audit", page.audit_page)
    r.add_get("/console/api/audit", page.audit)


def _bad(msg: str, status: int = 400) -> web.Response:
    return web.json_response({"error": msg}, status=status)


def _rate(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def figures_json(f: Any) -> dict[str, Any]:
    """A DeptFigures as JSON: counts, rates (0–1, null when undefined) and the short name."""
    return {
        # Without the company's own root, so 销售部 / 华东大区 still says where it sits.
        "dept": f.dept, "name": " / ".join(f.dept.split("/")[1:]) or f.dept,
        "population": f.population, "skipped": f.skipped, "filled": f.filled, "actions": f.actions,
        "done": f.done, "linked": f.linked, "confirmed": f.confirmed,
        "fill_rate": _rate(f.fill_rate), "completion_rate": _rate(f.completion_rate),
        "linkage_rate": _rate(f.linkage_rate), "witness_rate": _rate(f.witness_rate),
    }


class ConsolePage:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    # -- page and assets -------------------------------------------------------
    # The page and its assets hold no data, so they need no token (a browser cannot
    # send a header when following a link or loading a script); every API does.
    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/console/" + (f"?{request.query_string}" if request.query_string else ""))

    async def index(self, request: web.Request) -> web.Response:
        # The page carries this browser session's CSRF token; its script sends it with every change.
        guard = request.app[GUARD_KEY]
        sid, fresh = guard.session_of(request)
        meta = f'<meta name="dx-csrf" content="{guard.token_for(sid)}">\n</head>'
        html = (STATIC_DIR / "index.html").read_text(encoding="utf-8").replace("</head>", meta, 1)
        resp = web.Response(text=html, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS)
        if fresh:
            guard.set_cookie(resp, sid)
        return resp

    async def audit_page(self, request: web.Request) -> web.Response:
        return web.Response(body=(STATIC_DIR / "audit.html").read_bytes(), content_type="text/html",
                            charset="utf-8", headers=_PAGE_HEADERS)

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _ASSETS:  # a fixed list: no path tricks, no directory listing
            raise web.HTTPNotFound()
        return web.Response(body=(STATIC_DIR / name).read_bytes(), content_type=_ASSETS[name], charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    # -- shared checks -----------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        return token_ok(request, self.runtime.config.console.token)

    async def _viewer(self, request: web.Request) -> tuple[TenantConfig, Employee, str] | web.Response:
        """The tenant, the person the page acts as, and the ISO week asked for (default: this week)."""
        if not self._authorized(request):
            return _bad("console token required", 401)
        key = request.query.get("tenant", "")
        if not key:
            return _bad("tenant is required")
        tenant = self.runtime.tenant(key)
        if tenant is None:
            return _bad(f"unknown tenant {key!r}", 404)
        userid = request.query.get("userid", "")
        if not userid:
            return _bad("userid is required")
        async with self.runtime.db.session() as s:
            me = (await s.execute(select(Employee).where(
                Employee.tenant == tenant.key, Employee.userid == userid))).scalar_one_or_none()
        if me is None or not me.active:
            return _bad(f"no active user {userid!r} in tenant {tenant.key!r}", 404)
        week = self._week(request.query.get("week", ""), tenant)
        if isinstance(week, web.Response):
            return week
        return tenant, me, week

    def _week(self, text: str, tenant: TenantConfig) -> str | web.Response:
        from bot.core.calendar import iso_week, parse_week

        if not text:
            return iso_week(self.runtime.now_for(tenant.key).astimezone(tenant.tz).date())
        try:
            year, num = parse_week(text)
        except ValueError as exc:
            return _bad(str(exc))
        # Twelve weeks of trend before it, a week's days after it: year 9999 overflows dates (a 500).
        if not CLOCK_YEARS[0] <= year <= CLOCK_YEARS[1]:
            return _bad(f"the week must be in the years {CLOCK_YEARS[0]}–{CLOCK_YEARS[1]}")
        return f"{year}-W{num:02d}"

    async def _scope(self, s: AsyncSession, tenant: TenantConfig, me: Employee) -> tuple[str, set[str] | None]:
        """('company', None) for HR and admins, ('line', team) for managers, ('self', {me}).

        A manager's team is counted as on their Friday card (store.pulse.OrgTree.team).
        """
        from store.pulse import team_of

        if me.has_role("hr") or me.has_role("admin"):
            return "company", None
        team = await team_of(s, tenant.key, me.userid)
        # Someone with reports leads a team even when the roster forgot the manager role.
        if team:
            return "line", team
        if me.has_role("manager"):
            return "line", set()
        return "self", {me.userid}

    async def _audit(self, tenant: TenantConfig, me: Employee, action: str, subject: str) -> None:
        async with self.runtime.db.transaction() as s:
            # The bot's clock, as the chat handlers' audit rows use: with the console's simulated clock
            # the audit view would otherwise interleave two time lines (in production they are one).
            s.add(AuditLog(tenant=tenant.key, actor_userid=me.userid, action=action, subject=subject,
                           at=self.runtime.clock.now().astimezone(timezone.utc)))
            if action in _PULLS:
                # Opening the data tab or downloading the export is a pull (the manager KPI), kept with its audit row.
                record_use(s, tenant.key, me.userid, self.runtime.now_for(tenant.key), tenant.tz,
                           kind="pull", feature=_PULLS[action], what=action)

    # -- endpoints ---------------------------------------------------------------
    async def pulse(self, request: web.Request) -> web.Response:
        from store.pulse import compute_pulse

        viewer = await self._viewer(request)
        if isinstance(viewer, web.Response):
            return viewer
        tenant, me, week = viewer
        async with self.runtime.db.session() as s:
            scope, people = await self._scope(s, tenant, me)
            names = await _names(s, tenant.key)
            out: dict[str, Any] = {
                "tenant": tenant.key, "week": week, "scope": scope,
                "viewer": {"userid": me.userid, "name": me.name, "department": me.department,
                           "roles": ["employee", *me.role_list]},
                "actions": await self._own_actions(s, tenant, me, week, names),
            }
            live = await live_from(s, tenant.key)
            out["live_from"] = live.isoformat() if live else None
            # A week before go-live has no figures: showing zeros would read as nobody filling in.
            out["before_live"] = not is_counted(week, live)
            if scope != "self" and not out["before_live"]:
                p = await compute_pulse(s, tenant.key, week, people=people)
                out["people"] = len(people) if people is not None else p.total.population
                out["departments"] = [figures_json(d) for d in p.departments]
                out["total"] = figures_json(p.total)
                out["mutual_pairs"] = [[_person(u, names) for u in pair] for pair in p.mutual_pairs]
                q = f"tenant={quote(tenant.key)}&userid={quote(me.userid)}&week={week}"
                out["chart"] = f"/console/api/pulse/chart.png?{q}"
                out["calibration_chart"] = f"/console/api/pulse/chart.png?{q}&kind=calibration"
                if scope == "line":
                    # Who did not fill in is for the manager's eyes only, never the company view.
                    # The manager is counted in the figures, but is not listed to himself.
                    out["missing"] = [_person(u, names) for u in p.missing if u != me.userid]
                else:
                    out["export"] = f"/console/api/export.xlsx?{q}"
                    out["competencies"] = await _competency_spread(s, tenant.key, names)
                    out["contribution_chart"] = f"/console/api/pulse/chart.png?{q}&kind=contributions"
        if scope != "self" and not out["before_live"]:
            await self._audit(tenant, me, "view_pulse", f"{scope}:{week}")
        return web.json_response(out)

    async def _own_actions(self, s: AsyncSession, tenant: TenantConfig, me: Employee, week: str,
                           names: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
        from bot.core.calendar import week_back, week_days
        from store.pulse import action_status

        first = week_back(week, TREND_WEEKS - 1)
        rows = await actions_between(s, tenant.key, me.userid, first, week)
        today = self.runtime.now_for(tenant.key).astimezone(tenant.tz).date()
        return [{"week": a.week, "thing": a.thing, "goal": a.goal_code or "",
                 "witness": _person(a.witness_userid, names), "witness_state": a.witness_state,
                 "status": a.status, "status_text": action_status(a, week_days(a.week)[-1] < today)}
                for a in rows]

    async def chart(self, request: web.Request) -> web.Response:
        from cards.chart import trend_png
        from store.pulse import trend

        viewer = await self._viewer(request)
        if isinstance(viewer, web.Response):
            return viewer
        tenant, me, week = viewer
        async with self.runtime.db.session() as s:
            scope, people = await self._scope(s, tenant, me)
            if scope == "self":
                return _bad("the trend chart is for managers and HR", 403)
            if request.query.get("kind") == "calibration":
                return await self._calibration_chart(s, tenant, me, week, scope)
            if request.query.get("kind") == "contributions":
                return await self._contribution_chart(s, tenant, me, week, scope, request.query.get("period", ""))
            points = await trend(s, tenant.key, week, weeks=TREND_WEEKS, people=people)
        await self._audit(tenant, me, "view_pulse_chart", f"{scope}:{week}")
        # Drawing takes a noticeable fraction of a second; keep the event loop free meanwhile.
        png = await asyncio.to_thread(trend_png, points, tenant.locale)
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})

    async def _calibration_chart(self, s: AsyncSession, tenant: TenantConfig, me: Employee, week: str,
                                 scope: str) -> web.Response:
        """The goal calibration rate of the last four quarters: the company for HR and admins, a
        manager's own department for a manager."""
        from bot.core.calendar import week_days
        from cards.chart import calibration_png
        from store.goal_changes import calibration, quarter_of, quarter_days

        last = week_days(week)[-1]
        quarters = [quarter_of(last)]
        while len(quarters) < 4:
            quarters.insert(0, quarter_of(quarter_days(quarters[0])[0] - timedelta(days=1)))
        department = None if scope != "line" else me.department
        upto = datetime.combine(last + timedelta(days=1), time(0), tenant.tz)
        points = [(q, (await calibration(s, tenant.key, q, tenant.tz, department=department, upto=upto)).rate)
                  for q in quarters]
        await self._audit(tenant, me, "view_pulse_chart", f"{scope}:{week}:calibration")
        png = await asyncio.to_thread(calibration_png, points, tenant.locale)
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})

    async def _contribution_chart(self, s: AsyncSession, tenant: TenantConfig, me: Employee, week: str, scope: str,
                                  period: str) -> web.Response:
        """The contribution heat map (department × type, small cells suppressed): HR's view, the
        week's quarter unless a month (2026-12) or quarter (2026Q4) is asked for."""
        from bot.core.calendar import week_days
        from cards.heatmap import heatmap_png
        from handlers.context import Outgoing
        from handlers.contributions import heat_table, read_period

        if scope != "company":
            return _bad("the contribution heat map is for HR and admins", 403)
        out = Outgoing(s, tenant, datetime.combine(week_days(week)[-1], time(12), tenant.tz))
        chosen = read_period(out, period or "本季度")
        if chosen is None:
            return _bad("period: 2026-12 or 2026Q4")
        _, table = await heat_table(out, chosen)
        await self._audit(tenant, me, "view_pulse_chart", f"{scope}:{chosen}:contributions")
        png = await asyncio.to_thread(heatmap_png, table, tenant.locale)
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})

    async def export(self, request: web.Request) -> web.Response:
        from bot.core.calendar import week_range
        from store.export import export_weekly

        viewer = await self._viewer(request)
        if isinstance(viewer, web.Response):
            return viewer
        tenant, me, week = viewer
        if not (me.has_role("hr") or me.has_role("admin")):
            return _bad("the export is for HR and admins", 403)
        weeks = [week]
        if request.query.get("from"):
            first = self._week(request.query["from"], tenant)
            if isinstance(first, web.Response):
                return first
            try:
                weeks = week_range(first, week)
            except ValueError as exc:
                return _bad(str(exc))
            if len(weeks) > _MAX_EXPORT_WEEKS:
                return _bad(f"at most {_MAX_EXPORT_WEEKS} weeks per export")
        with tempfile.TemporaryDirectory(prefix="dongxian-export-") as tmp:
            out = Path(tmp) / "export.xlsx"
            try:
                await export_weekly(self.runtime.db, tenant.key, weeks, out, now=self.runtime.now_for(tenant.key))
            except ValueError as exc:
                return _bad(str(exc))
            body = out.read_bytes()
        await self._audit(tenant, me, "export", f"company:{weeks[0]}..{weeks[-1]}")
        span = week if len(weeks) == 1 else f"{weeks[0]}_{weeks[-1]}"  # noqa: E501
        return web.Response(body=body, content_type=XLSX_TYPE, headers={
            "Content-Disposition": f"attachment; filename=\"dongxian-{span}.xlsx\"; "
                                   f"filename*=UTF-8''{quote(f'动线周报-{span}.xlsx')}",
            "Cache-Control": "no-store"})

    async def audit(self, request: web.Request) -> web.Response:
        """The audit log for HR and admins: who read whose data and when, by person and date."""
        viewer = await self._viewer(request)
        if isinstance(viewer, web.Response):
            return viewer
        tenant, me, _week = viewer
        if not (me.has_role("hr") or me.has_role("admin")):
            return _bad("the audit log is for HR and admins", 403)
        tz = tenant.tz
        try:
            first = date.fromisoformat(request.query["from"]) if request.query.get("from") else None
            last = date.fromisoformat(request.query["to"]) if request.query.get("to") else None
        except ValueError:
            return _bad("from and to are dates: YYYY-MM-DD")
        if first and last and last < first:
            return _bad("to is before from")
        person = request.query.get("person", "").strip() or None
        start = datetime.combine(first, time(0), tzinfo=tz) if first else None
        end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz) if last else None
        async with self.runtime.db.session() as s:
            rows = await search(s, tenant.key, person=person, start=start, end=end)
            names = await _names(s, tenant.key)
        entries = [{
            "at": r.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), "actor": _person(r.actor_userid, names),
            "action": r.action, "action_text": AUDIT_ACTIONS.get(r.action, r.action),
            "subject": r.subject, "subject_text": _audit_subject(r.subject, names),
        } for r in rows]
        await self._audit(tenant, me, VIEW_AUDIT, person or "")
        return web.json_response({"tenant": tenant.key, "timezone": tenant.timezone, "entries": entries})


# Console reads that count as uses; the chart images load with the tab and are not counted again.
_PULLS = {"view_pulse": "console_data", "export": "export"}

AUDIT_ACTIONS = {
    "view_pulse": "查看脉搏数据", "view_pulse_chart": "查看趋势图", "export": "导出周报",
    "view_feedback": "查看反馈", "view_brief": "查看事实简报", "send_brief": "收到事实简报",
    "change_roles": "修改角色", "view_audit": "查看审计日志",
}
_SCOPES = {"company": "全公司", "line": "汇报线"}


def _audit_subject(subject: str, names: dict[str, tuple[str, str]]) -> str:
    """'lina' → '李娜（lina）'; 'line:2026-W49' → '汇报线 · 2026-W49'; 'lina: - → hr' → '李娜（lina）：- → hr'."""
    if subject in names:
        return f"{names[subject][0]}（{subject}）"
    head, sep, rest = subject.partition(":")
    if sep and head in _SCOPES:
        return f"{_SCOPES[head]} · {rest}"
    if sep and head in names:
        return f"{names[head][0]}（{head}）：{rest.strip()}"
    return subject


async def _names(s: AsyncSession, tenant: str) -> dict[str, tuple[str, str]]:
    rows = await s.execute(select(Employee.userid, Employee.name, Employee.department).where(Employee.tenant == tenant))
    return {u: (n, d) for u, n, d in rows.all()}


def _person(userid: str, names: dict[str, tuple[str, str]]) -> dict[str, str]:
    name, dept = names.get(userid, (userid, ""))
    return {"userid": userid, "name": name, "department": dept}


async def _competency_spread(s: AsyncSession, tenant: str, names: dict[str, tuple[str, str]]) -> dict[str, Any] | None:
    """HR's view of the latest assessment round: per-manager distributions (groups under 5 suppressed)."""
    from store import competencies

    period = await competencies.latest_period(s, tenant)
    if period is None:
        return None
    company, spread = await competencies.rating_spread(s, tenant, period)
    if company is None:
        return {"period": period, "average": None, "managers": []}
    return {"period": period, "average": round(company, 1), "managers": [
        {"name": names.get(m.manager, (m.manager, ""))[0], "people": m.people, "l1": m.counts[1], "l2": m.counts[2],
         "l3": m.counts[3], "average": round(m.average, 1), "lenient": m.lenient} for m in spread]}
