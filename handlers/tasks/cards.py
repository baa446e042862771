"""The task cards: the owner's status card, the escalation card and the task view with its history."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from bot.core.timeutil import aware
from cards.model import Button, Card
from handlers.context import Context
from handlers.deliverables import view as deliverable_view
from handlers.deliverables.settings import DeliverableSettings
from handlers.deliverables.upload import upload_links
from handlers.feedback import GiveFeedback
from handlers.tasks.formatting import fmt_since, fmt_time, names, status_label
from handlers.tasks.lookups import project_of
from store.models import Escalation, IssuedCard, Task, TaskUpdate
from store.statuses import CardState, TaskField, TaskOrigin, TaskStatus, TaskUpdateKind
from store.tasks import DONE

OWNER_CARD = "task_owner"
ESCALATION_CARD = "task_escalation"
VIEW_CARD = "task_view"
OWNER_CARD_TTL_HOURS = 24 * 14
ESCALATION_CARD_TTL_HOURS = 72  # WeCom response codes live 72 h
HISTORY_LINES = 12


async def task_fields(ctx: Context, task: Task, *, with_owner: bool = False) -> list[tuple[str, str]]:
    project = await project_of(ctx, task)
    fields = [(ctx.t("task.field.project"), project.name if project else "—")]
    if with_owner:
        fields.append((ctx.t("task.field.owner"), await ctx.name_of(task.owner_userid)))
    fields += [(ctx.t("task.field.due"), fmt_time(ctx, task.due_at)),
               (ctx.t("task.field.deliverable"), task.deliverable_template or "—"),
               (ctx.t("task.field.status"), status_label(task, ctx.locale))]
    collab = task.collaborator_ids
    if collab:
        fields.append((ctx.t("task.field.collaborators"), await names(ctx, collab)))
    fields += await deliverable_view.card_fields(ctx, task)
    return fields


async def send_owner_card(ctx: Context, task: Task, *, title_key: str, body: str) -> Card:
    """The card with 进行中 / 阻塞 / 完成 for the task's owner."""
    links = upload_links(DeliverableSettings.of(ctx.tenant), ctx.locale, ctx.tenant.key, task.id or 0,
                         task.owner_userid, task.deliverable_template or "", ctx.now) \
        if task.status != DONE else []
    card = Card(title=ctx.t(title_key, code=task.code, title=task.title), body=body,
                fields=await task_fields(ctx, task), buttons=_status_buttons(ctx), links=links)
    return await ctx.issue_card(task.owner_userid, OWNER_CARD, card, ref_id=task.id,
                                ttl_hours=OWNER_CARD_TTL_HOURS)


def _status_buttons(ctx: Context) -> list[Button]:
    return [Button("progress", ctx.t("task.btn.progress")), Button("blocked", ctx.t("task.btn.blocked")),
            Button("done", ctx.t("task.btn.done"), "primary")]


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
        col(IssuedCard.tenant) == ctx.tenant.key, col(IssuedCard.kind) == ESCALATION_CARD,
        col(IssuedCard.ref_id) == task.id, col(IssuedCard.state) == CardState.OPEN))).scalars()
    for row in list(rows):
        if episode is None or row.data.get("episode") == episode:
            await ctx.close_card(row, result)


async def show_task(ctx: Context, task: Task) -> None:
    """The task with its history (status changes, due adjustments, nudges, escalations)."""
    ups = list((await ctx.session.execute(select(TaskUpdate).where(
        col(TaskUpdate.tenant) == ctx.tenant.key, col(TaskUpdate.task_id) == task.id)))
        .scalars())
    escs = list((await ctx.session.execute(select(Escalation).where(
        col(Escalation.tenant) == ctx.tenant.key, col(Escalation.task_id) == task.id))).scalars())
    events: list[tuple[datetime, int, str]] = []
    for u in ups:
        who = await ctx.name_of(u.by_userid) if u.by_userid else ctx.t("task.hist.system")
        events.append((aware(u.at), u.id or 0, await _history_line(ctx, u, who)))
    last = 1 << 62  # a resolution is told after the update that caused it
    for e in escs:
        key = "task.hist.escalated" if e.level == 1 else "task.hist.climbed"
        events.append((aware(e.created_at), 0, ctx.t(key, to=await names(ctx, e.recipients))))
        if e.resolved_at is not None and e.level == 1:
            events.append((aware(e.resolved_at), last, ctx.t("task.hist.resolved")))
    events.sort(key=lambda ev: (ev[0], ev[1]))
    lines = [f"{fmt_time(ctx, at)} {text}" for at, _, text in events[-HISTORY_LINES:]]
    fields = await task_fields(ctx, task, with_owner=True)
    if task.status == DONE:
        fields.append((ctx.t("task.field.delivered"), task.deliverable or "—"))
    body = "\n".join(lines) or ctx.t("task.hist.none")
    me = ctx.event.userid
    if task.status != DONE and (me == task.owner_userid or me in task.collaborator_ids):
        # The people doing the task get its status buttons right here (the owner card's kind).
        card = Card(title=ctx.t("task.view.title", code=task.code, title=task.title), body=body, fields=fields,
                    buttons=_status_buttons(ctx))
        await ctx.issue_card(me, OWNER_CARD, card, ref_id=task.id, ttl_hours=OWNER_CARD_TTL_HOURS)
        return
    card = Card(title=ctx.t("task.view.title", code=task.code, title=task.title), body=body, fields=fields,
                buttons=[Button(GiveFeedback(about="task").pack(), ctx.t("task.btn.feedback"))])
    await ctx.issue_card(me, VIEW_CARD, card, ref_id=task.id)


async def _history_line(ctx: Context, u: TaskUpdate, who: str) -> str:
    if u.kind == TaskUpdateKind.CREATED:
        return ctx.t("task.hist.created", who=who) if u.by_userid else ctx.t("task.hist.imported")
    if u.kind == TaskUpdateKind.STATUS:
        note = ctx.t("reason.suffix", reason=u.note) if u.note else ""
        return ctx.t("task.hist.status", who=who, old=_status_word(ctx, u.old_value),
                     new=_status_word(ctx, u.new_value), note=note)
    if u.kind == TaskUpdateKind.DUE:
        # A re-import's due change says so in the reader's words (导入调整 is how rows before TaskOrigin said it).
        note = ctx.t("task.hist.due.import") if u.note in (TaskOrigin.IMPORT, "导入调整") else u.note
        return ctx.t("task.hist.due", who=who, old=u.old_value, new=u.new_value, note=note)
    if u.kind == TaskUpdateKind.NUDGE:
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
