"""The changes of a task: its status, its due time and its owner's assignment card."""
from __future__ import annotations

from datetime import datetime

from bot.core.calendar import WorkCalendar
from bot.core.timeutil import aware, utc
from handlers.context import Context
from handlers.deliverables import view as deliverable_view
from handlers.tasks.cards import OWNER_CARD, close_escalation_cards, send_owner_card
from handlers.tasks.formatting import fmt_time, local, status_label
from handlers.tasks.grammar import VAGUE_DELIVERABLES
from handlers.tasks.lookups import project_of
from handlers.tasks.questions import ASK_BLOCK_REASON, ASK_DELIVERABLE, ask
from handlers.tasks.sends import assign_send_kind, due_card_day, due_send_kind
from store.models import Task, TaskUpdate
from store.statuses import TaskStatus, TaskUpdateKind
from store.scheduled import claim_send
from store.tasks import BLOCKED, DONE, resolve_escalations


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


async def apply_status(ctx: Context, task: Task, status: TaskStatus, note: str, *, from_card: bool = False) -> None:
    """Record a status update: it ends the stale episode under way (and its escalation)."""
    if task.status == DONE:
        ctx.reply(ctx.t("task.already_done", code=task.code))
        return
    if status == BLOCKED and not note:
        await ask(ctx, ASK_BLOCK_REASON, {"task_id": task.id, "from_card": from_card}, "task.ask.reason", code=task.code)
        return
    if status == DONE:
        refusal = await deliverable_view.done_refusal(ctx, task, by=ctx.event.userid,
                                                      pmo=(p.pmo_userid if (p := await project_of(ctx, task)) else ""))
        if refusal:
            ctx.reply(refusal)
            return
        if note.casefold() in VAGUE_DELIVERABLES or (note and len(note) < 2):
            note = ""
        note = note or await deliverable_view.delivered_note(ctx, task)
        if task.deliverable_template and not note:
            await ask(ctx, ASK_DELIVERABLE, {"task_id": task.id, "from_card": from_card}, "task.ask.deliverable",
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
    ctx.used("action", "tasks")
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


async def change_due(ctx: Context, task: Task, new_due: datetime, reason: str) -> None:
    """Move the due time, logged with its reason; the episode under way is over."""
    tz = ctx.tenant.tz
    ctx.session.add(TaskUpdate(tenant=ctx.tenant.key, task_id=task.id or 0, by_userid=ctx.event.userid,
                               at=utc(ctx.now), kind=TaskUpdateKind.DUE,
                               old_value=local(ctx, task.due_at).strftime("%Y-%m-%d %H:%M"),
                               new_value=new_due.astimezone(tz).strftime("%Y-%m-%d %H:%M"), note=reason))
    task.due_at = utc(new_due)
    ctx.session.add(task)
    await resolve_escalations(ctx.session, ctx.tenant.key, task.id or 0, ctx.now)
    ctx.used("action", "tasks")  # a manager's answer to an escalation resolves it
    who = await ctx.name_of(ctx.event.userid)
    await close_escalation_cards(ctx, task, ctx.t("task.esc.closed.due", who=who, due=fmt_time(ctx, task.due_at)))
