"""Goal changes in chat (目标调整): 调整 / 新增 / 取消, a diff card to the approver, 同意 / 驳回.

    刘洋: 调整 O1-KR2 权重 40%→28% 原因:政策 集采政策突变 事件:12-08
    bot → 陈杰: card 「目标调整待审批：O1-KR2」 (- 旧 40% / + 新 28%) [同意] [驳回]
    陈杰: 同意          (or presses 同意; 驳回 asks for the reason, 「驳回 预算不足」 gives it at once)
    bot → 刘洋, the goal's department managers and whoever's weekly action links to O1-KR2:
          目标调整：O1-KR2 权重 40% → 28%（原因：政策），自 12-09 起生效

Who may propose: managers of the goal's department (or one above it), HR and admins. The
approver is the proposer's manager, an admin for a level-1 goal, or whoever `[tenants.goals]
approver` names. A period's goals can be locked after `goal_lock_after`; then only HR may
change them.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlmodel import col

from bot.core.calendar import iso_week
from bot.core.config import Section
from cards.model import Button, Card
from cards.texts import TEXTS
from handlers import goal_changes_texts  # noqa: F401  (registers the texts)
from handlers.actions import CardAction
from handlers.card_answers import meaning_of, normalise, typed_answer
from handlers.context import Context, Outgoing
from handlers.dates import find_dates
from handlers.decisions import Decider, ask_which, register_decider
from handlers.router import Router
from store import audit
from store.goal_changes import (
    CAUSES, PROPOSED, Calibration, apply_change, department_managers, fmt_weight, goal, linked_people, match_cause, pending,
    propose, reject_change, sibling_weights,
)
from store.goals import normalize_goal_code
from store.models import Department, Employee, Goal, GoalAdjustment, IssuedCard, holds_role
from store.statuses import CardState, GoalStatus, Role

MAX_LEVEL = 3
CARD = "goal_change"
CONFIRM = "goal_change_confirm"
REVIEW = "goal_change_review"
APPROVE_GOAL_CHANGE = "approve_goal_change"
REJECT_GOAL_CHANGE = "reject_goal_change"


class GoalSettings(Section, name="goals"):
    """[tenants.goals]"""

    # Who approves a change: "manager" (the proposer's manager; an admin for a level-1 goal) or a user id.
    approver: str = "manager"
    # Per period, the last day goals may be changed (HR still may): {"2026Q4" = 2026-12-20}.
    goal_lock_after: dict[str, date] = Field(default_factory=dict)


router = Router("goal_changes")


class ApproveChange(CardAction, prefix="gc_ok"):
    change: int


class RejectChange(CardAction, prefix="gc_no"):
    change: int


# -- reading what was typed -----------------------------------------------------------------------
_FIELDS = {"权重": "weight", "比重": "weight", "weight": "weight", "标题": "title", "名称": "title", "title": "title",
           "截止": "due", "截止日期": "due", "期限": "due", "due": "due", "上级": "parent_code", "parent": "parent_code"}
_CAUSE = re.compile(r"(?:原因|因为|cause|reason)\s*[:：]?\s*", re.IGNORECASE)
_EVENT = re.compile(r"(?:事件日期|事件|event)\s*[:：]?\s*(\S+)", re.IGNORECASE)
_NUM = r"(\d+(?:\.\d+)?)\s*[%％]?"
_ARROW = r"\s*(?:→|->|—>|=>|➡|到|至|改为|改成|变为)\s*"
_WEIGHT_PAIR = re.compile(rf"^{_NUM}{_ARROW}{_NUM}$")
_WEIGHT_ONE = re.compile(rf"^{_NUM}$")
_WEIGHT_REL = re.compile(r"^([-−+＋])\s*(\d+(?:\.\d+)?)\s*[%％]$")
_KEYWORDS = re.compile(r"\s(上级|权重|部门)\s*[:：]?\s*")


class BadInput(Exception):
    def __init__(self, key: str, **kw: Any) -> None:
        super().__init__(key)
        self.key, self.kw = key, kw


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _split_cause(ctx: Context, text: str) -> tuple[str, str, str, date]:
    """(the text before 原因, cause, note, event day); raises BadInput."""
    today = ctx.now.astimezone(ctx.tenant.tz).date()
    event = today
    m = _EVENT.search(text)
    if m:
        found = find_dates(m.group(1), today)
        if found is None:
            raise BadInput("gc.event.bad", value=m.group(1))
        event = found.start
        if event > today:
            raise BadInput("gc.event.future", day=event.isoformat())
        text = (text[:m.start()] + " " + text[m.end():]).strip()
    c = _CAUSE.search(text)
    if c is None:
        raise BadInput("gc.cause.missing")
    head, rest = text[:c.start()].strip(), text[c.end():].strip()
    token, _, note = rest.partition(" ")
    cause = match_cause(token)
    if cause is None:
        # 「原因:政策集采政策突变」: the cause word run together with the note.
        starts = [k for k in CAUSES if token.startswith(k)]
        if len(starts) != 1:
            raise BadInput("gc.cause.bad" if token else "gc.cause.missing", value=token)
        cause, note = starts[0], (token[len(starts[0]):] + " " + note).strip()
    return head, cause, note.strip(), event


def _weight(value: str, current: float, code: str) -> float:
    v = _fold(value).replace(" ", "")
    if m := _WEIGHT_PAIR.match(v):
        said, new = float(m.group(1)), float(m.group(2))
        if said != current:
            raise BadInput("gc.weight.old", code=code, current=fmt_weight(current), said=fmt_weight(said))
    elif m := _WEIGHT_REL.match(v):
        pct = float(m.group(2)) * (-1 if m.group(1) in "-−" else 1)
        new = round(current * (1 + pct / 100), 2)
    elif m := _WEIGHT_ONE.match(v):
        new = float(m.group(1))
    else:
        raise BadInput("gc.weight.bad", value=value)
    if not 0 <= new <= 100:
        raise BadInput("gc.weight.range")
    return new


def _today(ctx: Context) -> date:
    return ctx.now.astimezone(ctx.tenant.tz).date()


def describe(ctx: Context, change: GoalAdjustment | dict[str, Any]) -> str:
    c: dict[str, Any] = change if isinstance(change, dict) else {
        "goal_code": change.goal_code, "field_name": change.field_name, "old_value": change.old_value,
        "new_value": change.new_value, "detail": change.detail}
    name, detail = c["field_name"], c.get("detail") or {}
    old, new = c["old_value"], c["new_value"]
    if name == "due":
        old, new = old or ctx.t("gc.none"), new or ctx.t("gc.none")
    return ctx.t(f"gc.what.{name}", code=c["goal_code"], old=old, new=new,
                 parent=detail.get("parent_code") or ctx.t("gc.none"), weight=fmt_weight(float(detail.get("weight") or 0)))


# -- who may, who approves --------------------------------------------------------------------------
async def _may_propose(ctx: Context, department: str) -> bool:
    me = ctx.me
    assert me is not None
    if me.has_role(Role.HR) or me.has_role(Role.ADMIN):
        return True
    return any(m.userid == me.userid for m in await department_managers(ctx.session, ctx.tenant.key, department))


def _locked(ctx: Context, period: str) -> date | None:
    """The lock day of `period` when it has passed and the sender is not HR."""
    me = ctx.me
    lock = GoalSettings.of(ctx.tenant).goal_lock_after.get(period)
    if lock is None or _today(ctx) <= lock or (me is not None and me.has_role(Role.HR)):
        return None
    return lock


async def _approver(ctx: Context, level: int) -> str:
    me = ctx.me
    assert me is not None
    setting = GoalSettings.of(ctx.tenant).approver.strip()
    if setting and setting != "manager":
        return setting
    if level > 1 and me.manager_userid:
        return me.manager_userid
    admins = sorted((await ctx.session.execute(select(col(Employee.userid)).where(
        col(Employee.tenant) == ctx.tenant.key, col(Employee.active).is_(True), holds_role(Role.ADMIN)))).scalars())
    others = [a for a in admins if a != me.userid]
    return (others or admins or [me.manager_userid or me.userid])[0]


# -- the commands -----------------------------------------------------------------------------------
def _is_goal_cancel(text: str) -> bool:
    t = _fold(text)
    if not t.startswith("取消"):
        return False
    first = t[2:].strip().split(" ")[0] if t[2:].strip() else ""
    return normalize_goal_code(first) is not None


@router.command("goal_adjust", words=("调整",), args=True, access="change_goal")
async def on_adjust(ctx: Context) -> None:
    await _guard(ctx, _adjust)


@router.command("goal_add", words=("新增",), args=True, access="change_goal")
async def on_add(ctx: Context) -> None:
    await _guard(ctx, _add)


@router.command("goal_cancel", pattern=_is_goal_cancel, access="change_goal")
async def on_cancel_goal(ctx: Context) -> None:
    ctx.args = _fold(ctx.args)[2:].strip()
    await _guard(ctx, _cancel)


async def _guard(ctx: Context, fn: Any) -> None:
    try:
        await fn(ctx, _fold(ctx.args))
    except BadInput as exc:
        ctx.reply(ctx.t(exc.key, **exc.kw))


async def _target(ctx: Context, text: str) -> tuple[Goal, str]:
    token, _, rest = text.partition(" ")
    code = normalize_goal_code(token)
    if code is None:
        raise BadInput("gc.usage")
    g = await goal(ctx.session, ctx.tenant.key, code)
    if g is None or g.status != GoalStatus.ACTIVE:
        raise BadInput("gc.unknown_goal", code=code)
    return g, rest.strip()


async def _checks(ctx: Context, g: Goal) -> None:
    if not await _may_propose(ctx, g.department):
        raise BadInput("gc.no_right", code=g.code)
    if (lock := _locked(ctx, g.period)) is not None:
        raise BadInput("gc.locked", period=g.period, day=lock.isoformat())
    waiting = await pending(ctx.session, ctx.tenant.key, g.code)
    if waiting:
        raise BadInput("gc.pending", code=g.code, what=describe(ctx, waiting[0]))


async def _adjust(ctx: Context, text: str) -> None:
    if not text:
        raise BadInput("gc.usage")
    g, rest = await _target(ctx, text)
    await _checks(ctx, g)
    head, cause, note, event = _split_cause(ctx, rest)
    word, _, value = head.partition(" ")
    name = _FIELDS.get(word.casefold())
    if name is None:
        raise BadInput("gc.field", code=g.code)
    value = value.strip()
    draft: dict[str, Any] = {"goal_code": g.code, "field_name": name, "cause": cause, "note": note,
                             "event": event.isoformat(), "level": g.level, "detail": {}}
    if name == "weight":
        new = _weight(value, g.weight, g.code)
        if new == g.weight:
            raise BadInput("gc.same", code=g.code, field="权重", value=f"{fmt_weight(new)}%")
        draft.update(old_value=fmt_weight(g.weight), new_value=fmt_weight(new))
        total = await sibling_weights(ctx.session, ctx.tenant.key, g.parent_code, code=g.code, weight=new)
        if total > 100:
            await _ask_sum(ctx, draft, g.parent_code or "", total)
            return
    elif name == "title":
        new_title = re.split(r"\s*(?:→|->)\s*", value)[-1].strip()
        if not new_title:
            raise BadInput("gc.title.empty")
        if new_title == g.title:
            raise BadInput("gc.same", code=g.code, field="标题", value=new_title)
        draft.update(old_value=g.title, new_value=new_title)
    elif name == "due":
        found = find_dates(value, _today(ctx)) if value else None
        if found is None:
            raise BadInput("gc.due.bad", value=value)
        day = found.suggested[0] if found.past and found.suggested else found.start
        draft.update(old_value=g.due.isoformat() if g.due else "", new_value=day.isoformat())
    else:
        parent = await _parent(ctx, value, g.code)
        if parent.level + 1 > MAX_LEVEL:
            raise BadInput("gc.level", code=g.code, level=parent.level + 1)
        draft.update(old_value=g.parent_code or "", new_value=parent.code)
    await _submit(ctx, draft)


async def _parent(ctx: Context, value: str, code: str) -> Goal:
    pcode = normalize_goal_code(value.split(" ")[0]) if value else None
    parent = await goal(ctx.session, ctx.tenant.key, pcode) if pcode else None
    if parent is None or parent.status != GoalStatus.ACTIVE:
        raise BadInput("gc.parent.bad", value=value)
    # Walking up from the parent must not meet the goal itself.
    seen: set[str] = {code}
    up: Goal | None = parent
    while up is not None:
        if up.code in seen:
            raise BadInput("gc.parent.self")
        seen.add(up.code)
        up = await goal(ctx.session, ctx.tenant.key, up.parent_code) if up.parent_code else None
    return parent


async def _department(ctx: Context, value: str) -> str:
    me = ctx.me
    assert me is not None
    if not value:
        return me.department
    paths = list((await ctx.session.execute(select(col(Department.path)).where(col(Department.tenant) == ctx.tenant.key))).scalars())
    paths += list((await ctx.session.execute(select(col(Employee.department)).where(
        col(Employee.tenant) == ctx.tenant.key, col(Employee.active).is_(True)).distinct())).scalars())
    v = value.strip("/ ")
    hits = sorted({p for p in paths if p and (p == v or p.endswith("/" + v))})
    if len(hits) != 1:
        raise BadInput("gc.dept.bad", value=value)
    return hits[0]


async def _add(ctx: Context, text: str) -> None:
    token, _, rest = text.partition(" ")
    code = normalize_goal_code(token)
    if code is None:
        raise BadInput("gc.usage")
    existing = await goal(ctx.session, ctx.tenant.key, code)
    if existing is not None and existing.status == GoalStatus.ACTIVE:
        raise BadInput("gc.exists", code=code)
    head, cause, note, event = _split_cause(ctx, rest)
    parts = _KEYWORDS.split(" " + head)
    title = parts[0].strip()
    fields = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if not title:
        raise BadInput("gc.new.title", code=code)
    parent = await _parent(ctx, fields["上级"], code) if fields.get("上级") else None
    level = parent.level + 1 if parent else 1
    if level > MAX_LEVEL:
        raise BadInput("gc.level", code=code, level=level)
    weight = _weight(fields.get("权重", "0"), 0.0, code) if fields.get("权重") else 0.0
    department = await _department(ctx, fields.get("部门", ""))
    if not await _may_propose(ctx, department):
        raise BadInput("gc.no_right", code=code)
    period = parent.period if parent else ""
    if (lock := _locked(ctx, period)) is not None:
        raise BadInput("gc.locked", period=period, day=lock.isoformat())
    if await pending(ctx.session, ctx.tenant.key, code):
        raise BadInput("gc.pending", code=code, what=describe(ctx, (await pending(ctx.session, ctx.tenant.key, code))[0]))
    detail = {"parent_code": parent.code if parent else None, "weight": weight, "department": department,
              "period": period}
    draft = {"goal_code": code, "field_name": "new", "old_value": "", "new_value": title, "cause": cause,
             "note": note, "event": event.isoformat(), "level": level, "detail": detail}
    if parent is not None:
        total = await sibling_weights(ctx.session, ctx.tenant.key, parent.code, code=code, weight=weight)
        if total > 100:
            await _ask_sum(ctx, draft, parent.code, total)
            return
    await _submit(ctx, draft)


async def _cancel(ctx: Context, text: str) -> None:
    g, rest = await _target(ctx, text)
    await _checks(ctx, g)
    _, cause, note, event = _split_cause(ctx, rest)
    await _submit(ctx, {"goal_code": g.code, "field_name": "cancelled", "old_value": g.title, "new_value": "",
                        "cause": cause, "note": note, "event": event.isoformat(), "level": g.level, "detail": {}})


# -- siblings over 100 %: warn and ask ------------------------------------------------------------
async def _ask_sum(ctx: Context, draft: dict[str, Any], parent: str, total: float) -> None:
    await ctx.set_conversation(CONFIRM, {"draft": draft})
    ctx.reply(ctx.t("gc.sum.ask", parent=parent, total=fmt_weight(total)))


async def _resume_confirm(ctx: Context) -> None:
    ctx.reply(ctx.t("gc.sum.again"))


@router.conversation(CONFIRM, label="gc.flow", resume=_resume_confirm)
async def on_confirm(ctx: Context) -> None:
    conv = await ctx.conversation()
    draft = dict((conv.data if conv is not None else {}).get("draft") or {})
    answer = typed_answer(ctx.event.text, [("yes", ctx.t("doubt.yes")), ("no", ctx.t("doubt.no"))], locale=ctx.locale)
    kind = meaning_of(answer.key) if answer else None
    if kind is None or not draft:
        ctx.reply(ctx.t("gc.sum.again"))
        return
    await ctx.clear_conversation()
    if kind == "no":
        ctx.reply(ctx.t("gc.sum.dropped"))
        return
    try:
        g = await goal(ctx.session, ctx.tenant.key, draft["goal_code"])
        if g is not None and draft["field_name"] != "new":
            await _checks(ctx, g)  # still allowed, and nothing else got proposed meanwhile
        await _submit(ctx, draft)
    except BadInput as exc:
        ctx.reply(ctx.t(exc.key, **exc.kw))


# -- submitting, the card, deciding ---------------------------------------------------------------
async def _submit(ctx: Context, draft: dict[str, Any]) -> None:
    me = ctx.me
    assert me is not None
    approver = await _approver(ctx, int(draft.get("level") or 2))
    change = propose(ctx.session, ctx.tenant.key, goal_code=draft["goal_code"], field_name=draft["field_name"],
                     old=draft["old_value"], new=draft["new_value"], cause=draft["cause"], note=draft["note"],
                     event_date=date.fromisoformat(draft["event"]), by=me.userid, approver=approver, now=ctx.now,
                     detail=draft.get("detail") or {})
    await ctx.session.flush()
    what = describe(ctx, change)
    if approver == me.userid:
        # Nobody above the proposer (the company's only admin): the change takes effect as theirs.
        await _approve(ctx, change)
        ctx.reply(ctx.t("gc.applied_self", what=what, day=_today(ctx).isoformat()))
        return
    await ctx.issue_card(approver, CARD, await _card(ctx, change), ref_id=change.id)
    await ctx.set_conversation(REVIEW, {"change": change.id}, userid=approver)
    ctx.reply(ctx.t("gc.submitted", what=what, approver=await ctx.name_of(approver)))


async def _card(ctx: Context, change: GoalAdjustment) -> Card:
    g = await goal(ctx.session, ctx.tenant.key, change.goal_code)
    name, old, new = change.field_name, change.old_value, change.new_value
    unit = "%" if name == "weight" else ""
    label = ctx.t(f"gc.field.{name}") if f"gc.field.{name}" in TEXTS else name
    lines = [f"{change.goal_code} {g.title if g else new}", ctx.t("gc.diff.head", field=label)]
    if name == "new":
        d = change.detail
        lines += [f"+ {new}", ctx.t("gc.diff.placed", parent=d.get("parent_code") or "—",
                                    weight=fmt_weight(float(d.get("weight") or 0)),
                                    department=str(d.get("department") or "").split("/")[-1])]
    elif name == "cancelled":
        lines += [f"- {old}"]
    else:
        lines += [ctx.t("gc.diff.old", value=f"{old or '—'}{unit if old else ''}"),
                  ctx.t("gc.diff.new", value=f"{new or '—'}{unit if new else ''}")]
    fields = [(ctx.t("gc.card.by"), await ctx.label_of(change.by_userid)),
              (ctx.t("gc.card.cause"), change.reason),
              (ctx.t("gc.card.event"), change.event_date.isoformat() if change.event_date else "")]
    if change.note:
        fields.append((ctx.t("gc.card.note"), change.note))
    parent = change.detail.get("parent_code") if name == "new" else (g.parent_code if g else None)
    if name in ("weight", "new") and parent:
        weight = float(change.detail.get("weight") or 0) if name == "new" else float(new)
        total = await sibling_weights(ctx.session, ctx.tenant.key, parent, code=change.goal_code, weight=weight)
        fields.append((ctx.t("gc.card.sum", parent=parent), f"{fmt_weight(total)}%"))
    return Card(title=ctx.t("gc.card.title", code=change.goal_code),
                body="\n".join(lines + ["", ctx.t("gc.card.hint")]), fields=fields,
                buttons=[Button(ApproveChange(change=change.id or 0).pack(), ctx.t("gc.btn.approve"), "primary"),
                         Button(RejectChange(change=change.id or 0).pack(), ctx.t("gc.btn.reject"))])


async def _change(ctx: Context, change_id: int) -> GoalAdjustment | None:
    return (await ctx.session.execute(select(GoalAdjustment).where(
        col(GoalAdjustment.tenant) == ctx.tenant.key, col(GoalAdjustment.id) == change_id))).scalar_one_or_none()


def _still_current(g: Goal | None, change: GoalAdjustment) -> bool:
    """The goal still holds the value the proposal started from (nobody changed it in between)."""
    if change.field_name == "new":
        return g is None or g.status != GoalStatus.ACTIVE
    if g is None or g.status != GoalStatus.ACTIVE:
        return False
    current = {"weight": fmt_weight(g.weight), "title": g.title, "due": g.due.isoformat() if g.due else "",
               "parent_code": g.parent_code or "", "cancelled": g.title}
    return current.get(change.field_name, change.old_value) == change.old_value


async def _approve(ctx: Context, change: GoalAdjustment) -> bool:
    me = ctx.me
    assert me is not None
    g = await goal(ctx.session, ctx.tenant.key, change.goal_code)
    if not _still_current(g, change):
        reject_change(ctx.session, change, by=me.userid, now=ctx.now, reason="stale")
        ctx.reply(ctx.t("gc.stale", code=change.goal_code))
        if change.by_userid != me.userid:
            ctx.send(change.by_userid, ctx.t("gc.stale", code=change.goal_code))
        return False
    day = _today(ctx)
    g = await apply_change(ctx.session, change, by=me.userid, now=ctx.now, effective=day)
    audit.record(ctx.session, ctx.tenant.key, me.userid, APPROVE_GOAL_CHANGE, f"{change.goal_code}:{change.id}", ctx.now)
    # One line to the proposer, the goal's department managers and whoever's current action links to it.
    told = {change.by_userid}
    told |= {m.userid for m in await department_managers(ctx.session, ctx.tenant.key, g.department)}
    told |= set(await linked_people(ctx.session, ctx.tenant.key, change.goal_code, iso_week(day)))
    line = ctx.t("gc.notice", what=describe(ctx, change), cause=change.reason, day=day.isoformat())
    for userid in sorted(told - {me.userid}):
        ctx.send(userid, line)
    return True


async def _open_card(ctx: Context, change_id: int) -> IssuedCard | None:
    return (await ctx.session.execute(select(IssuedCard).where(
        col(IssuedCard.tenant) == ctx.tenant.key, col(IssuedCard.kind) == CARD, col(IssuedCard.ref_id) == change_id,
        col(IssuedCard.userid) == ctx.event.userid, col(IssuedCard.state) == CardState.OPEN))).scalars().first()


async def _end_review(ctx: Context, change_id: int) -> None:
    conv = await ctx.conversation()
    if conv is not None and conv.kind == REVIEW and conv.data.get("change") == change_id:
        await ctx.clear_conversation()


async def _decide(ctx: Context, row: IssuedCard | None, change: GoalAdjustment | None, verdict: str,
                  reason: str = "") -> None:
    me = ctx.me
    assert me is not None
    if change is None or change.status != PROPOSED:
        if row is not None:
            await ctx.close_card(row, ctx.t("gc.decided"))
        ctx.reply(ctx.t("gc.decided"))
        return
    if change.approver_userid != me.userid:
        ctx.reply(ctx.t("card.not_yours"))
        return
    if verdict == "reject" and not reason:
        await ctx.set_conversation(REVIEW, {"change": change.id, "reason": True})
        ctx.reply(ctx.t("gc.reason.ask"))
        return
    await _end_review(ctx, change.id or 0)
    if verdict == "approve":
        ok = await _approve(ctx, change)
        result = ctx.t("gc.approved", day=_today(ctx).isoformat()) if ok else ctx.t("gc.stale", code=change.goal_code)
    else:
        reject_change(ctx.session, change, by=me.userid, now=ctx.now, reason=reason)
        audit.record(ctx.session, ctx.tenant.key, me.userid, REJECT_GOAL_CHANGE, f"{change.goal_code}:{change.id}",
                     ctx.now)
        ctx.send(change.by_userid, ctx.t("gc.notice.rejected", approver=me.name, what=describe(ctx, change),
                                         reason=reason))
        result = ctx.t("gc.rejected", reason=reason)
    row = row or await _open_card(ctx, change.id or 0)
    if row is not None:
        await ctx.close_card(row, result)
    else:
        ctx.reply(result)


@router.card(CARD, access="recipient")
async def on_card(ctx: Context, row: IssuedCard) -> None:
    ctx.reply(ctx.t("card.unknown"))  # its buttons are the typed ApproveChange / RejectChange


@router.action(ApproveChange, usage="action")
async def on_approve(ctx: Context, row: IssuedCard, action: ApproveChange) -> None:
    await _decide(ctx, row, await _change(ctx, action.change), "approve")


@router.action(RejectChange, usage="action")
async def on_reject(ctx: Context, row: IssuedCard, action: RejectChange) -> None:
    await _decide(ctx, row, await _change(ctx, action.change), "reject")


_REJECT_WORDS = ("驳回", "不同意", "拒绝", "不批准", "不通过", "否决", "reject", "no")
# Only words that say "approved". An acknowledgement (收到, 好的, 嗯, 👍) is what people type when a card
# arrives; taken as a yes it would change a goal's weight nobody agreed to, so it gets the question again.
_APPROVE_WORDS = ("同意", "批准", "通过", "同意调整", "可以调整", "approve", "approved", "agree", "agreed")


def read_verdict(text: str) -> tuple[str, str] | None:
    """「同意」「同意👍」 → approve; 「驳回 预算不足」「不同意，先等集采结果」 → reject with its reason; 「收到」 → None."""
    t = _fold(text)
    for word in sorted(_REJECT_WORDS, key=len, reverse=True):
        if t.casefold().startswith(word):
            return "reject", re.sub(r"^[\s,，。:：;；!！.]+", "", t[len(word):]).strip()
    words = {normalise(w) for w in _APPROVE_WORDS}
    said = normalise(t)
    bare = re.sub(r"[^\w\u3400-\u9fff]", "", said)  # 「好的👍」「同意！」: the word without its emoji
    if said in words or (bare and bare in words):
        return "approve", ""
    return None


async def _resume_review(ctx: Context) -> None:
    conv = await ctx.conversation()
    change = await _change(ctx, int((conv.data if conv else {}).get("change") or 0))
    if change is not None and change.status == PROPOSED:
        ctx.reply(ctx.t("gc.review.again", what=describe(ctx, change)))
    else:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("gc.decided"))


@router.conversation(REVIEW, label="gc.review.flow", resume=_resume_review)
async def on_review_answer(ctx: Context) -> None:
    """同意 / 驳回 typed instead of pressed, to the newest change waiting for the sender."""
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    change = await _change(ctx, int(data.get("change") or 0))
    if change is None or change.status != PROPOSED:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("gc.decided"))
        return
    verdict = read_verdict(ctx.event.text)
    if data.get("reason") and (verdict is None or verdict == ("reject", "")):
        reason = _fold(ctx.event.text)
        if verdict is None and reason:
            await _decide(ctx, None, change, "reject", reason)
            return
    if verdict is None:
        ctx.reply(ctx.t("gc.review.again", what=describe(ctx, change)))
        return
    if await ask_which(ctx):  # 同意 / 驳回 also answers another feature's card: which one is asked
        return
    await _decide(ctx, None, change, verdict[0], verdict[1])


async def _typed_on_card(ctx: Context, row: IssuedCard) -> None:
    verdict = read_verdict(ctx.event.text)
    if verdict is not None:
        await _decide(ctx, row, await _change(ctx, row.ref_id or 0), verdict[0], verdict[1])


register_decider(Decider(CARD, read_verdict, _typed_on_card))


def rate_fields(out: Outgoing, c: Calibration) -> list[tuple[str, str]]:
    """The rate's lines on a card: 目标校准率 25%（2/8）· 健康线 15% ✓ · 前20% 22.7% ✓, the lead time, re-scopes."""
    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"
    if c.rate is None:
        value = out.t("gc.rate.none")
    else:
        value = out.t("gc.rate.value", pct=f"{c.rate * 100:.0f}%", adjusted=len(c.adjusted), keys=len(c.key_tasks),
                      healthy=mark(c.healthy), top=mark(c.top))
    fields = [(out.t("gc.rate.quarter", quarter=c.quarter), value)]
    if c.median_lead_days is not None:
        fields.append((out.t("gc.lead.label"), out.t("gc.lead.value", days=f"{c.median_lead_days:g}")))
    fields.append((out.t("gc.rescope.label"), out.t("gc.rescope.value", n=c.rescopes)))
    return fields
