"""自动留痕: an external event, taken from the inbox, becomes its effects by the tenant's rules.

- 回款跟踪: an approved contract → one tracking row (amount, customer, due date, goal), its owner told;
- 风险响应及时率: a deviation investigation's assigned approvers → each one's response time on the
  working-day calendar against the rule's SLA in working hours;
- 留痕: every mapped event → a dated record in the person's brief, linked to its source.

An event whose person the roster does not know is kept as unmatched (`dongxian events unmatched`);
an event no rule maps is kept as ignored. Nothing is dropped.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from bot.core.calendar import WorkCalendar, working_hours_between
from cards.texts import register
from handlers.context import Context
from handlers.people import tenant_directory
from handlers.router import Router
from handlers.trace_rules import TraceRule, TraceSettings
from store import external_events as ext
from store import trace as store
from store.models import Employee

TEXTS = register({
    "trace.receivable.new": {
        "zh": "已建立回款跟踪：{title}｜客户 {customer}｜金额 ¥{amount}｜回款日 {due}",
        "en": "Payment tracking started: {title} | customer {customer} | amount ¥{amount} | due {due}"},
    "trace.receivable.no_due": {"zh": "未填", "en": "not given"},
    "trace.response.late": {
        "zh": "{title}：你的响应用时 {hours} 个工作小时，超过约定的 {sla} 小时",
        "en": "{title}: your response took {hours} working hours, beyond the agreed {sla}"},
})

router = Router("trace")


@router.external
async def on_external(ctx: Context) -> None:
    row = await ext.get(ctx.session, ctx.tenant.key, int(ctx.event.values.get("event_id", 0)))
    if row is None or row.state != ext.PENDING:
        return  # applied already (a retried inbox row) or gone
    p = row.payload
    settings = TraceSettings.of(ctx.tenant)
    rules = settings.rules_for(row.source, str(p.get("code", "")), row.type, str(p.get("status", "")))
    if not rules:
        await ext.mark(ctx.session, row, ext.IGNORED, "no rule")
        return
    applied: list[str] = []
    first: list[str] = []  # the first rule's people: whose event this is, on the stored row
    for rule in rules:
        people = await _people(ctx, rule, row)
        if people is None:
            await ext.mark(ctx.session, row, ext.UNMATCHED, rule.name)
            return
        await _apply(ctx, rule, row, people)
        if not applied:
            first = people
        applied.append(rule.name)
    await ext.mark(ctx.session, row, ext.APPLIED, ",".join(applied), (first or [""])[0])


async def _resolve(ctx: Context, ref: str) -> str | None:
    """The employee a source's person id (or name) is, or None."""
    ref = ref.strip()
    if not ref:
        return None
    found = (await ctx.session.execute(select(col(Employee.userid)).where(
        col(Employee.tenant) == ctx.tenant.key, col(Employee.active).is_(True),
        func.lower(Employee.userid) == ref.lower()))).scalar_one_or_none()
    if found is not None:
        return str(found)
    match = (await tenant_directory(ctx.session, ctx.tenant.key)).resolve(ref)
    return match.person.userid if match.status == "one" and match.person is not None else None


async def _people(ctx: Context, rule: TraceRule, row: ext.ExternalEvent) -> list[str] | None:
    """The rule's people of the event as userids; None when any of them is unknown."""
    p = row.payload
    if rule.effect == "response" or rule.person == "approvers":
        refs = [str(t.get("person", "")) for t in p.get("tasks", [])] or [str(a) for a in p.get("approvers", [])]
    elif rule.person == "field":
        refs = [str((p.get("fields") or {}).get(rule.person_field, ""))]
    else:
        refs = [row.person]
    out = []
    for ref in refs:
        userid = await _resolve(ctx, ref)
        if userid is None:
            return None
        out.append(userid)
    return out or None


async def _apply(ctx: Context, rule: TraceRule, row: ext.ExternalEvent, people: list[str]) -> None:
    p = row.payload
    day = row.occurred_at.astimezone(ctx.tenant.tz).date().isoformat()
    title = f"{rule.name}：{p.get('title') or row.external_id}"
    effect = rule.effect
    for userid in people:
        await store.add_record(ctx.session, ctx.tenant.key, userid, int(row.id or 0), day, row.occurred_at,
                               row.source, title, str(p.get("link", "")), effect)
    if effect == "receivable":
        await _receivable(ctx, rule, row, people[0])
    elif effect == "response":
        await _responses(ctx, rule, row)


async def _receivable(ctx: Context, rule: TraceRule, row: ext.ExternalEvent, owner: str) -> None:
    p = row.payload
    fields = p.get("fields") or {}
    amount = parse_amount(fields.get(rule.amount_field))
    due = parse_day(fields.get(rule.due_field), ctx.tenant.tz)
    customer = str(fields.get(rule.customer_field, "") or "").strip()
    goal = str(fields.get(rule.goal_field, "") or "").strip() or rule.goal_code
    ref = f"{row.source}:{p.get('instance') or row.external_id}"
    title = str(p.get("title") or row.external_id)
    fresh = await store.add_receivable(
        ctx.session, tenant=ctx.tenant.key, ref=ref[:255], owner=owner, customer=customer,
        amount_cents=amount, due=due, goal_code=goal, title=title, status="open", event_id=int(row.id or 0),
        created_at=ctx.now.astimezone(timezone.utc))
    if fresh:
        ctx.send(owner, ctx.t("trace.receivable.new", title=title, customer=customer or "—",
                              amount=format_amount(amount),
                              due=due.isoformat() if due else ctx.t("trace.receivable.no_due")))


async def _responses(ctx: Context, rule: TraceRule, row: ext.ExternalEvent) -> None:
    """Each task of the event: opened when assigned, measured when answered."""
    cal = WorkCalendar(ctx.tenant)
    p = row.payload
    for task in p.get("tasks", []):
        userid = await _resolve(ctx, str(task.get("person", "")))
        started, finished = _when(task.get("started_at")), _when(task.get("finished_at"))
        if userid is None or started is None:
            continue
        task_ref = str(task.get("id", ""))[:255]
        opened = await store.start_response(
            ctx.session, tenant=ctx.tenant.key, source=row.source, task_ref=task_ref,
            instance=str(p.get("instance", ""))[:255], userid=userid, rule=rule.name,
            started_at=started.astimezone(timezone.utc), finished_at=None, working_hours=None,
            sla_hours=rule.sla_hours, on_time=None, start_event_id=int(row.id or 0), finish_event_id=None)
        if finished is None:
            if not opened:  # the answer came first (events of two people are handled side by side)
                await store.link_start(ctx.session, ctx.tenant.key, row.source, task_ref, int(row.id or 0))
            continue
        open_row = await store.open_response(ctx.session, ctx.tenant.key, row.source, task_ref)
        if open_row is None or open_row.finished_at is not None:
            continue
        hours = working_hours_between(cal, _aware(open_row.started_at), finished,
                                      ctx.tenant.work_hours_start, ctx.tenant.work_hours_end)
        await store.finish_response(ctx.session, open_row, finished, hours, int(row.id or 0))
        if hours > rule.sla_hours:
            ctx.send(userid, ctx.t("trace.response.late", title=p.get("title") or rule.name,
                                   hours=f"{hours:.1f}", sla=f"{rule.sla_hours:g}"))


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _when(v: Any) -> datetime | None:
    if not v:
        return None
    try:
        dt = datetime.fromisoformat(str(v))
    except ValueError:
        return None
    return _aware(dt)


_AMOUNT = re.compile(r"-?\d+(?:\.\d+)?")


def parse_amount(v: Any) -> int:
    """Cents from 120000, "¥120,000.00", "12万", "12.5万元"; 0 when there is no number."""
    if v is None:
        return 0
    text = str(v).replace(",", "").replace("，", "").replace("¥", "").replace("￥", "").strip()
    m = _AMOUNT.search(text)
    if not m:
        return 0
    try:
        value = Decimal(m.group(0))
    except InvalidOperation:
        return 0
    if "万" in text[m.end():m.end() + 2]:
        value *= 10000
    return int((value * 100).to_integral_value())


def format_amount(cents: int) -> str:
    return f"{Decimal(cents) / 100:,.2f}"


def parse_day(v: Any, tz: Any) -> date | None:
    """A date from "2027-03-31", "2027/3/31", "2027年3月31日" or a Unix timestamp (WeCom Date control)."""
    if v is None or v == "":
        return None
    text = str(v).strip()
    if re.fullmatch(r"\d{9,13}", text):
        seconds = int(text) / (1000 if len(text) == 13 else 1)
        return datetime.fromtimestamp(seconds, tz).date()
    m = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
