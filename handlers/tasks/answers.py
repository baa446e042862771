"""Answers to the task questions (a block reason, a deliverable, a new due time) and the task card presses."""
from __future__ import annotations

from datetime import datetime

from bot.core.calendar import WorkCalendar
from handlers.context import Context
from handlers.tasks.cards import ESCALATION_CARD, OWNER_CARD, VIEW_CARD, send_owner_card, show_task
from handlers.tasks.chat import router
from handlers.tasks.formatting import fmt_time, local
from handlers.tasks.grammar import NOTE_TRIM, REASON_HEAD, parse_due_text
from handlers.tasks.lookups import task_by_id
from handlers.tasks.permissions import may_report
from handlers.tasks.questions import ASK_BLOCK_REASON, ASK_DELIVERABLE, ASK_NEW_DUE, ask, ask_again
from handlers.tasks.updates import apply_status, change_due
from store.models import IssuedCard, TaskUpdate
from bot.core.timeutil import utc
from store.statuses import TaskStatus, TaskUpdateKind
from store.tasks import BLOCKED, DONE, episode_of


@router.conversation(ASK_BLOCK_REASON, label="task.flow.reason", resume=ask_again)
async def on_block_reason(ctx: Context) -> None:
    await _answer(ctx, BLOCKED)


@router.conversation(ASK_DELIVERABLE, label="task.flow.deliverable", resume=ask_again)
async def on_deliverable(ctx: Context) -> None:
    await _answer(ctx, DONE)


async def _answer(ctx: Context, status: TaskStatus) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    await ctx.clear_conversation()
    task = await task_by_id(ctx, data.get("task_id"))
    if task is None:
        ctx.reply(ctx.t("card.unknown"))
        return
    await apply_status(ctx, task, status, " ".join(ctx.event.text.split()), from_card=bool(data.get("from_card")))


@router.conversation(ASK_NEW_DUE, label="task.flow.due", resume=ask_again)
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
    due, error, span = parse_due_text(text, today, ctx.tenant.work_hours_end, WorkCalendar(ctx.tenant),
                                      locale=ctx.locale)
    if span is not None:
        text = text[:span[0]] + " " + text[span[1]:]
    elif data.get("due"):
        due = datetime.fromisoformat(data["due"])  # given before, without a reason
    reason = REASON_HEAD.sub("", " ".join(text.split()).strip(NOTE_TRIM))
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
                                   at=utc(ctx.now), kind=TaskUpdateKind.NUDGE))
        who = await ctx.name_of(ctx.event.userid)
        await send_owner_card(ctx, task, title_key="task.card.nudge",
                              body=ctx.t("task.card.nudge.body", who=who, due=fmt_time(ctx, task.due_at)))
        ctx.reply(ctx.t("task.nudge.ok", owner=owner))
    elif key == "due":
        await ask(ctx, ASK_NEW_DUE, {"task_id": task.id, "episode": row.data.get("episode")}, "task.due.ask",
                   code=task.code, due=fmt_time(ctx, task.due_at))


@router.card(VIEW_CARD)
async def on_view_card(ctx: Context, row: IssuedCard) -> None:
    """The task view's one button, 反馈, is the feedback feature's typed action; nothing else is pressable."""
    ctx.reply(ctx.t("card.unknown"))
