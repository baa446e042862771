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
import unicodedata
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from bot.core.calendar import WorkCalendar, working_hours_between
from cards.texts import register
from handlers.context import Context
from handlers.deliverable_intake import files_from_workflow
from handlers.people import tenant_directory
from handlers.router import Router
from handlers.trace_rules import TraceRule, TraceSettings
from store import audit
from store import external_events as ext
from store import trace as store
from store.models import Employee
from store.statuses import Role

TEXTS = register({
    "trace.receivable.new": {
        "zh": "已建立回款跟踪：{title}｜客户 {customer}｜金额 ¥{amount}｜回款日 {due}",
        "en": "Payment tracking started: {title} | customer {customer} | amount ¥{amount} | due {due}"},
    "trace.receivable.no_due": {"zh": "未填", "en": "not given"},
    "trace.pay.usage": {
        "zh": "登记回款请这样写：回款 HT-2026-001 已到账 ¥50000（部分到账写实际金额；全部到账写「回款 HT-2026-001 已结清」）",
        "en": "To record a payment: 回款 HT-2026-001 已到账 ¥50000 (the amount received; \"回款 HT-2026-001 已结清\" when all is in)"},
    "trace.pay.unknown": {"zh": "没有找到合同 {ref} 的回款跟踪，请核对合同编号",
                          "en": "No payment tracking for contract {ref}; please check the number"},
    "trace.pay.ambiguous": {"zh": "合同 {ref} 对应 {n} 条回款跟踪，请用审批单号登记",
                            "en": "Contract {ref} matches {n} tracking rows; use the approval number"},
    "trace.pay.denied": {"zh": "只有合同 {ref} 的负责人、其上级或管理员可以登记回款",
                         "en": "Only the owner of contract {ref}, their managers or an admin may record its payments"},
    "trace.pay.settled": {"zh": "{title} 已全部回款（¥{amount}），无需再登记",
                          "en": "{title} is paid in full (¥{amount}); nothing to record"},
    "trace.pay.too_much": {"zh": "到账 ¥{amount} 超过未回款金额 ¥{outstanding}，没有登记；请核对金额",
                           "en": "¥{amount} is more than the ¥{outstanding} outstanding; nothing recorded, please check"},
    "trace.pay.partial": {
        "zh": "已登记回款 ¥{amount}：{title} 已回款 ¥{paid} / ¥{total}，未回款 ¥{outstanding}",
        "en": "Recorded ¥{amount}: {title} has ¥{paid} of ¥{total} in, ¥{outstanding} outstanding"},
    "trace.pay.done": {
        "zh": "已登记回款 ¥{amount}：{title} 已全部回款（¥{total}），回款提醒停止",
        "en": "Recorded ¥{amount}: {title} is paid in full (¥{total}); its reminders stop"},
    "trace.pay.told": {"zh": "{who} 登记了回款 ¥{amount}：{title} 已回款 ¥{paid} / ¥{total}，未回款 ¥{outstanding}",
                       "en": "{who} recorded ¥{amount}: {title} has ¥{paid} of ¥{total} in, ¥{outstanding} outstanding"},
    "trace.response.late": {
        "zh": "{title}：你的响应用时 {hours} 个工作小时，超过约定的 {sla} 小时",
        "en": "{title}: your response took {hours} working hours, beyond the agreed {sla}"},
})

router = Router("trace")
TRACE_EFFECT = "trace"  # audit action prefix of a rule's effect (trace:receivable, trace:response, trace:trace)
RECORD_PAYMENT = "record_payment"  # audit: who recorded money received on whose tracking row


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
    elif effect == "deliverable":
        await files_from_workflow(ctx, people[0], rule.task, list(p.get("files") or []),
                                  f"{row.source}:{p.get('instance') or row.external_id}")
    # The audit trail names each effect a rule had on someone's record: the rule is the actor, the
    # subject starts with the person (so a search by person finds it) and ends with the event.
    for userid in people:
        audit.record(ctx.session, ctx.tenant.key, f"rule:{rule.name}", f"{TRACE_EFFECT}:{effect}",
                     f"{userid}:{row.source}:{row.external_id}", ctx.now)


async def _receivable(ctx: Context, rule: TraceRule, row: ext.ExternalEvent, owner: str) -> None:
    p = row.payload
    fields = p.get("fields") or {}
    amount = parse_amount(fields.get(rule.amount_field))
    due = parse_day(fields.get(rule.due_field), ctx.tenant.tz)
    customer = str(fields.get(rule.customer_field, "") or "").strip()
    goal = str(fields.get(rule.goal_field, "") or "").strip() or rule.goal_code
    ref = f"{row.source}:{p.get('instance') or row.external_id}"
    title = str(p.get("title") or row.external_id)
    contract_no = _fold(str(fields.get(rule.contract_field, "") or "")) or str(p.get("instance") or row.external_id)
    fresh = await store.add_receivable(
        ctx.session, tenant=ctx.tenant.key, ref=ref[:255], owner=owner, customer=customer,
        amount_cents=amount, due=due, goal_code=goal, title=title, status="open", event_id=int(row.id or 0),
        created_at=ctx.now.astimezone(timezone.utc), contract_no=contract_no[:64], paid_cents=0, paid_at=None)
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


def _fold(text: str) -> str:
    """Full-width letters, digits and signs as people's keyboards type them, folded (ＨＴ－２０２６ → HT-2026)."""
    return unicodedata.normalize("NFKC", text).strip()


# 回款 <合同编号> [已到账|到账|已回款|收到] <金额> | 回款 <合同编号> 已结清
_PAID_WORDS = ("已到账", "到账", "已回款", "回款", "已收到", "收到", "已付", "付款", "到款")
_SETTLED_WORDS = ("已结清", "结清", "全额", "全部到账", "全部")


# 回款HT-2026-001 …: the number typed straight after the word (a weekly action 回款情况跟进 is not one).
_GLUED = re.compile(r"\s*回款\s*(?=(?:[A-Za-z]{1,8}-?)?\d{3,})")


@router.command("receivable_paid", words=("回款",), args=True, access="own",
                pattern=lambda text: _GLUED.match(_fold(text)) is not None)
async def on_paid(ctx: Context) -> None:
    """The owner (their managers, or an admin) records money received on a tracking row."""
    text = _GLUED.sub("", _fold(ctx.args), count=1)
    parts = text.split(None, 1)
    if not parts:
        ctx.reply(ctx.t("trace.pay.usage"))
        return
    ref, rest = parts[0], parts[1] if len(parts) > 1 else ""
    rows = await store.find_receivables(ctx.session, ctx.tenant.key, ref)
    if not rows:
        ctx.reply(ctx.t("trace.pay.unknown", ref=ref))
        return
    if len(rows) > 1:
        ctx.reply(ctx.t("trace.pay.ambiguous", ref=ref, n=len(rows)))
        return
    row = rows[0]
    if not await _may_record(ctx, row.owner):
        ctx.reply(ctx.t("trace.pay.denied", ref=ref))
        return
    if row.status == "paid" or row.outstanding_cents <= 0:
        ctx.reply(ctx.t("trace.pay.settled", title=row.title, amount=format_amount(row.amount_cents)))
        return
    words = rest
    for w in _PAID_WORDS:
        words = words.replace(w, " ")
    if any(w in rest for w in _SETTLED_WORDS) and not _AMOUNT.search(words):
        cents = row.outstanding_cents
    else:
        cents = parse_amount(words) if _AMOUNT.search(words) else 0
        if cents <= 0 or "-" in words:
            ctx.reply(ctx.t("trace.pay.usage"))
            return
    if cents > row.outstanding_cents:
        ctx.reply(ctx.t("trace.pay.too_much", amount=format_amount(cents),
                        outstanding=format_amount(row.outstanding_cents)))
        return
    row = await store.record_payment(ctx.session, row, cents, ctx.now)
    audit.record(ctx.session, ctx.tenant.key, ctx.event.userid, RECORD_PAYMENT,
                 f"{row.owner}:{row.contract_no or row.ref}:{cents}", ctx.now)
    facts = dict(title=row.title, amount=format_amount(cents), paid=format_amount(row.paid_cents),
                 total=format_amount(row.amount_cents), outstanding=format_amount(row.outstanding_cents))
    ctx.reply(ctx.t("trace.pay.done" if row.status == "paid" else "trace.pay.partial", **facts))
    if row.owner != ctx.event.userid:
        ctx.send(row.owner, ctx.t("trace.pay.told", who=await ctx.name_of(ctx.event.userid), **facts))


async def _may_record(ctx: Context, owner: str) -> bool:
    """The row's owner, a manager above them, or an admin."""
    me = ctx.me
    if me is None:
        return False
    if me.userid == owner or me.has_role(Role.ADMIN):
        return True
    seen: set[str] = set()
    person = await ctx.employee(owner)
    while person is not None and person.manager_userid and person.manager_userid not in seen:
        if person.manager_userid == me.userid:
            return True
        seen.add(person.manager_userid)
        person = await ctx.employee(person.manager_userid)
    return False


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
