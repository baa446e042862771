"""回款跟踪 reminders: the owner a few working days before the due date, the manager once it is overdue;
and the nightly sweep of WeCom 审批 for callbacks that never came.

Each reminder is claimed once per tracking row (`claim_send`, kind and the due day), so restarts,
a second instance or a re-run of the job never send it twice. The sweep is claimed once per tenant
and night the same way (the tenant-wide claimant `SWEEP_CLAIMANT`); a sweep that fails gives its claim
back, so the next tick of the slot's grace window tries again.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import delete, select

from bot.core.calendar import WorkCalendar, week_days
from bot.core.config import TenantConfig
from cards.texts import register
from handlers.context import Outgoing
from handlers.trace import format_amount
from handlers.trace_rules import TraceSettings
from schedules.registry import JobEnv, JobRegistry
from store import trace as store
from store.models import Employee, ScheduledSend
from store.scheduled import claim_send

TEXTS = register({
    "trace.remind.due": {
        "zh": "回款提醒：{title}（客户 {customer}，¥{amount}）将于 {due} 到期，请跟进回款",
        "en": "Payment reminder: {title} (customer {customer}, ¥{amount}) is due on {due}; please follow up"},
    "trace.pulse.rate": {"zh": "风险响应及时率（{quarter}）", "en": "Risk response on time ({quarter})"},
    "trace.pulse.value": {"zh": "{pct}（{ok}/{n}）", "en": "{pct} ({ok}/{n})"},
    "trace.pulse.by_dept": {"zh": "风险响应·按部门", "en": "Risk response by department"},
    "trace.pulse.by_person": {"zh": "风险响应·按人", "en": "Risk response by person"},
    "trace.pulse.sep": {"zh": "；", "en": "; "},
    "trace.pulse.more": {"zh": "等 {n} 人", "en": "and {n} more"},
    "trace.remind.overdue": {
        "zh": "回款逾期：{owner} 负责的 {title}（客户 {customer}，¥{amount}）已于 {due} 到期仍未回款",
        "en": "Payment overdue: {title} of {owner} (customer {customer}, ¥{amount}) was due on {due} and is unpaid"},
})

jobs = JobRegistry()


def _slot(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return TraceSettings.of(tenant).remind_at if cal.is_working_day(local.date()) else None


@jobs.job("receivable_reminders", at=_slot, label={"zh": "回款提醒", "en": "Receivable reminders"})
async def receivable_reminders(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    settings = TraceSettings.of(tenant)
    cal = WorkCalendar(tenant)
    today = at.astimezone(tenant.tz).date()
    sent = 0
    async with env.db.transaction() as s:
        out = env.outgoing(s, tenant, at)
        people = {e.userid: e for e in (await s.execute(select(Employee).where(Employee.tenant == tenant.key))).scalars()}
        for row in await store.receivables(s, tenant.key, status="open"):
            if row.due is None:
                continue
            # What is still to come in: a partial payment (回款 … 已到账) lowers the figure the reminder names.
            facts = dict(title=row.title, customer=row.customer or "—", amount=format_amount(row.outstanding_cents),
                         due=row.due.isoformat())
            if today > row.due:
                owner = people.get(row.owner)
                manager = owner.manager_userid if owner is not None else None
                if manager and await claim_send(s, tenant.key, manager, f"receivable_overdue:{row.id}",
                                                row.due.isoformat(), at):
                    out.send(manager, out.t("trace.remind.overdue", owner=owner.name if owner else row.owner, **facts))
                    sent += 1
            elif cal.working_days_between(today, row.due) <= settings.remind_days_before:
                if await claim_send(s, tenant.key, row.owner, f"receivable_due:{row.id}", row.due.isoformat(), at):
                    out.send(row.owner, out.t("trace.remind.due", **facts))
                    sent += 1
    await env.record_run(tenant.key, "receivable_reminders", today.isoformat(), sent)
    return sent


SWEEP_SOURCE = "wecom_approval"
SWEEP_KIND = "trace_reconcile"
SWEEP_CLAIMANT = "*tenant*"  # not a person: the claim is the tenant's night


def _sweep_slot(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    """Every night (approvals are decided on weekends too) for a WeCom tenant with 审批 rules."""
    settings = TraceSettings.of(tenant)
    if tenant.wecom is None or not any(r.source == SWEEP_SOURCE for r in settings.rules):
        return None
    return settings.reconcile_at


@jobs.job("approval_reconcile", at=_sweep_slot, label={"zh": "审批夜间补录", "en": "Nightly approval sweep"})
async def approval_reconcile(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    """oa/getapprovalinfo over the last `reconcile_days` days, once per tenant and night."""
    run = env.sweeps.get(SWEEP_SOURCE)
    if run is None or _sweep_slot(tenant, WorkCalendar(tenant), at.astimezone(tenant.tz)) is None:
        return 0  # no WeCom adapter in this process, or nothing to sweep for
    night = at.astimezone(tenant.tz).date().isoformat()
    async with env.db.transaction() as s:
        if not await claim_send(s, tenant.key, SWEEP_CLAIMANT, SWEEP_KIND, night, at):
            return 0  # swept tonight already (another tick, process or a re-run)
    days = TraceSettings.of(tenant).reconcile_days
    try:
        added = await run(tenant, at - timedelta(days=days), at, at)
    except Exception:
        async with env.db.transaction() as s:
            await s.execute(delete(ScheduledSend).where(
                ScheduledSend.tenant == tenant.key, ScheduledSend.userid == SWEEP_CLAIMANT,
                ScheduledSend.kind == SWEEP_KIND, ScheduledSend.day == night))
        raise
    await env.record_run(tenant.key, "approval_reconcile", night, added)
    return added


PULSE_PEOPLE_MAX = 10  # HR's card names the people answering late most often; the export has everyone


def _ratio(out: Outgoing, ok: int, n: int) -> str:
    return out.t("trace.pulse.value", pct=f"{ok / n * 100:.0f}%", ok=ok, n=n)


async def response_fields(out: Outgoing, week: str, people: list[str] | None = None) -> list[tuple[str, str]]:
    """The pulse's 风险响应及时率 of the quarter up to the end of `week`: the total, then per department
    (HR's card, `people` None) and per person (a manager's card: their line); nothing when none was measured."""
    last = week_days(week)[-1]
    first = date(last.year, 3 * ((last.month - 1) // 3) + 1, 1)
    start = datetime.combine(first, time(0), tzinfo=out.tenant.tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=out.tenant.tz)
    rates = await store.rates_by(out.session, out.tenant.key, start=start, end=end, people=people)
    if not rates["person"]:
        return []
    ok, n = sum(v[0] for v in rates["person"].values()), sum(v[1] for v in rates["person"].values())
    fields = [(out.t("trace.pulse.rate", quarter=f"{first.year}Q{(first.month - 1) // 3 + 1}"), _ratio(out, ok, n))]
    sep = out.t("trace.pulse.sep")
    if people is None:
        fields.append((out.t("trace.pulse.by_dept"), sep.join(
            f"{(d.split('/')[-1] or d) or '—'} {_ratio(out, *v)}" for d, v in sorted(rates["department"].items()))))
    ranked = sorted(rates["person"].items(), key=lambda kv: (kv[1][0] / kv[1][1], -kv[1][1], kv[0]))
    shown = ranked if people is not None else ranked[:PULSE_PEOPLE_MAX]
    names = [f"{await out.name_of(u)} {_ratio(out, *v)}" for u, v in shown]
    if len(ranked) > len(shown):
        names.append(out.t("trace.pulse.more", n=len(ranked) - len(shown)))
    fields.append((out.t("trace.pulse.by_person"), sep.join(names)))
    return fields
