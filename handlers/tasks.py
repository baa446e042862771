"""Cross-functional tasks in chat: create them, report progress, and answer task and escalation cards.

Grammar (one line each; full-width punctuation and spaces are fine):

    任务                                   list my open tasks
    任务 T12                               show a task and its history
    任务 <项目> <编号> <标题> @负责人 [@协作人 …] <截止> [交付:<交付物要求>]
        e.g. 任务 发布会 T12 直播系统压测 @唐凯 12-01 12:00 交付:压测报告
        <截止> is `12-01 12:00`, `2026-12-01 12:00`, `12月1日 12点` or `明天 18:00`;
        without a time it means the end of the working day.
    任务 T12 [新标题] [@负责人 [@协作人 …]] [<截止>] [交付:…] [原因:…]   change an existing task
    进度 T12 进行中 | 进度 T12 阻塞 <原因> | 进度 T12 完成 <交付物文字或链接>
        (the code may be left out by someone with exactly one open task)

A 阻塞 needs a reason and a 完成 needs the deliverable when the task names one:
when missing, the bot asks for it and keeps the question open.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select

from pydantic import Field

from bot.core.config import Section
from cards.model import Button, Card
from bot.core.calendar import WorkCalendar
from bot.core.timeutil import aware
from cards import texts
from handlers import tasks_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.context import Context
from handlers.dates import Calendar, DateError, as_datetime, find_due
from handlers.feedback import GiveFeedback
from handlers.people import Directory, tenant_directory
from handlers.reply_grammar import fold_width
from handlers.router import Router
from store.pulse import reporting_line
from store.scheduled import claim_send
from store.models import Employee, Escalation, IssuedCard, Project, Task, TaskUpdate
from store.statuses import TaskField, TaskStatus, TaskUpdateKind
from store.tasks import (BLOCKED, DONE, OPEN_STATUSES, collaborator_list, episode_of, find_project, find_task,
                         normalize_task_code, resolve_escalations, utc)

router = Router("tasks")


class TaskSettings(Section, name="tasks", legacy={
        "escalate_after_hours": "escalate_after_hours", "escalate_climb_hours": "escalate_climb_hours"}):
    """[tenants.tasks]"""

    escalate_after_hours: float = Field(2.0, gt=0)  # past due and no status update for this long → escalate
    escalate_climb_hours: float = Field(4.0, gt=0)  # still stale this much later → one level up
    # The owner is reminded this many working hours before the due time (0: no early reminder),
    # and again when it comes.
    remind_before_working_hours: float = Field(2.0, ge=0)
    remind_at_due: bool = True

OWNER_CARD = "task_owner"
ESCALATION_CARD = "task_escalation"
VIEW_CARD = "task_view"
ASK_BLOCK_REASON = "task_block_reason"
ASK_DELIVERABLE = "task_deliverable"
ASK_NEW_DUE = "task_new_due"

# Roles that may start tasks (and, for a new project code, become its PMO).
CREATOR_ROLES = ("pmo", "admin", "manager")
# Roles that may change any task, besides the project's PMO and the task's creator.
EDITOR_ROLES = ("pmo", "admin")
# Roles that may look at any task: those who may change any, and HR (tasks are facts of reviews).
VIEWER_ROLES = ("pmo", "admin", "hr")
OWNER_CARD_TTL_HOURS = 24 * 14
ESCALATION_CARD_TTL_HOURS = 72  # WeCom response codes live 72 h
HISTORY_LINES = 12

# Longest first: in `完成了 报告` the deliverable is `报告`, not `了 报告`.
_STATUS_WORDS: tuple[tuple[str, TaskStatus], ...] = tuple(sorted((
    ("待开始", TaskStatus.TODO), ("未开始", TaskStatus.TODO),
    ("进行中", TaskStatus.DOING), ("开始", TaskStatus.DOING), ("在做", TaskStatus.DOING), ("处理中", TaskStatus.DOING), ("推进中", TaskStatus.DOING),
    ("阻塞", TaskStatus.BLOCKED), ("受阻", TaskStatus.BLOCKED), ("卡住", TaskStatus.BLOCKED), ("卡住了", TaskStatus.BLOCKED),
    ("已完成", TaskStatus.DONE), ("完成", TaskStatus.DONE), ("完成了", TaskStatus.DONE), ("已交付", TaskStatus.DONE),
    ("doing", TaskStatus.DOING), ("blocked", TaskStatus.BLOCKED), ("done", TaskStatus.DONE),
), key=lambda p: -len(p[0])))
# A deliverable has to say something: these say only that it is done.
_VAGUE_DELIVERABLES = frozenset({"完成", "已完成", "好了", "好", "ok", "done", "已交付", "交付", "提交", "已提交",
                                 "见附件", "无", "-", "—", "搞定", "已搞定"})

_MENTION = re.compile(r"@\s*([^\s@,;:、，；：]+)")
_SEGMENT = re.compile(r"(交付物要求|交付物|交付|原因)\s*:")
_CODE_HEAD = re.compile(r"\s*([A-Za-z][A-Za-z0-9_\-]*)\s*[:,]?\s*")


# -- formatting and lookups ---------------------------------------------------------------------
def local(ctx: Context, dt: datetime) -> datetime:
    return aware(dt).astimezone(ctx.tenant.tz)


def fmt_time(ctx: Context, dt: datetime) -> str:
    """'12-01 12:00', with the year when it is not this year."""
    loc = local(ctx, dt)
    return loc.strftime("%m-%d %H:%M" if loc.year == local(ctx, ctx.now).year else "%Y-%m-%d %H:%M")


def fmt_hours(hours: float) -> str:
    return f"{hours:g}"


def status_label(task: Task, locale: str = "zh") -> str:
    """The status as people read it (阻塞（等采购确认）); the stored value never reaches them."""
    label = TaskStatus(task.status).label(locale)
    if task.status == BLOCKED and task.block_reason:
        return texts.t(locale, "task.status.blocked_by", status=label, reason=task.block_reason)
    return label


async def names(ctx: Context, userids: list[str]) -> str:
    return "、".join([await ctx.name_of(u) for u in userids])


async def project_of(ctx: Context, task: Task) -> Project | None:
    return (await ctx.session.execute(select(Project).where(
        Project.tenant == ctx.tenant.key, Project.id == task.project_id))).scalar_one_or_none()


async def task_by_id(ctx: Context, task_id: Any) -> Task | None:
    if not isinstance(task_id, int):
        return None
    return (await ctx.session.execute(select(Task).where(
        Task.tenant == ctx.tenant.key, Task.id == task_id))).scalar_one_or_none()


def assign_send_kind(task_id: int) -> str:
    """ScheduledSend kind that makes the assignment card go once per owner."""
    return f"task_assign:{task_id}"


def due_send_kind(task_id: int) -> str:
    """ScheduledSend kind (day = the due day) that makes the due-day card go once."""
    return f"task_due:{task_id}"


def due_card_day(ctx: Context, task: Task, today: date, next_working: date) -> bool:
    """Whether `today` is the day to remind of the due time: the last working day on or before it."""
    due_day = local(ctx, task.due_at).date()
    return today <= due_day < next_working


# -- cards --------------------------------------------------------------------------------
async def task_fields(ctx: Context, task: Task, *, with_owner: bool = False) -> list[tuple[str, str]]:
    project = await project_of(ctx, task)
    fields = [(ctx.t("task.field.project"), project.name if project else "—")]
    if with_owner:
        fields.append((ctx.t("task.field.owner"), await ctx.name_of(task.owner_userid)))
    fields += [(ctx.t("task.field.due"), fmt_time(ctx, task.due_at)),
               (ctx.t("task.field.deliverable"), task.deliverable_template or "—"),
               (ctx.t("task.field.status"), status_label(task, ctx.locale))]
    collab = collaborator_list(task)
    if collab:
        fields.append((ctx.t("task.field.collaborators"), await names(ctx, collab)))
    return fields


async def send_owner_card(ctx: Context, task: Task, *, title_key: str, body: str) -> Card:
    """The card with 进行中 / 阻塞 / 完成 for the task's owner."""
    card = Card(title=ctx.t(title_key, code=task.code, title=task.title), body=body,
                fields=await task_fields(ctx, task), buttons=_status_buttons(ctx))
    return await ctx.issue_card(task.owner_userid, OWNER_CARD, card, ref_id=task.id,
                                ttl_hours=OWNER_CARD_TTL_HOURS)


def _status_buttons(ctx: Context) -> list[Button]:
    return [Button("progress", ctx.t("task.btn.progress")), Button("blocked", ctx.t("task.btn.blocked")),
            Button("done", ctx.t("task.btn.done"), "primary")]


def fmt_since(ctx: Context, since: datetime) -> str:
    """How long ago `since` was, as people say it: 40 分钟, 5 小时, 1 天 3 小时."""
    minutes = max(0, int((ctx.now - aware(since)).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return ctx.t("time.days_hours", d=days, h=hours) if hours else ctx.t("time.days", d=days)
    if hours:
        return ctx.t("time.hours", h=hours)
    return ctx.t("time.minutes", m=mins)


async def send_escalation_card(ctx: Context, task: Task, *, userid: str, level: int, episode: int,
                               told_before: list[str]) -> Card:
    """The 阻塞预警 card with 催办 / 调整截止 / 查看."""
    owner = await ctx.name_of(task.owner_userid)
    # The real time since the last status update, not the rule's threshold: a card that went out
    # at the next working morning says how long the task has really been silent.
    since = fmt_since(ctx, task.status_updated_at)
    if level == 1:
        body = ctx.t("task.esc.body", owner=owner, due=fmt_time(ctx, task.due_at), since=since)
    else:
        body = ctx.t("task.esc.body.up", owner=owner, due=fmt_time(ctx, task.due_at),
                     told=await names(ctx, told_before), since=since)
    fields = await task_fields(ctx, task, with_owner=True)
    fields.append((ctx.t("task.field.updated"), fmt_time(ctx, task.status_updated_at)))
    card = Card(title=ctx.t("task.esc.title" if level == 1 else "task.esc.title.up", code=task.code, title=task.title),
                body=body, fields=fields,
                buttons=[Button("nudge", ctx.t("task.btn.nudge"), "primary"), Button("due", ctx.t("task.btn.due")),
                         Button("view", ctx.t("task.btn.view"))])
    return await ctx.issue_card(userid, ESCALATION_CARD, card, ref_id=task.id,
                                data={"episode": episode, "level": level}, ttl_hours=ESCALATION_CARD_TTL_HOURS)


async def close_escalation_cards(ctx: Context, task: Task, result: str, *, episode: int | None = None) -> None:
    """Grey out the escalation cards of a task (of one episode, or all)."""
    rows = (await ctx.session.execute(select(IssuedCard).where(
        IssuedCard.tenant == ctx.tenant.key, IssuedCard.kind == ESCALATION_CARD,
        IssuedCard.ref_id == task.id, IssuedCard.state == "open"))).scalars()
    for row in list(rows):
        if episode is None or row.data.get("episode") == episode:
            await ctx.close_card(row, result)


async def show_task(ctx: Context, task: Task) -> None:
    """The task with its history (status changes, due adjustments, nudges, escalations)."""
    ups = list((await ctx.session.execute(select(TaskUpdate).where(
        TaskUpdate.tenant == ctx.tenant.key, TaskUpdate.task_id == task.id)))
        .scalars())
    escs = list((await ctx.session.execute(select(Escalation).where(
        Escalation.tenant == ctx.tenant.key, Escalation.task_id == task.id))).scalars())
    events: list[tuple[datetime, int, str]] = []
    for u in ups:
        who = await ctx.name_of(u.by_userid) if u.by_userid else ctx.t("task.hist.system")
        events.append((aware(u.at), u.id or 0, await _history_line(ctx, u, who)))
    last = 1 << 62  # a resolution is told after the update that caused it
    for e in escs:
        key = "task.hist.escalated" if e.level == 1 else "task.hist.climbed"
        events.append((aware(e.created_at), 0, ctx.t(key, to=await names(ctx, [x for x in e.to_userids.split(";") if x]))))
        if e.resolved_at is not None and e.level == 1:
            events.append((aware(e.resolved_at), last, ctx.t("task.hist.resolved")))
    events.sort(key=lambda ev: (ev[0], ev[1]))
    lines = [f"{fmt_time(ctx, at)} {text}" for at, _, text in events[-HISTORY_LINES:]]
    fields = await task_fields(ctx, task, with_owner=True)
    if task.status == DONE:
        fields.append((ctx.t("task.field.delivered"), task.deliverable or "—"))
    body = "\n".join(lines) or ctx.t("task.hist.none")
    me = ctx.event.userid
    if task.status != DONE and (me == task.owner_userid or me in collaborator_list(task)):
        # The people doing the task get its status buttons right here (the owner card's kind).
        card = Card(title=ctx.t("task.view.title", code=task.code, title=task.title), body=body, fields=fields,
                    buttons=_status_buttons(ctx))
        await ctx.issue_card(me, OWNER_CARD, card, ref_id=task.id, ttl_hours=OWNER_CARD_TTL_HOURS)
        return
    card = Card(title=ctx.t("task.view.title", code=task.code, title=task.title), body=body, fields=fields,
                buttons=[Button(GiveFeedback(about="task").pack(), ctx.t("task.btn.feedback"))])
    await ctx.issue_card(me, VIEW_CARD, card, ref_id=task.id)


async def _history_line(ctx: Context, u: TaskUpdate, who: str) -> str:
    if u.kind == "created":
        return ctx.t("task.hist.created", who=who) if u.by_userid else ctx.t("task.hist.imported")
    if u.kind == "status":
        note = f"（{u.note}）" if u.note else ""
        return ctx.t("task.hist.status", who=who, old=_status_word(ctx, u.old_value),
                     new=_status_word(ctx, u.new_value), note=note)
    if u.kind == "due":
        return ctx.t("task.hist.due", who=who, old=u.old_value, new=u.new_value, note=u.note)
    if u.kind == "nudge":
        return ctx.t("task.hist.nudge", who=who)
    field = TaskField.from_label(u.note)  # the field's value (owner …); rows before 0006 were migrated
    if field is TaskField.OWNER:
        old, new = await ctx.name_of(u.old_value), await ctx.name_of(u.new_value)
    else:
        old, new = u.old_value or "—", u.new_value or "—"
    return ctx.t("task.hist.edit", who=who, field=field.label(ctx.locale) if field else u.note, old=old, new=new)


def _status_word(ctx: Context, value: str) -> str:
    status = TaskStatus.from_label(value) if value else None
    return status.label(ctx.locale) if status else value


# -- permissions ----------------------------------------------------------------------------
def _has_any(emp: Employee | None, roles: tuple[str, ...]) -> bool:
    return emp is not None and any(emp.has_role(r) for r in roles)


async def may_report(ctx: Context, task: Task) -> bool:
    """Owner, collaborators and the project's PMO may report progress."""
    me = ctx.event.userid
    if me == task.owner_userid or me in collaborator_list(task):
        return True
    project = await project_of(ctx, task)
    return project is not None and project.pmo_userid == me


async def may_view(ctx: Context, task: Task) -> bool:
    """People on the task, the project's PMO, the task's creator, managers of its people, and pmo/admin/hr."""
    if _has_any(ctx.me, VIEWER_ROLES) or await may_report(ctx, task):
        return True
    line = await reporting_line(ctx.session, ctx.tenant.key, ctx.event.userid)
    if line & {task.owner_userid, *collaborator_list(task)}:
        return True
    creator = (await ctx.session.execute(select(TaskUpdate.by_userid).where(
        TaskUpdate.tenant == ctx.tenant.key, TaskUpdate.task_id == task.id, TaskUpdate.kind == "created"))).scalars().first()
    return creator == ctx.event.userid


async def may_edit(ctx: Context, task: Task, project: Project | None) -> bool:
    if _has_any(ctx.me, EDITOR_ROLES) or (project is not None and project.pmo_userid == ctx.event.userid):
        return True
    creator = (await ctx.session.execute(select(TaskUpdate.by_userid).where(
        TaskUpdate.tenant == ctx.tenant.key, TaskUpdate.task_id == task.id, TaskUpdate.kind == "created"))).scalars().first()
    return creator == ctx.event.userid


# -- parsing ----------------------------------------------------------------------------------
@dataclass
class TaskLine:
    """A `任务 …` line taken apart; nothing is looked up yet."""

    words: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    due: datetime | None = None  # naive tenant-local
    due_error: str = ""
    deliverable: str | None = None
    reason: str | None = None


def parse_due_text(text: str, today: date, default_time: time, calendar: Calendar | None = None,
                   ) -> tuple[datetime | None, str, tuple[int, int] | None]:
    """Find a due time in free text: (naive local datetime, error, (start, end) of the match).

    `12-01 12:00`, `明天 18:00`, `周五`, `下周一下午3点`, `5号`, `月底` (the month's last working
    day on `calendar`). A day that is already past is an error asking whether next year (or
    month, or week) was meant: a due is never moved there in silence.
    """
    try:
        found = find_due(text, today, default_time, calendar)
    except DateError as exc:
        span = exc.at
        what = "时间" if exc.code == "invalid_time" else "日期"
        return None, f"{what} {exc.token} 无效，请写成 12-01 12:00 这样的格式", span
    if found is None:
        return None, "", None
    if found.past and found.suggested is not None:
        suggested = f"{found.suggested[1].isoformat()} {(found.time or default_time):%H:%M}"
        return None, texts.t("zh", "date.past", token=found.token, suggested=suggested), found.at
    return as_datetime(found), "", found.at


def parse_task_line(text: str, today: date, default_time: time, calendar: Calendar | None = None) -> TaskLine:
    line = TaskLine()
    folded = fold_width(text)
    segs = list(_SEGMENT.finditer(folded))
    head_end = segs[0].start() if segs else len(text)
    for i, m in enumerate(segs):
        end = segs[i + 1].start() if i + 1 < len(segs) else len(text)
        value = " ".join(text[m.end():end].split()).strip("，,；; ")
        if m.group(1) == "原因":
            line.reason = value
        else:
            line.deliverable = value
    head = list(text[:head_end])
    for m in _MENTION.finditer(folded[:head_end]):
        line.mentions.append(text[m.start(1):m.end(1)])
        head[m.start():m.end()] = [" "] * (m.end() - m.start())
    rest = "".join(head)
    due, error, span = parse_due_text(rest, today, default_time, calendar)
    if span is not None:
        line.due, line.due_error = due, error
        rest = rest[:span[0]] + " " + rest[span[1]:]
    line.words = rest.split()
    return line


def parse_progress(text: str) -> tuple[str | None, str | None, str]:
    """'T12 阻塞 等采购确认' → ('T12', '阻塞', '等采购确认'); the code and the status may be missing."""
    folded = fold_width(text).strip()
    original = text.strip()
    code = None
    pos = 0
    m = _CODE_HEAD.match(folded)
    if m and m.group(1).casefold() not in {w for w, _ in _STATUS_WORDS}:
        code = normalize_task_code(m.group(1))
        pos = m.end()
    status = None
    low = folded[pos:].casefold()
    for word, value in _STATUS_WORDS:
        if low.startswith(word):
            status = value
            pos += len(word)
            break
    note = " ".join(original[pos:].split()).strip(":：,，;； ")
    return code, status, note


async def _directory(ctx: Context) -> Directory:
    return await tenant_directory(ctx.session, ctx.tenant.key)


async def _resolve_people(ctx: Context, tokens: list[str], problems: list[str]) -> list[str]:
    """Userids for @-tokens (platform-resolved mentions are userids already)."""
    if ctx.event.mentions:
        return list(dict.fromkeys(ctx.event.mentions))
    people = await _directory(ctx)
    out: list[str] = []
    for token in tokens:
        m = people.resolve(token)
        if m.status == "one" and m.person is not None:
            if m.person.userid not in out:
                out.append(m.person.userid)
        elif m.status == "choose":
            options = "、".join(f"{p.name}（{p.department.split('/')[-1] or p.userid}）" for p in m.candidates)
            problems.append(ctx.t("task.person.many", token=token, options=options))
        else:
            problems.append(ctx.t("task.person.none", token=token))
    return out


# -- 任务 ----------------------------------------------------------------------------------------


async def _ask(ctx: Context, kind: str, data: dict[str, Any], question: str, **kw: Any) -> None:
    """Ask one question and wait for its answer; 继续 after an interruption asks it again."""
    await ctx.set_conversation(kind, {**data, "question": question, "question_kw": kw})
    ctx.reply(ctx.t(question, **kw))


async def _ask_again(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    ctx.reply(ctx.t(str(data.get("question") or "flow.resumed"), **dict(data.get("question_kw") or {"what": ""})))


@router.command("task", words=("任务", "task"), args=True,
                access=("view_task", "create_task", "edit_task"))
async def on_task(ctx: Context) -> None:
    rest = ctx.args
    if not rest:
        await list_my_tasks(ctx)
        return
    today = local(ctx, ctx.now).date()
    line = parse_task_line(rest, today, ctx.tenant.work_hours_end, WorkCalendar(ctx.tenant))
    if not line.words:
        ctx.reply(ctx.t("task.usage"))
        return
    existing = await find_task(ctx.session, ctx.tenant.key, line.words[0])
    if existing is not None:
        if len(line.words) == 1 and not line.mentions and line.due is None and not line.due_error \
                and line.deliverable is None:
            if not await may_view(ctx, existing):
                ctx.reply(ctx.t("task.no_right.view", code=existing.code))
                return
            await show_task(ctx, existing)
            return
        await _edit_task(ctx, existing, line, title_words=line.words[1:])
        return
    if len(line.words) < 2 or normalize_task_code(line.words[1]) is None:
        if len(line.words) == 1 and normalize_task_code(line.words[0]):
            ctx.reply(ctx.t("task.unknown", code=normalize_task_code(line.words[0])))
        else:
            ctx.reply(ctx.t("task.need_code") + "\n" + ctx.t("task.usage"))
        return
    code = normalize_task_code(line.words[1]) or ""
    project = await find_project(ctx.session, ctx.tenant.key, line.words[0])
    task = await find_task(ctx.session, ctx.tenant.key, code)
    if task is not None:
        if project is None or task.project_id != project.id:
            other = await project_of(ctx, task)
            ctx.reply(ctx.t("task.code_taken", code=code, project=other.name if other else "—"))
            return
        await _edit_task(ctx, task, line, title_words=line.words[2:])
        return
    await _create_task(ctx, line, project_token=line.words[0], project=project, code=code)


async def _create_task(ctx: Context, line: TaskLine, *, project_token: str, project: Project | None, code: str) -> None:
    me = ctx.me
    assert me is not None
    if not (_has_any(me, CREATOR_ROLES) or (project is not None and project.pmo_userid == me.userid)):
        ctx.reply(ctx.t("task.no_right.create"))
        return
    problems: list[str] = []
    title = " ".join(line.words[2:]).strip("，,；; ")
    if not title:
        problems.append(ctx.t("task.need_title"))
    people = await _resolve_people(ctx, line.mentions, problems)
    if not line.mentions and not ctx.event.mentions:
        problems.append(ctx.t("task.need_owner"))
    if line.due_error:
        problems.append(line.due_error)
    elif line.due is None:
        problems.append(ctx.t("task.need_due"))
    due = line.due.replace(tzinfo=ctx.tenant.tz) if line.due is not None else None
    if due is not None and due <= ctx.now:
        problems.append(ctx.t("task.due_past", due=fmt_time(ctx, due)))
    if len(title) > 100:
        problems.append(ctx.t("task.title_long", n=len(title)))
    if problems:
        ctx.reply("\n".join(problems) + "\n" + ctx.t("task.usage"))
        return
    assert due is not None and people
    new_project = project is None
    if project is None:
        if len(project_token) > 40:
            ctx.reply(ctx.t("task.project_long"))
            return
        project = Project(tenant=ctx.tenant.key, code=project_token, name=project_token, pmo_userid=me.userid,
                          created_at=utc(ctx.now))
        ctx.session.add(project)
        await ctx.session.flush()
    owner, collaborators = people[0], [u for u in people[1:] if u != people[0]]
    task = Task(tenant=ctx.tenant.key, project_id=project.id or 0, code=code, title=title, owner_userid=owner,
                collaborators=";".join(collaborators), due_at=utc(due), deliverable_template=line.deliverable or "",
                status=TaskStatus.TODO, created_at=utc(ctx.now), status_updated_at=utc(ctx.now))
    ctx.session.add(task)
    await ctx.session.flush()
    ctx.session.add(TaskUpdate(tenant=ctx.tenant.key, task_id=task.id or 0, by_userid=me.userid, at=utc(ctx.now),
                               kind=TaskUpdateKind.CREATED, new_value=TaskStatus.TODO, note="对话创建"))
    await notify_assignment(ctx, task, by=me.name)
    for uid in collaborators:
        ctx.send(uid, ctx.t("task.collab.added", who=me.name, code=code, title=title,
                            owner=await ctx.name_of(owner)))
    reply = ctx.t("task.created", code=code, title=title, project=project.name, owner=await ctx.name_of(owner),
                  due=fmt_time(ctx, task.due_at))
    if new_project:
        reply += "\n" + ctx.t("task.project_new", project=project.code)
    ctx.reply(reply)


async def notify_assignment(ctx: Context, task: Task, *, by: str) -> None:
    """The assignment card to the owner, claimed so the scan does not send it again."""
    assert task.id is not None
    await claim_send(ctx.session, ctx.tenant.key, task.owner_userid, assign_send_kind(task.id), "assign", utc(ctx.now))
    today = local(ctx, ctx.now).date()
    if due_card_day(ctx, task, today, WorkCalendar(ctx.tenant).next_working_day(today)):
        # The assignment card already says it is due today.
        await claim_send(ctx.session, ctx.tenant.key, task.owner_userid, due_send_kind(task.id),
                         local(ctx, task.due_at).date().isoformat(), utc(ctx.now))
    project = await project_of(ctx, task)
    await send_owner_card(ctx, task, title_key="task.card.new",
                          body=ctx.t("task.card.new.body", who=by, project=project.name if project else "—"))


async def _edit_task(ctx: Context, task: Task, line: TaskLine, *, title_words: list[str]) -> None:
    project = await project_of(ctx, task)
    if not await may_edit(ctx, task, project):
        ctx.reply(ctx.t("task.no_right.edit", code=task.code))
        return
    problems: list[str] = []
    people = await _resolve_people(ctx, line.mentions, problems) if (line.mentions or ctx.event.mentions) else []
    if line.due_error:
        problems.append(line.due_error)
    due = line.due.replace(tzinfo=ctx.tenant.tz) if line.due is not None else None
    if due is not None and due <= ctx.now:
        problems.append(ctx.t("task.due_past", due=fmt_time(ctx, due)))
    if problems:
        ctx.reply("\n".join(problems))
        return
    changes: list[str] = []
    by = ctx.event.userid
    now = utc(ctx.now)

    def log(label: str, old: str, new: str) -> None:
        ctx.session.add(TaskUpdate(tenant=ctx.tenant.key, task_id=task.id or 0, by_userid=by, at=now, kind="edit",
                                   old_value=old, new_value=new, note=label))

    title = " ".join(title_words).strip("，,；; ")
    if title and title != task.title:
        log(TaskField.TITLE, task.title, title)
        changes.append(f"{ctx.t('task.field.title')} {task.title} → {title}")
        task.title = title
    old_owner = task.owner_userid
    if people:
        if people[0] != task.owner_userid:
            log(TaskField.OWNER, task.owner_userid, people[0])
            changes.append(f"{ctx.t('task.field.owner')} {await ctx.name_of(task.owner_userid)} → {await ctx.name_of(people[0])}")
            task.owner_userid = people[0]
        collab = [u for u in people[1:] if u != people[0]]
        if len(people) > 1 and ";".join(collab) != task.collaborators:
            log(TaskField.COLLABORATORS, task.collaborators, ";".join(collab))
            changes.append(f"{ctx.t('task.field.collaborators')} {await names(ctx, collab)}")
            task.collaborators = ";".join(collab)
    if line.deliverable is not None and line.deliverable != task.deliverable_template:
        log(TaskField.DELIVERABLE, task.deliverable_template, line.deliverable)
        changes.append(f"{ctx.t('task.field.deliverable')} {line.deliverable or '—'}")
        task.deliverable_template = line.deliverable
    if due is not None and utc(due) != utc(task.due_at):
        old = fmt_time(ctx, task.due_at)
        await change_due(ctx, task, utc(due), line.reason or ctx.t("task.due.edit_reason"))
        changes.append(f"{ctx.t('task.field.due')} {old} → {fmt_time(ctx, task.due_at)}")
    if not changes:
        ctx.reply(ctx.t("task.edit.nothing"))
        return
    ctx.session.add(task)
    summary = "；".join(changes)
    if task.owner_userid != old_owner:
        ctx.send(old_owner, ctx.t("task.owner.moved", code=task.code, title=task.title,
                                  owner=await ctx.name_of(task.owner_userid)))
        await notify_assignment(ctx, task, by=await ctx.name_of(by))
    elif by != task.owner_userid:
        ctx.send(task.owner_userid, ctx.t("task.edited.owner", who=await ctx.name_of(by), code=task.code,
                                          changes=summary))
    ctx.reply(ctx.t("task.edited", code=task.code, changes=summary))


async def list_my_tasks(ctx: Context) -> None:
    """The sender's open tasks, and for a PMO the open tasks of the projects they run."""
    me = ctx.event.userid
    rows = list((await ctx.session.execute(select(Task).where(
        Task.tenant == ctx.tenant.key, Task.status.in_(OPEN_STATUSES)).order_by(Task.due_at, Task.code))).scalars())
    mine = [t for t in rows if t.owner_userid == me or me in collaborator_list(t)]
    run = {p.id: p for p in (await ctx.session.execute(select(Project).where(
        Project.tenant == ctx.tenant.key, Project.pmo_userid == me))).scalars()}
    theirs = [t for t in rows if t.project_id in run and t not in mine]
    if not mine and not theirs:
        ctx.reply(ctx.t("task.list.none"))
        return
    lines: list[str] = []
    if mine:
        lines.append(ctx.t("task.list.head", n=len(mine)))
        for t in mine:
            role = "" if t.owner_userid == me else ctx.t("task.list.collab")
            lines.append(await _list_line(ctx, t, role))
    if theirs:
        lines.append(ctx.t("task.list.pmo", n=len(theirs), projects="、".join(sorted(p.name for p in run.values()))))
        for t in theirs:
            lines.append(await _list_line(ctx, t, "｜" + ctx.t("task.field.owner") + " " + await ctx.name_of(t.owner_userid)))
    lines.append(ctx.t("task.list.hint", code=(mine or theirs)[0].code))
    ctx.reply("\n".join(lines))


async def _list_line(ctx: Context, t: Task, suffix: str) -> str:
    project = await project_of(ctx, t)
    late = ctx.t("task.list.late") if aware(t.due_at) < ctx.now else ""
    return (f"· {t.code} {t.title}｜{project.name if project else '—'}｜"
            f"{ctx.t('task.field.due')} {fmt_time(ctx, t.due_at)}{late}｜{status_label(t, ctx.locale)}{suffix}")


# -- 进度 -----------------------------------------------------------------------------------------
@router.command("progress", words=("进度", "progress"), args=True, access="report_task")
async def on_progress(ctx: Context) -> None:
    rest = ctx.args
    if not rest:
        await list_my_tasks(ctx)
        return
    code, status, note = parse_progress(rest)
    if code is not None:
        task = await find_task(ctx.session, ctx.tenant.key, code)
        if task is None:
            ctx.reply(ctx.t("task.unknown", code=code))
            return
    else:
        mine = list((await ctx.session.execute(select(Task).where(
            Task.tenant == ctx.tenant.key, Task.owner_userid == ctx.event.userid,
            Task.status.in_(OPEN_STATUSES)))).scalars())
        if len(mine) != 1:
            ctx.reply(ctx.t("task.progress.which") if mine else ctx.t("task.list.none"))
            return
        task = mine[0]
    if not await may_report(ctx, task):
        ctx.reply(ctx.t("task.no_right.report", code=task.code))
        return
    if status is None:
        if note:
            ctx.reply(ctx.t("task.progress.usage"))
            return
        await send_owner_card(ctx, task, title_key="task.card.plain", body=ctx.t("task.card.plain.body"))
        return
    await apply_status(ctx, task, status, note)


async def apply_status(ctx: Context, task: Task, status: str, note: str, *, from_card: bool = False) -> None:
    """Record a status update: it ends the stale episode under way (and its escalation)."""
    if task.status == DONE:
        ctx.reply(ctx.t("task.already_done", code=task.code))
        return
    if status == BLOCKED and not note:
        await _ask(ctx, ASK_BLOCK_REASON, {"task_id": task.id, "from_card": from_card}, "task.ask.reason", code=task.code)
        return
    if status == DONE:
        if note.casefold() in _VAGUE_DELIVERABLES or (note and len(note) < 2):
            note = ""
        if task.deliverable_template and not note:
            await _ask(ctx, ASK_DELIVERABLE, {"task_id": task.id, "from_card": from_card}, "task.ask.deliverable",
                       code=task.code, template=task.deliverable_template)
            return
    now = utc(ctx.now)
    old = task.status
    task.status = status
    task.block_reason = note if status == BLOCKED else ""
    task.status_updated_at = now
    if status == DONE:
        task.deliverable, task.completed_at = note, now
    ctx.session.add(task)
    ctx.session.add(TaskUpdate(tenant=ctx.tenant.key, task_id=task.id or 0, by_userid=ctx.event.userid, at=now,
                               kind=TaskUpdateKind.STATUS, old_value=old, new_value=status, note=note))
    await resolve_escalations(ctx.session, ctx.tenant.key, task.id or 0, now)
    who = await ctx.name_of(ctx.event.userid)
    await close_escalation_cards(ctx, task, ctx.t("task.esc.closed.status", who=who, status=status_label(task, ctx.locale)))
    await ctx.expire_cards(kind=OWNER_CARD, ref_id=task.id or 0, result=ctx.t("task.card.updated", status=TaskStatus(status).label(ctx.locale)))

    project = await project_of(ctx, task)
    pmo = project.pmo_userid if project else ""
    if status in (BLOCKED, DONE) and pmo and pmo != ctx.event.userid:
        key = "task.pmo.blocked" if status == BLOCKED else "task.pmo.done"
        ctx.send(pmo, ctx.t(key, who=who, code=task.code, title=task.title, note=note or "—"))
    if status == DONE:
        ctx.reply(ctx.t("task.done.ok", code=task.code, title=task.title,
                        late="" if aware(task.due_at) >= ctx.now else ctx.t("task.done.late")))
    elif from_card and ctx.event.userid == task.owner_userid:
        await send_owner_card(ctx, task, title_key="task.card.plain", body=ctx.t("task.card.updated", status=status_label(task, ctx.locale)))
    else:
        ctx.reply(ctx.t("task.status.ok", code=task.code, status=status_label(task, ctx.locale)))


@router.conversation(ASK_BLOCK_REASON, label="task.flow.reason", resume=_ask_again)
async def on_block_reason(ctx: Context) -> None:
    await _answer(ctx, BLOCKED)


@router.conversation(ASK_DELIVERABLE, label="task.flow.deliverable", resume=_ask_again)
async def on_deliverable(ctx: Context) -> None:
    await _answer(ctx, DONE)


async def _answer(ctx: Context, status: str) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    await ctx.clear_conversation()
    task = await task_by_id(ctx, data.get("task_id"))
    if task is None:
        ctx.reply(ctx.t("card.unknown"))
        return
    await apply_status(ctx, task, status, " ".join(ctx.event.text.split()), from_card=bool(data.get("from_card")))


# -- due time ----------------------------------------------------------------------------------------
async def change_due(ctx: Context, task: Task, new_due: datetime, reason: str) -> None:
    """Move the due time, logged with its reason; the episode under way is over."""
    tz = ctx.tenant.tz
    ctx.session.add(TaskUpdate(tenant=ctx.tenant.key, task_id=task.id or 0, by_userid=ctx.event.userid,
                               at=utc(ctx.now), kind="due",
                               old_value=local(ctx, task.due_at).strftime("%Y-%m-%d %H:%M"),
                               new_value=new_due.astimezone(tz).strftime("%Y-%m-%d %H:%M"), note=reason))
    task.due_at = utc(new_due)
    ctx.session.add(task)
    await resolve_escalations(ctx.session, ctx.tenant.key, task.id or 0, ctx.now)
    who = await ctx.name_of(ctx.event.userid)
    await close_escalation_cards(ctx, task, ctx.t("task.esc.closed.due", who=who, due=fmt_time(ctx, task.due_at)))


@router.conversation(ASK_NEW_DUE, label="task.flow.due", resume=_ask_again)
async def on_new_due(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    task = await task_by_id(ctx, data.get("task_id"))
    if task is None:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("card.unknown"))
        return
    if task.status == DONE:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("task.already_done", code=task.code))
        return
    today = local(ctx, ctx.now).date()
    text = ctx.event.text
    due, error, span = parse_due_text(text, today, ctx.tenant.work_hours_end, WorkCalendar(ctx.tenant))
    if span is not None:
        text = text[:span[0]] + " " + text[span[1]:]
    elif data.get("due"):
        due = datetime.fromisoformat(data["due"])  # given before, without a reason
    reason = re.sub(r"^(原因|因为)\s*[:：]?\s*", "", " ".join(text.split()).strip("，,；;:： "))
    problems = []
    if error:
        problems.append(error)
    elif due is None:
        problems.append(ctx.t("task.due.ask_again"))
    if due is not None and not error:
        if due.replace(tzinfo=ctx.tenant.tz) <= ctx.now:
            problems.append(ctx.t("task.due_past", due=fmt_time(ctx, due.replace(tzinfo=ctx.tenant.tz))))
        elif not reason:
            data["due"] = due.isoformat()
            problems.append(ctx.t("task.due.need_reason"))
    if problems:
        data["tries"] = int(data.get("tries", 0)) + 1
        if data["tries"] >= 3:
            # Whatever they are typing now is not an answer; let it reach the rest of the bot.
            await ctx.clear_conversation()
            problems.append(ctx.t("task.due.gave_up"))
        else:
            await ctx.set_conversation(ASK_NEW_DUE, data)  # keep asking; `取消` ends it
        ctx.reply("\n".join(problems))
        return
    assert due is not None
    await ctx.clear_conversation()
    old = fmt_time(ctx, task.due_at)
    await change_due(ctx, task, due.replace(tzinfo=ctx.tenant.tz), reason)
    new = fmt_time(ctx, task.due_at)
    who = await ctx.name_of(ctx.event.userid)
    if task.owner_userid != ctx.event.userid:
        ctx.send(task.owner_userid, ctx.t("task.due.owner", who=who, code=task.code, title=task.title,
                                          old=old, new=new, reason=reason))
    ctx.reply(ctx.t("task.due.ok", code=task.code, old=old, new=new, reason=reason))


# -- card presses -------------------------------------------------------------------------------------
@router.card(OWNER_CARD)
async def on_owner_card(ctx: Context, row: IssuedCard) -> None:
    task = await task_by_id(ctx, row.ref_id)
    if task is None:
        await ctx.close_card(row, ctx.t("card.unknown"))
        return
    if not await may_report(ctx, task):
        await ctx.close_card(row, ctx.t("task.card.not_owner"))
        return
    if task.status == DONE:
        await ctx.close_card(row, ctx.t("task.card.updated", status=DONE.label(ctx.locale)))
        return
    key = ctx.event.action_key
    if key == "progress":
        await apply_status(ctx, task, TaskStatus.DOING, "", from_card=True)
    elif key == "blocked":
        await apply_status(ctx, task, BLOCKED, "", from_card=True)
    elif key == "done":
        await apply_status(ctx, task, DONE, "", from_card=True)


@router.card(ESCALATION_CARD)
async def on_escalation_card(ctx: Context, row: IssuedCard) -> None:
    task = await task_by_id(ctx, row.ref_id)
    if task is None:
        await ctx.close_card(row, ctx.t("card.unknown"))
        return
    key = ctx.event.action_key
    if key == "view":
        await show_task(ctx, task)
        return
    if task.status == DONE or row.data.get("episode") != episode_of(task):
        await ctx.close_card(row, ctx.t("task.esc.over"))
        return
    if key == "nudge":
        owner = await ctx.name_of(task.owner_userid)
        if row.data.get("nudged"):
            ctx.reply(ctx.t("task.nudge.again", owner=owner))
            return
        row.data = {**row.data, "nudged": True}
        ctx.session.add(row)
        ctx.session.add(TaskUpdate(tenant=ctx.tenant.key, task_id=task.id or 0, by_userid=ctx.event.userid,
                                   at=utc(ctx.now), kind="nudge"))
        who = await ctx.name_of(ctx.event.userid)
        await send_owner_card(ctx, task, title_key="task.card.nudge",
                              body=ctx.t("task.card.nudge.body", who=who, due=fmt_time(ctx, task.due_at)))
        ctx.reply(ctx.t("task.nudge.ok", owner=owner))
    elif key == "due":
        await _ask(ctx, ASK_NEW_DUE, {"task_id": task.id, "episode": row.data.get("episode")}, "task.due.ask",
                   code=task.code, due=fmt_time(ctx, task.due_at))


@router.card(VIEW_CARD)
async def on_view_card(ctx: Context, row: IssuedCard) -> None:
    """The task view's one button, 反馈, is the feedback feature's typed action; nothing else is pressable."""
    ctx.reply(ctx.t("card.unknown"))
