"""The fact brief (多维事实简报): one person's records for one period, and the figures counted from them.

Every figure keeps the ids of the records it was counted from, so the document
can list them under it: a reader can check each number against its facts.
"""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.calendar import iso_week, week_days
from store.feedback import local_day_start
from store.models import (Employee, Escalation, Feedback, Goal, GoalAdjustment, Leave, Task, WeeklyAction)
from store.pulse import DONE_STATUSES, action_status
from store.live import counted_weeks, live_from
from store.task_figures import delivery_dues
from bot.core.timeutil import aware

_PERIOD = re.compile(r"^\s*(\d{4})\s*[-_ ]?\s*[Qq]\s*([1-4])\s*$")
DONE_TASK = "已完成"


# -- periods -----------------------------------------------------------------------------

def parse_period(text: str) -> str | None:
    """`2026Q4`, `2026 q4`, `2026-Q4` → '2026Q4'; None otherwise."""
    m = _PERIOD.match(unicodedata.normalize("NFKC", text or ""))
    return f"{m.group(1)}Q{m.group(2)}" if m else None


def quarter_of(d: date) -> str:
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def period_days(period: str) -> tuple[date, date]:
    """First and last day of a quarter."""
    canonical = parse_period(period)
    if canonical is None:
        raise ValueError(f"期间格式不对：{period!r}，应写成 2026Q4 这样的形式")
    year, q = int(canonical[:4]), int(canonical[-1])
    first = date(year, 3 * q - 2, 1)
    last = (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)) - timedelta(days=1)
    return first, last


def period_weeks(period: str, until: date | None = None) -> list[str]:
    """ISO weeks of a quarter (a week belongs where its Thursday falls), started by `until`."""
    first, last = period_days(period)
    thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    weeks = []
    while thursday <= last:
        monday = thursday - timedelta(days=3)
        if until is None or monday <= until:
            weeks.append(iso_week(thursday))
        thursday += timedelta(weeks=1)
    return weeks


# -- the records -----------------------------------------------------------------------------

@dataclass
class ActionRecord:
    id: int
    week: str
    goal_code: str
    thing: str
    witness: str
    status: str  # as people see it: 已确认, 已完成, 待见证, 进行中, 未完成
    done: bool
    confirmed: bool

    @property
    def anchor(self) -> str:
        return f"a{self.id}"


@dataclass
class LeaveRecord:
    id: int
    start: date
    end: date
    reason: str

    @property
    def anchor(self) -> str:
        return f"l{self.id}"


@dataclass
class FeedbackRecord:
    id: int
    day: date
    giver: str
    tag: str
    polarity: str
    impact: str
    event: str
    ref: str

    @property
    def anchor(self) -> str:
        return f"f{self.id}"


@dataclass
class AdjustmentRecord:
    id: int
    goal_code: str
    day: date
    by: str
    field_name: str
    old: str
    new: str
    reason: str
    note: str

    @property
    def anchor(self) -> str:
        return f"g{self.id}"


@dataclass
class TaskRecord:
    id: int
    code: str
    title: str
    due: datetime
    completed: datetime | None
    status: str
    outcome: str  # 按时交付 | 逾期交付 | 逾期未交付 | 未到期

    @property
    def anchor(self) -> str:
        return f"t{self.id}"


@dataclass
class EscalationRecord:
    id: int
    task_code: str
    level: int
    episode: int
    at: datetime
    resolved: datetime | None

    @property
    def anchor(self) -> str:
        return f"e{self.id}"


@dataclass
class Figure:
    """One number of the brief and the anchors of the records it counts."""

    key: str
    label: str
    value: str
    records: list[str] = field(default_factory=list)
    definition: str = ""


@dataclass
class Brief:
    tenant: str
    userid: str
    name: str
    department: str
    period: str
    first: date
    last: date
    as_of: date
    generated_at: datetime
    tz: ZoneInfo
    weeks: list[str]
    skipped_weeks: list[str]
    actions: list[ActionRecord]
    leaves: list[LeaveRecord]
    goals: dict[str, str]  # code → title, of the goals the actions served
    feedback: list[FeedbackRecord]
    adjustments: list[AdjustmentRecord]
    tasks: list[TaskRecord]
    escalations: list[EscalationRecord]

    # -- counts -------------------------------------------------------------------------
    @property
    def expected_weeks(self) -> list[str]:
        return [w for w in self.weeks if w not in self.skipped_weeks]

    @property
    def missed_weeks(self) -> list[str]:
        filled = {a.week for a in self.actions}
        return [w for w in self.expected_weeks if w not in filled]

    @property
    def done(self) -> list[ActionRecord]:
        return [a for a in self.actions if a.done]

    @property
    def confirmed(self) -> list[ActionRecord]:
        return [a for a in self.actions if a.confirmed]

    @property
    def linked(self) -> list[ActionRecord]:
        return [a for a in self.actions if a.goal_code]

    def served(self) -> list[tuple[str, str, list[ActionRecord]]]:
        """(code, title, actions) of each goal served, most served first."""
        out = [(code, title, [a for a in self.actions if a.goal_code == code]) for code, title in self.goals.items()]
        return sorted(out, key=lambda g: (-len(g[2]), g[0]))

    def feedback_groups(self) -> list[tuple[str, str, list[tuple[str, list[FeedbackRecord]]]]]:
        """(tag, polarity, [(impact, records)]) with the most frequent tag first."""
        tags: dict[tuple[str, str], dict[str, list[FeedbackRecord]]] = {}
        for f in self.feedback:
            tags.setdefault((f.tag, f.polarity), {}).setdefault(f.impact, []).append(f)
        order = {"客户级": 0, "团队级": 1, "流程级": 2}
        groups = [(tag, pol, sorted(by.items(), key=lambda kv: order.get(kv[0], 9)))
                  for (tag, pol), by in tags.items()]
        return sorted(groups, key=lambda g: (g[1] != "认可", -sum(len(r) for _, r in g[2]), g[0]))

    @property
    def due_tasks(self) -> list[TaskRecord]:
        return [t for t in self.tasks if t.outcome != "未到期"]

    @property
    def on_time(self) -> list[TaskRecord]:
        return [t for t in self.tasks if t.outcome == "按时交付"]

    def figures(self) -> list[Figure]:
        """The brief's numbers, each with the records it was counted from."""
        acts = [a.anchor for a in self.actions]
        praise = [f for f in self.feedback if f.polarity == "认可"]
        improve = [f for f in self.feedback if f.polarity == "改进"]
        episodes = {(e.task_code, e.episode) for e in self.escalations}
        figs = [
            Figure("weeks", "统计周数", str(len(self.weeks)), [],
                   f"{self.period} 中截至 {self.as_of.isoformat()} 已开始的周（周一至周日；跨季度的周算在它的周四所在的季度），"
                   "上线日期之前的周不计。"),
            Figure("skipped", "请假/跳过周", str(len(self.skipped_weeks)), [l.anchor for l in self.leaves],
                   "没有关键动作、且与请假记录有重叠的周；不计入应填周数。"),
            Figure("filled", "填写关键动作", f"{len(self.actions)}/{len(self.expected_weeks)} 周", acts,
                   "填写了关键动作的周数 ÷（统计周数 − 请假/跳过周）。"),
            Figure("missed", "未填写周", str(len(self.missed_weeks)), [],
                   "应填写而没有关键动作的周：" + ("、".join(self.missed_weeks) or "无")),
            Figure("done", "完成", f"{len(self.done)}/{len(self.actions)}", [a.anchor for a in self.done],
                   "状态为“已完成”或“已确认”的关键动作 ÷ 关键动作数。"),
            Figure("confirmed", "见证确认", f"{len(self.confirmed)}/{len(self.done)}",
                   [a.anchor for a in self.confirmed], "见证人确认完成的关键动作 ÷ 已完成的关键动作。"),
            Figure("linked", "目标关联", f"{len(self.linked)}/{len(self.actions)}", [a.anchor for a in self.linked],
                   "关联了目标编号的关键动作 ÷ 关键动作数。"),
            Figure("goals", "服务的目标", str(len(self.goals)), [a.anchor for a in self.linked],
                   "关键动作关联到的不同目标个数。"),
            Figure("feedback", "收到反馈", f"{len(self.feedback)} 条（认可 {len(praise)} · 改进 {len(improve)}）",
                   [f.anchor for f in self.feedback], "本期收到的微反馈条数，按标签极性分。"),
            Figure("adjustments", "目标调整", str(len(self.adjustments)), [g.anchor for g in self.adjustments],
                   "本期内所服务目标的调整记录条数（期初建立目标不计）。"),
            Figure("tasks", "按时交付", f"{len(self.on_time)}/{len(self.due_tasks)}", [t.anchor for t in self.due_tasks],
                   "本期到期的任务中按时完成的个数 ÷ 已到期的任务数。"),
            Figure("escalations", "阻塞升级", str(len(episodes)), [e.anchor for e in self.escalations],
                   "本期内本人负责的任务因逾期无更新而被升级的次数（同一次阻塞逐级上报算一次）。"),
        ]
        return figs


# -- building -------------------------------------------------------------------------------

async def build_brief(session: AsyncSession, tenant: str, userid: str, period: str, *, now: datetime,
                      tz: ZoneInfo) -> Brief:
    """Collect one person's records of `period` as of `now`."""
    person = (await session.execute(select(Employee).where(
        Employee.tenant == tenant, Employee.userid == userid))).scalar_one_or_none()
    if person is None:
        raise LookupError(f"no employee {userid!r} in tenant {tenant!r}")
    period = parse_period(period) or period
    first, last = period_days(period)
    today = now.astimezone(tz).date()
    as_of = min(today, last)
    start, end = local_day_start(first, tz), local_day_start(last + timedelta(days=1), tz)
    # Weeks before the go-live date are nobody's missed weeks.
    weeks = counted_weeks(period_weeks(period, until=today), await live_from(session, tenant))

    action_rows = list((await session.execute(select(WeeklyAction).where(
        WeeklyAction.tenant == tenant, WeeklyAction.userid == userid,
        WeeklyAction.week.in_(weeks or [""])).order_by(WeeklyAction.week))).scalars())
    leave_rows = []
    if weeks:
        span_first, span_last = week_days(weeks[0])[0], week_days(weeks[-1])[-1]
        leave_rows = list((await session.execute(select(Leave).where(
            Leave.tenant == tenant, Leave.userid == userid, Leave.start_day <= span_last,
            Leave.end_day >= span_first).order_by(Leave.start_day, Leave.id))).scalars())
    filled = {a.week for a in action_rows}
    skipped = [w for w in weeks if w not in filled and any(
        l.start_day <= week_days(w)[-1] and l.end_day >= week_days(w)[0] for l in leave_rows)]
    skipped_set = set(skipped)
    leaves = [LeaveRecord(l.id or 0, l.start_day, l.end_day, l.reason) for l in leave_rows
              if any(l.start_day <= week_days(w)[-1] and l.end_day >= week_days(w)[0] for w in skipped_set)]

    fb_rows = list((await session.execute(select(Feedback).where(
        Feedback.tenant == tenant, Feedback.receiver_userid == userid, Feedback.created_at >= start,
        Feedback.created_at < end).order_by(Feedback.created_at, Feedback.id))).scalars())

    codes = sorted({a.goal_code for a in action_rows if a.goal_code})
    goal_rows = list((await session.execute(select(Goal).where(
        Goal.tenant == tenant, Goal.code.in_(codes or [""])))).scalars())
    titles = {g.code: g.title for g in goal_rows}
    adj_rows = list((await session.execute(select(GoalAdjustment).where(
        GoalAdjustment.tenant == tenant, GoalAdjustment.goal_code.in_(codes or [""]),
        GoalAdjustment.at >= start, GoalAdjustment.at < end).order_by(GoalAdjustment.at, GoalAdjustment.id))).scalars())
    # Setting up the quarter's goals on its first day is planning, not an adjustment.
    adj_rows = [g for g in adj_rows if not (g.field_name == "new" and aware(g.at) < start + timedelta(days=1))]

    task_rows = list((await session.execute(select(Task).where(
        Task.tenant == tenant, Task.owner_userid == userid, Task.due_at >= start, Task.due_at < end)
        .order_by(Task.due_at, Task.id))).scalars())
    owned_ids = list((await session.execute(select(Task.id).where(
        Task.tenant == tenant, Task.owner_userid == userid))).scalars())
    esc_rows = list((await session.execute(select(Escalation).where(
        Escalation.tenant == tenant, Escalation.task_id.in_(owned_ids or [-1]), Escalation.created_at >= start,
        Escalation.created_at < end).order_by(Escalation.created_at, Escalation.id))).scalars())
    task_codes = {t.id: t.code for t in task_rows}
    missing = sorted({e.task_id for e in esc_rows} - set(task_codes))
    if missing:
        task_codes.update({i: c for i, c in (await session.execute(select(Task.id, Task.code).where(
            Task.tenant == tenant, Task.id.in_(missing)))).all()})

    names = await _names(session, tenant, {a.witness_userid for a in action_rows} | {f.giver_userid for f in fb_rows}
                         | {g.by_userid for g in adj_rows if g.by_userid})

    def week_over(week: str) -> bool:
        return week_days(week)[-1] < today

    actions = [ActionRecord(a.id or 0, a.week, a.goal_code or "", a.thing, names.get(a.witness_userid, a.witness_userid),
                            action_status(a, week_over(a.week)), a.status in DONE_STATUSES, a.status == "confirmed")
               for a in action_rows]
    action_weeks = {a.id: a.week for a in action_rows}
    feedback = [FeedbackRecord(f.id or 0, aware(f.created_at).astimezone(tz).date(),
                               names.get(f.giver_userid, f.giver_userid), f.tag, f.polarity, f.impact, f.event,
                               _ref(f, action_weeks, task_codes)) for f in fb_rows]
    adjustments = [AdjustmentRecord(g.id or 0, g.goal_code, aware(g.at).astimezone(tz).date(),
                                    names.get(g.by_userid, g.by_userid), g.field_name, g.old_value, g.new_value,
                                    g.reason, g.note) for g in adj_rows]
    # The same delivery due time as the task figures of the cards and the export.
    dues = await delivery_dues(session, tenant, task_rows, tz)
    tasks = [TaskRecord(t.id or 0, t.code, t.title, aware(t.due_at), aware(t.completed_at) if t.completed_at else None,
                        t.status, _outcome(t, now, dues.get(t.id or 0))) for t in task_rows]
    escalations = [EscalationRecord(e.id or 0, task_codes.get(e.task_id, str(e.task_id)), e.level, e.episode,
                                    aware(e.created_at), aware(e.resolved_at) if e.resolved_at else None)
                   for e in esc_rows]
    return Brief(tenant=tenant, userid=userid, name=person.name, department=person.department, period=period,
                 first=first, last=last, as_of=as_of, generated_at=now, tz=tz, weeks=weeks, skipped_weeks=skipped,
                 actions=actions, leaves=leaves, goals={c: titles.get(c, "") for c in codes}, feedback=feedback,
                 adjustments=adjustments, tasks=tasks, escalations=escalations)


def _outcome(t: Task, now: datetime, due: datetime | None = None) -> str:
    due = due or aware(t.due_at)
    if t.status == DONE_TASK and t.completed_at is not None:
        return "按时交付" if aware(t.completed_at) <= due else "逾期交付"
    return "逾期未交付" if due < now else "未到期"


def _ref(f: Feedback, action_weeks: dict[int | None, str], task_codes: dict[int, str]) -> str:
    if f.ref_kind == "action" and f.ref_id is not None:
        week = action_weeks.get(f.ref_id)
        return f"关键动作 {week}" if week else f"关键动作 #{f.ref_id}"
    if f.ref_kind == "task" and f.ref_id is not None:
        return f"任务 {task_codes.get(f.ref_id, '#' + str(f.ref_id))}"
    return ""


async def _names(session: AsyncSession, tenant: str, userids: set[str]) -> dict[str, str]:
    ids = sorted(u for u in userids if u)
    if not ids:
        return {}
    rows = await session.execute(select(Employee.userid, Employee.name).where(
        Employee.tenant == tenant, Employee.userid.in_(ids)))
    return {u: n for u, n in rows.all()}


# -- the document ----------------------------------------------------------------------------

# The goal import's field names, as a reader of the brief calls them.
FIELD_LABELS = {"title": "名称", "weight": "权重", "parent_code": "上级目标", "department": "部门", "period": "期间",
                "new": "新增", "cancelled": "取消", "status": "状态"}

_CSS = """
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222;line-height:1.6}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f5f5f5}.muted{color:#777;font-size:.9em}.event{white-space:pre-wrap}a{color:#1a5fb4}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=False)


def _links(anchors: list[str], labels: dict[str, str]) -> str:
    if not anchors:
        return "—"
    return "、".join(f'<a href="#{a}">{_e(labels.get(a, a))}</a>' for a in anchors)


def _when(dt: datetime | None, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else "—"


def render_html(brief: Brief) -> str:
    """The full brief as one self-contained HTML page; each number links to the records it counts."""
    b = brief
    labels: dict[str, str] = {}
    for a in b.actions:
        labels[a.anchor] = a.week
    for l in b.leaves:
        labels[l.anchor] = f"请假 {l.start:%m-%d}~{l.end:%m-%d}"
    for f in b.feedback:
        labels[f.anchor] = f"反馈 {f.day:%m-%d} #{f.tag}"
    for g in b.adjustments:
        labels[g.anchor] = f"{g.goal_code} {g.day:%m-%d}"
    for t in b.tasks:
        labels[t.anchor] = t.code
    for e in b.escalations:
        labels[e.anchor] = f"{e.task_code} L{e.level}"

    out: list[str] = [
        "<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>事实简报 · {_e(b.name)} · {_e(b.period)}</title><style>{_CSS}</style></head><body>",
        f"<h1>多维事实简报 · {_e(b.name)} · {_e(b.period)}</h1>",
        f'<p class="muted">{_e(b.department)}（{_e(b.userid)}）｜期间 {b.first.isoformat()} 至 {b.last.isoformat()}'
        f"｜统计截至 {b.as_of.isoformat()}｜生成于 {_when(b.generated_at, b.tz)}</p>",
        "<p>本简报只列事实：每个数字后面都列出了它所依据的记录，点击可跳到该记录。</p>",
        "<h2 id=\"figures\">概览</h2>",
        "<table><tr><th>指标</th><th>数值</th><th>依据的记录</th><th>口径</th></tr>",
    ]
    for fig in b.figures():
        out.append(f'<tr id="fig-{fig.key}"><td>{_e(fig.label)}</td><td><b>{_e(fig.value)}</b></td>'
                   f"<td>{_links(fig.records, labels)}</td><td class=\"muted\">{_e(fig.definition)}</td></tr>")
    out.append("</table>")

    out.append('<h2 id="actions">本周关键动作</h2>')
    if b.actions:
        out.append("<table><tr><th>周次</th><th>目标</th><th>关键动作</th><th>见证人</th><th>状态</th></tr>")
        for a in b.actions:
            goal = f"{a.goal_code} {b.goals.get(a.goal_code, '')}".strip() if a.goal_code else "（未关联）"
            out.append(f'<tr id="{a.anchor}"><td>{_e(a.week)}</td><td>{_e(goal)}</td><td>{_e(a.thing)}</td>'
                       f"<td>{_e(a.witness)}</td><td>{_e(a.status)}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>本期没有关键动作记录。</p>")
    if b.leaves:
        out.append("<p>请假/跳过：</p><ul>")
        for l in b.leaves:
            out.append(f'<li id="{l.anchor}">{l.start.isoformat()} 至 {l.end.isoformat()} {_e(l.reason)}</li>')
        out.append("</ul>")
    if b.missed_weeks:
        out.append(f"<p>未填写的周：{_e('、'.join(b.missed_weeks))}</p>")

    out.append('<h2 id="goals">服务的目标</h2>')
    served = b.served()
    if served:
        out.append("<ul>")
        for code, title, acts in served:
            out.append(f"<li>{_e(code)} {_e(title)}：{len(acts)} 次（{_links([a.anchor for a in acts], labels)}）</li>")
        out.append("</ul>")
    else:
        out.append("<p>本期关键动作没有关联目标。</p>")

    out.append('<h2 id="feedback">微反馈（按标签与影响范围）</h2>')
    groups = b.feedback_groups()
    if groups:
        for tag, polarity, by_impact in groups:
            n = sum(len(r) for _, r in by_impact)
            out.append(f"<h3>#{_e(tag)}（{_e(polarity)}）· {n} 条</h3>")
            for impact, records in by_impact:
                out.append(f"<p><b>{_e(impact)}</b> · {len(records)} 条</p><ul>")
                for f in records:
                    ref = f"｜关联：{_e(f.ref)}" if f.ref else ""
                    out.append(f'<li id="{f.anchor}"><span class="muted">{f.day.isoformat()} · {_e(f.giver)}{ref}</span><br>'
                               f'<span class="event">{_e(f.event)}</span></li>')
                out.append("</ul>")
    else:
        out.append("<p>本期没有收到微反馈。</p>")

    out.append('<h2 id="adjustments">目标调整</h2>')
    if b.adjustments:
        out.append("<table><tr><th>日期</th><th>目标</th><th>调整</th><th>原因</th><th>调整人</th></tr>")
        for g in b.adjustments:
            label = FIELD_LABELS.get(g.field_name, g.field_name)
            change = f"{label}：{g.old or '—'} → {g.new or '—'}" + (f"（{g.note}）" if g.note else "")
            out.append(f'<tr id="{g.anchor}"><td>{g.day.isoformat()}</td><td>{_e(g.goal_code)}</td><td>{_e(change)}</td>'
                       f"<td>{_e(g.reason)}</td><td>{_e(g.by or '—')}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>本期所服务的目标没有调整。</p>")

    out.append('<h2 id="tasks">跨职能任务与阻塞升级</h2>')
    if b.tasks:
        out.append("<table><tr><th>任务</th><th>名称</th><th>截止</th><th>完成</th><th>状态</th><th>结果</th></tr>")
        for t in b.tasks:
            out.append(f'<tr id="{t.anchor}"><td>{_e(t.code)}</td><td>{_e(t.title)}</td><td>{_when(t.due, b.tz)}</td>'
                       f"<td>{_when(t.completed, b.tz)}</td><td>{_e(t.status)}</td><td>{_e(t.outcome)}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>本期没有到期的任务。</p>")
    if b.escalations:
        out.append("<table><tr><th>任务</th><th>级别</th><th>升级时间</th><th>解除时间</th></tr>")
        for e in b.escalations:
            out.append(f'<tr id="{e.anchor}"><td>{_e(e.task_code)}</td><td>L{e.level}</td><td>{_when(e.at, b.tz)}</td>'
                       f"<td>{_when(e.resolved, b.tz)}</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
