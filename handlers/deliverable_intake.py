"""Deliverables sent in chat: which task a file is for, the check's answer, the owner's confirmation of
an uncertain OCR reading, and a PMO's release of a red deliverable.

    王强 sends a screenshot  → his one open task with a deliverable template takes it (several: a card
                               asks which) → stored as an intake; the intake worker (bot/) fetches the
                               bytes and reads them outside any transaction, then queues the outcome in
                               the inbox as an event of his (`outcome_event`); handled in his order like
                               his messages, `finish_check` here records the light, answers and shows it
                               on the task card
    识别到 CPU峰值 87.5%，对吗？ → 对 / 不对 / 不对 85% / 85%
    放行 T3 客户已书面确认     → the project's PMO lets a red task close as done (audited)
"""
from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.core.events import Event
from cards.model import Button, Card
from handlers.actions import CardAction
from handlers.context import Context
from handlers.deliverables.answers import parse_answer
from handlers.deliverables.extract import Extraction, Reading
from handlers.deliverables.lights import FieldResult, confirm, judge, verdict_of
from handlers.deliverables.rules import TemplateRules, template_for
from handlers.deliverables.settings import DeliverableSettings
from handlers.deliverables.texts import problem_reply, question, summary, values_line
from handlers.deliverables.view import ReleaseTask, row_summary
from handlers.router import Router
from handlers.tasks.cards import send_owner_card
from handlers.tasks.lookups import project_of
from handlers.tasks.permissions import may_edit
from store import audit
from store.deliverables import (OUTCOME_KEY, add_intake, finish_intake, latest_check, record_check, set_override,
                                update_fields)
from store.models import DeliverableCheck, DeliverableIntake, IssuedCard, Task
from store.statuses import CardState
from store.tasks import OPEN_STATUSES, find_task

router = Router("deliverable_intake")

PICK_CARD = "deliv_pick"
CONFIRM = "deliv_confirm"
OVERRIDE = "deliverable_override"  # the audit action of a PMO's release
MAX_CHOICES = 5  # WeCom cards take 6 buttons; one row per task keeps the card readable


class PickTask(CardAction, prefix="dpick"):
    intake: int
    task: int


def rules_of(ctx: Context, task: Task) -> TemplateRules | None:
    return template_for(task.deliverable_template, DeliverableSettings.of(ctx.tenant).rules) \
        if task.deliverable_template else None


async def _open_tasks_with_rules(ctx: Context, userid: str = "") -> list[Task]:
    rows = (await ctx.session.execute(select(Task).where(
        col(Task.tenant) == ctx.tenant.key, col(Task.owner_userid) == (userid or ctx.event.userid),
        col(Task.status).in_(OPEN_STATUSES)).order_by(col(Task.due_at), col(Task.code)))).scalars()
    return [t for t in rows if rules_of(ctx, t) is not None]


def _shown_name(ctx: Context, filename: str) -> str:
    return filename or ctx.t("deliv.file.image")


# -- a file arrives ---------------------------------------------------------------------------------
@router.file
async def on_file(ctx: Context) -> None:
    ev = ctx.event
    if isinstance(ev.values.get(OUTCOME), dict):
        await on_outcome(ctx)
        return
    tasks = await _open_tasks_with_rules(ctx)
    if "task" in ev.values:
        # Through the task card's upload link: that task only (still his, open, with rules), no asking.
        tasks = [t for t in tasks if t.id == ev.values["task"]]
        if not tasks:
            ctx.reply(ctx.t("deliv.pick.gone"))
            return
    if not tasks:
        ctx.reply(ctx.t("deliv.no_task"))
        return
    filename = str(ev.values.get("filename") or "")
    file_type = "image" if ev.values.get("type") == "image" else "file"
    row = add_intake(ctx.session, ctx.tenant.key, ev.userid, ev.platform, at=ctx.now,
                     task_id=tasks[0].id if len(tasks) == 1 else None, file_type=file_type, filename=filename,
                     event=ev.to_dict())
    if len(tasks) == 1:
        rules = rules_of(ctx, tasks[0])
        ctx.reply(ctx.t("deliv.got", name=_shown_name(ctx, filename), code=tasks[0].code,
                        template=rules.name if rules else ""))
        return
    await ctx.session.flush()
    assert row.id is not None
    buttons = [Button(PickTask(intake=row.id, task=t.id or 0).pack(), f"{t.code} {t.title}"[:10])
               for t in tasks[:MAX_CHOICES]]
    body = ctx.t("deliv.pick.body", n=len(tasks)) + "\n" + "\n".join(f"· {t.code} {t.title}" for t in tasks[:MAX_CHOICES])
    await ctx.issue_card(ev.userid, PICK_CARD, Card(title=ctx.t("deliv.pick.title"), body=body, buttons=buttons),
                         ref_id=row.id)


# -- files attached to a company workflow's approval (handlers/trace.py, effect "deliverable") ------------
async def files_from_workflow(ctx: Context, userid: str, task_code: str, files: list[Any], ref: str) -> int:
    """The files of a mapped approval, each an intake of the applicant's like a file sent in chat (the
    reader fetches them by `media_id`); the number taken. The rule's task, or the applicant's one open
    task with a checked template; none (or several without a rule's task): the approval is only 留痕."""
    tasks = await _open_tasks_with_rules(ctx, userid)
    if task_code:
        tasks = [t for t in tasks if t.code.casefold() == task_code.casefold()]
    files = [f for f in files if isinstance(f, dict) and f.get("file_id")]
    if len(tasks) != 1 or not files:
        return 0
    task = tasks[0]
    rules = rules_of(ctx, task)
    for f in files:
        name = str(f.get("file_name") or "")[:200]
        ev = Event(tenant=ctx.tenant.key, platform=ctx.tenant.platform, userid=userid, kind="file",
                   dedup_key=f"{ref}:{f['file_id']}"[:255],
                   values={"type": "file", "filename": name, "ref": {"media_id": str(f["file_id"])},
                           "task": task.id, "via": "approval"})
        add_intake(ctx.session, ctx.tenant.key, userid, ctx.tenant.platform, at=ctx.now, task_id=task.id,
                   file_type="file", filename=name, event=ev.to_dict())
        ctx.send(userid, ctx.t("deliv.got.approval", name=name or ctx.t("deliv.file.attachment"), code=task.code,
                               template=rules.name if rules else ""))
    return len(files)


# Every button of the pick card is a PickTask, so the card kind needs no handler of its own; the router
# checks the presser is the one it was sent to, and the press is checked against the intake again here.
@router.action(PickTask)
async def on_pick(ctx: Context, card: Any, action: PickTask) -> None:
    intake = (await ctx.session.execute(select(DeliverableIntake).where(
        col(DeliverableIntake.tenant) == ctx.tenant.key, col(DeliverableIntake.id) == action.intake,
        col(DeliverableIntake.userid) == ctx.event.userid))).scalar_one_or_none()
    task = (await ctx.session.execute(select(Task).where(
        col(Task.tenant) == ctx.tenant.key, col(Task.id) == action.task))).scalar_one_or_none()
    if intake is None or intake.status != "choose" or card.ref_id != intake.id:
        ctx.reply(ctx.t("card.used"))
        return
    if (task is None or task.owner_userid != ctx.event.userid or task.status not in OPEN_STATUSES
            or rules_of(ctx, task) is None):
        ctx.reply(ctx.t("deliv.pick.gone"))
        return
    intake.task_id, intake.status = task.id, "pending"
    ctx.session.add(intake)
    await ctx.close_card(card, ctx.t("deliv.pick.done", code=task.code))
    rules = rules_of(ctx, task)
    ctx.reply(ctx.t("deliv.got", name=_shown_name(ctx, intake.filename), code=task.code,
                    template=rules.name if rules else ""))


# -- the check's answer: the intake worker's outcome, an inbox event of the person -------------------------
OUTCOME = "deliverable_outcome"  # the values key of an outcome event


def outcome_event(intake: DeliverableIntake, extraction: Extraction | None, problem: str = "",
                  detail: str = "") -> Event:
    """The person's file-message turn, finished: what was read (or why nothing could be had from the
    platform: `problem` gone | failed). Same platform, person and reply hint as the file message, so the
    answer goes to the same conversation; one per intake (the dedup key), however often it is read."""
    first = Event.from_dict(intake.event)
    outcome: dict[str, Any] = {"intake": intake.id, "problem": problem, "detail": detail[:500],
                               "extraction": asdict(extraction) if extraction is not None else None}
    return Event(tenant=intake.tenant, platform=intake.platform, userid=intake.userid, kind="file",
                 dedup_key=f"{OUTCOME_KEY}{intake.id}", values={OUTCOME: outcome}, hint=dict(first.hint))


def extraction_of(data: dict[str, Any]) -> Extraction:
    readings = {k: Reading(**v) for k, v in (data.get("readings") or {}).items()}
    return Extraction(str(data.get("kind", "")), method=str(data.get("method", "")), readings=readings,
                      problem=str(data.get("problem", "")), detail=str(data.get("detail", "")))


async def on_outcome(ctx: Context) -> None:
    outcome = ctx.event.values[OUTCOME]
    intake = (await ctx.session.execute(select(DeliverableIntake).where(
        col(DeliverableIntake.tenant) == ctx.tenant.key, col(DeliverableIntake.id) == outcome.get("intake"),
        col(DeliverableIntake.userid) == ctx.event.userid))).scalar_one_or_none()
    if intake is None or intake.status != "read":
        return  # already answered: nothing to say twice
    problem = str(outcome.get("problem") or "")
    data = outcome.get("extraction")
    if problem or not isinstance(data, dict):
        # Nothing could be had from the platform: he is told, no light.
        detail = str(outcome.get("detail") or "")
        finish_intake(intake, "failed", error=detail)
        ctx.session.add(intake)
        ctx.reply(problem_reply(ctx.locale, problem or "failed", detail, DeliverableSettings.of(ctx.tenant).max_file_mb))
        return
    await finish_check(ctx, intake, extraction_of(data))


async def finish_check(ctx: Context, intake: DeliverableIntake, extraction: Extraction) -> DeliverableCheck | None:
    """Record the light of what was read, answer the person, show it on the task card and ask about
    an uncertain OCR reading, in the dispatcher's transaction of the outcome event."""
    task = (await ctx.session.execute(select(Task).where(
        col(Task.tenant) == ctx.tenant.key, col(Task.id) == intake.task_id))).scalar_one_or_none()
    rules = rules_of(ctx, task) if task is not None else None
    if task is None or rules is None:
        finish_intake(intake, "failed", error="the task or its template rules are gone")
        ctx.session.add(intake)
        ctx.reply(ctx.t("deliv.pick.gone"))
        return None
    settings = DeliverableSettings.of(ctx.tenant)
    verdict = judge(rules, extraction, settings.min_ocr_confidence)
    check = await record_check(
        ctx.session, ctx.tenant.key, task.id or 0, at=ctx.now, by_userid=intake.userid,
        source=_source(intake), filename=intake.filename,
        template=rules.name, method=extraction.method, problem=extraction.problem, light=verdict.light,
        reason=verdict.reason, fields=verdict.to_json())
    finish_intake(intake, "done", check_id=check.id)
    ctx.session.add(intake)
    head = summary(ctx.locale, verdict)
    if extraction.problem:
        ctx.reply(ctx.t("deliv.result.problem", code=task.code, title=task.title, summary=head,
                        why=problem_reply(ctx.locale, extraction.problem, extraction.detail, settings.max_file_mb)))
    else:
        ctx.reply(ctx.t("deliv.result", code=task.code, title=task.title, summary=head,
                        values=values_line(ctx.locale, verdict.fields)))
    await send_owner_card(ctx, task, title_key="task.card.plain", body=ctx.t("deliv.card.body", summary=head))
    unsure = next((f for f in verdict.fields if f.confirm), None)
    if unsure is not None:
        await ctx.set_conversation(CONFIRM, {"check_id": check.id, "label": unsure.label, "step": "confirm"})
        ctx.reply(question(ctx.locale, unsure))
    elif (conv := await ctx.conversation()) is not None and conv.kind == CONFIRM:
        await ctx.clear_conversation()  # a question about an earlier file is moot: this one replaced it
    return check


def _source(intake: DeliverableIntake) -> str:
    values = Event.from_dict(intake.event).values
    if values.get("via") == "approval":
        return "approval_file"
    if "task" in values:
        return "upload_link"
    return "chat_image" if intake.file_type == "image" else "chat_file"


# -- 识别到 CPU峰值 87.5%，对吗？ -----------------------------------------------------------------------
async def _ask_again(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    row = await _check_of(ctx, data)
    field = _field(row, str(data.get("label", ""))) if row is not None else None
    if row is None or field is None:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("flow.nothing"))
        return
    if data.get("step") == "value":
        ctx.reply(ctx.t("deliv.ask.value", label=field.label, example=f"{field.value or 0:g}{field.unit}"))
    else:
        ctx.reply(question(ctx.locale, field))


async def _check_of(ctx: Context, data: dict[str, Any]) -> DeliverableCheck | None:
    check_id = data.get("check_id")
    if not isinstance(check_id, int):
        return None
    return (await ctx.session.execute(select(DeliverableCheck).where(
        col(DeliverableCheck.tenant) == ctx.tenant.key, col(DeliverableCheck.id) == check_id))).scalar_one_or_none()


def _field(row: DeliverableCheck, label: str) -> FieldResult | None:
    return next((FieldResult(**f) for f in row.fields if f.get("label") == label), None)


@router.conversation(CONFIRM, label="deliv.flow.label", resume=_ask_again)
async def on_confirm_answer(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    row = await _check_of(ctx, data)
    task = (await ctx.session.execute(select(Task).where(
        col(Task.tenant) == ctx.tenant.key, col(Task.id) == row.task_id))).scalar_one_or_none() if row else None
    rules = rules_of(ctx, task) if task is not None else None
    label = str(data.get("label", ""))
    rule = next((r for r in rules.fields if r.label == label), None) if rules is not None else None
    field = _field(row, label) if row is not None else None
    latest = await latest_check(ctx.session, ctx.tenant.key, task.id or 0) if task is not None else None
    if (row is None or task is None or rules is None or rule is None or field is None
            or latest is None or latest.id != row.id):
        await ctx.clear_conversation()
        ctx.reply(ctx.t("flow.nothing"))
        return
    answer = parse_answer(ctx.event.text, rule)
    if answer is None or (answer == "right" and data.get("step") == "value"):
        ctx.reply(ctx.t("deliv.ask.again", label=field.label, value=field.shown()))
        return  # not an answer: nothing changes
    if answer == "wrong":
        await ctx.set_conversation(CONFIRM, {**data, "step": "value"})
        ctx.reply(ctx.t("deliv.ask.value", label=field.label, example=f"{field.value or 0:g}{field.unit}"))
        return
    fields = confirm([FieldResult(**f) for f in row.fields], label, rules,
                     value=None if answer == "right" else answer)
    after = verdict_of(fields)
    update_fields(row, [f.__dict__ for f in fields], after.light, after.reason)
    ctx.session.add(row)
    head = summary(ctx.locale, after)
    nxt = next((f for f in fields if f.confirm), None)
    if nxt is not None:
        await ctx.set_conversation(CONFIRM, {"check_id": row.id, "label": nxt.label, "step": "confirm"})
        ctx.reply(ctx.t("deliv.confirmed", summary=head) + "\n" + question(ctx.locale, nxt))
        return
    await ctx.clear_conversation()
    ctx.reply(ctx.t("deliv.confirmed", summary=head) + "\n" + values_line(ctx.locale, fields))
    await send_owner_card(ctx, task, title_key="task.card.plain", body=ctx.t("deliv.card.body", summary=head))


# -- 放行 T3 原因 ------------------------------------------------------------------------------------
_SPLIT = re.compile(r"[\s:：,，\u3000]+")


@router.command("deliverable_override", words=("放行",), args=True, access="edit_task")
async def on_override(ctx: Context) -> None:
    parts = _SPLIT.split(ctx.args.strip(), maxsplit=1)
    code = parts[0] if parts and parts[0] else ""
    reason = parts[1].strip() if len(parts) > 1 else ""
    if not code:
        ctx.reply(ctx.t("deliv.override.usage"))
        return
    task = await find_task(ctx.session, ctx.tenant.key, code)
    if task is None:
        ctx.reply(ctx.t("task.unknown", code=code))
        return
    if not await may_edit(ctx, task, await project_of(ctx, task)):
        ctx.reply(ctx.t("deliv.override.no_right", code=task.code))
        return
    if not reason:
        ctx.reply(ctx.t("deliv.override.usage"))
        return
    await release(ctx, task, reason)


async def release(ctx: Context, task: Task, reason: str) -> bool:
    """A PMO's release of a red deliverable, by the command or the notice's button: the `edit_task`
    rule, the latest check red, the override recorded on it and in the audit log; True when done."""
    if not await may_edit(ctx, task, await project_of(ctx, task)):
        ctx.reply(ctx.t("deliv.override.no_right", code=task.code))
        return False
    row = await latest_check(ctx.session, ctx.tenant.key, task.id or 0)
    if row is None or row.light != "red":
        ctx.reply(ctx.t("deliv.override.not_red", code=task.code,
                        summary=row_summary(ctx.locale, row) if row is not None else "—"))
        return False
    me = ctx.event.userid
    await set_override(ctx.session, row, me, reason, ctx.now)
    audit.record(ctx.session, ctx.tenant.key, me, OVERRIDE, f"{task.code}: {reason}"[:255], ctx.now)
    owner = await ctx.name_of(task.owner_userid)
    ctx.reply(ctx.t("deliv.override.ok", code=task.code, title=task.title, reason=reason, owner=owner))
    if task.owner_userid != me:
        ctx.send(task.owner_userid, ctx.t("deliv.override.owner", who=await ctx.name_of(me), code=task.code,
                                          title=task.title, reason=reason))
    return True


# -- 放行 on the PMO's notice (handlers/deliverables/view.py) -------------------------------------------
RELEASE = "deliv_release_reason"


async def _task_of(ctx: Context, task_id: Any) -> Task | None:
    return (await ctx.session.execute(select(Task).where(
        col(Task.tenant) == ctx.tenant.key, col(Task.id) == task_id))).scalar_one_or_none()


@router.action(ReleaseTask)
async def on_release_press(ctx: Context, card: Any, action: ReleaseTask) -> None:
    """Every button of the notice is a ReleaseTask; the router checks the presser is its recipient.
    The checks run now (a presser without the right hears so at once) and again with the reason."""
    task = await _task_of(ctx, action.task)
    latest = await latest_check(ctx.session, ctx.tenant.key, task.id or 0) if task is not None else None
    if task is None or latest is None or latest.id != action.check or card.ref_id != action.check:
        await ctx.close_card(card, ctx.t("card.used"))
        return
    if not await may_edit(ctx, task, await project_of(ctx, task)):
        ctx.reply(ctx.t("deliv.override.no_right", code=task.code))
        return
    await ctx.set_conversation(RELEASE, {"task": task.id, "check": action.check, "card": card.id})
    ctx.reply(ctx.t("deliv.release.ask", code=task.code))


async def _ask_reason(ctx: Context) -> None:
    conv = await ctx.conversation()
    task = await _task_of(ctx, (conv.data if conv is not None else {}).get("task"))
    if task is None:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("flow.nothing"))
        return
    ctx.reply(ctx.t("deliv.release.ask", code=task.code))


@router.conversation(RELEASE, label="deliv.flow.release", resume=_ask_reason)
async def on_release_reason(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    task = await _task_of(ctx, data.get("task"))
    reason = ctx.event.text.strip()
    if task is None:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("flow.nothing"))
        return
    if not reason:
        ctx.reply(ctx.t("deliv.release.ask", code=task.code))
        return  # nothing typed: asked again, nothing changes
    await ctx.clear_conversation()
    if not await release(ctx, task, reason):
        return
    card = (await ctx.session.execute(select(IssuedCard).where(
        col(IssuedCard.tenant) == ctx.tenant.key, col(IssuedCard.id) == data.get("card"),
        col(IssuedCard.userid) == ctx.event.userid))).scalar_one_or_none()
    if card is not None and card.state == CardState.OPEN:
        await ctx.close_card(card, ctx.t("deliv.release.done"))
