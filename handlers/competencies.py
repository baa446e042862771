"""Competency assessment in chat (自评 / 评估 @王强), the blind reveal, calibration (对齐会) and the learning link.

One competency at a time: a card with the three behaviour anchors as buttons, then the
evidence step — records of the subject's own period (witnessed actions, feedback received,
finished tasks) as buttons, several allowed; an L3 needs at least one. The draft lives in the
database (the assessment and its ratings) and the exchange under way in the flow engine, so a
command in between puts it aside and 继续 asks the open question again.

Blind: a submission shows its author their own levels only. When the second side submits,
both get the side-by-side card, and the calibration rule (store/competencies.py) decides
whether a meeting is called: a card to the person, their manager and HR, with the gapped
competencies, their anchors and the evidence.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field
from sqlalchemy import select
from sqlmodel import col

from bot.core.calendar import WorkCalendar
from bot.core.config import Section
from cards.model import Button, Card, Message
from handlers import competencies_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.actions import CardAction
from handlers.brief import default_period
from handlers.context import Context, Outgoing
from handlers.feedback import parse_feedback
from handlers.feedback_rights import FeedbackSettings
from handlers.people import tenant_directory
from handlers.router import Router
from store import audit
from store import competencies as comp
from store.brief import parse_period, period_days, period_weeks
from store.feedback import local_day_start
from store.models import Employee, Feedback, IssuedCard, Task, WeeklyAction
from store.scheduled import claim_send
from store.statuses import ActionStatus, Impact, Polarity, Role, TaskStatus

router = Router("competencies")

FLOW = "comp_assess"
ROUND_CARD, ANCHOR_CARD, EVIDENCE_CARD, SUBMIT_CARD = "comp_round", "comp_anchor", "comp_evidence", "comp_submit"
CALIBRATION_CARD, LEARNING_CARD = "comp_calibration", "comp_learning"
MAX_EVIDENCE_BUTTONS = 5  # with 下一项: WeCom's six
MINUTES_PER_COMPETENCY = 2
CARD_TTL_HOURS = 24 * 14
# Audit actions (store/audit.py keeps the trail).
AUDIT_SUBMIT, AUDIT_REVEAL = "competency_submit", "competency_reveal"
AUDIT_CALIBRATION, AUDIT_AGREED = "calibration_open", "calibration_agreed"
AUDIT_REMIND, AUDIT_HR = "calibration_remind", "calibration_hr_told"
AUDIT_LEARNING = "learning_card"


class CompetencySettings(Section, name="competencies"):
    """[tenants.competencies]"""

    # A calibration not held within this many working days: one reminder, then HR is told.
    calibration_working_days: int = Field(5, ge=1, le=30)
    hr_after_reminder_working_days: int = Field(2, ge=1, le=30)
    # Working days after a round opens before one reminder goes to whoever has not submitted (0: none).
    nudge_after_working_days: int = Field(3, ge=0, le=20)
    case_days: int = Field(90, ge=7, le=365)  # how far back success cases are taken from
    max_cases: int = Field(3, ge=0, le=5)
    max_courses: int = Field(2, ge=1, le=2)  # three buttons each, six on a WeCom card


class StartAssessment(CardAction, prefix="cstart"):
    subject: str
    period: str
    side: Literal["self", "manager"]


class PickLevel(CardAction, prefix="clevel"):
    assessment: int
    code: str
    level: int


class PickEvidence(CardAction, prefix="cev"):
    assessment: int
    code: str
    ref: str


class NextCompetency(CardAction, prefix="cnext"):
    assessment: int
    code: str


class SubmitAssessment(CardAction, prefix="csubmit"):
    assessment: int


class RedoAssessment(CardAction, prefix="credo"):
    assessment: int


class AgreeLevel(CardAction, prefix="cagree"):
    calibration: int
    code: str
    level: int


class MarkCourse(CardAction, prefix="cmark"):
    course: int
    mark: Literal["done", "useful", "useless"]


# -- who ---------------------------------------------------------------------------------------

async def reviewer_of(ctx: Outgoing, userid: str) -> str | None:
    """The first active manager above `userid` (a vacant post is skipped): the one who assesses."""
    seen = {userid}
    person = await ctx.employee(userid)
    boss = person.manager_userid if person else None
    while boss and boss not in seen:
        seen.add(boss)
        above = await ctx.employee(boss)
        if above is None:
            return None
        if above.active:
            return boss
        boss = above.manager_userid
    return None


async def hr_people(ctx: Outgoing) -> list[str]:
    rows = (await ctx.session.execute(select(Employee).where(
        col(Employee.tenant) == ctx.tenant.key, col(Employee.active).is_(True)).order_by(col(Employee.userid)))).scalars()
    return [e.userid for e in rows if e.has_role(Role.HR)]


def tagged_codes(ctx: Outgoing) -> dict[str, str]:
    """Feedback tag → the competency it evidences (`competency = "C03"` in [tenants.feedback] tags)."""
    return {t.name: t.competency for t in FeedbackSettings.of(ctx.tenant).tags if t.competency}


# -- the subject's records of the period, as evidence ------------------------------------------

async def evidence_choices(ctx: Outgoing, subject: str, period: str, code: str) -> list[tuple[str, str]]:
    """(ref, label) of the subject's own records of the period; feedback tagged with `code` first."""
    first, last = period_days(period)
    start, end = local_day_start(first, ctx.tenant.tz), local_day_start(last + timedelta(days=1), ctx.tenant.tz)
    tags = tagged_codes(ctx)
    tagged: list[tuple[str, str]] = []
    other: list[tuple[str, str]] = []
    for f in (await ctx.session.execute(select(Feedback).where(
            col(Feedback.tenant) == ctx.tenant.key, col(Feedback.receiver_userid) == subject, col(Feedback.created_at) >= start,
            col(Feedback.created_at) < end).order_by(col(Feedback.created_at).desc(), col(Feedback.id).desc()))).scalars():
        item = (f"feedback:{f.id}", f"#{f.tag} {f.event[:16]}")
        (tagged if tags.get(f.tag) == code else other).append(item)
    weeks = period_weeks(period)
    for a in (await ctx.session.execute(select(WeeklyAction).where(
            col(WeeklyAction.tenant) == ctx.tenant.key, col(WeeklyAction.userid) == subject, col(WeeklyAction.week).in_(weeks),
            col(WeeklyAction.status) == ActionStatus.CONFIRMED).order_by(col(WeeklyAction.week).desc()))).scalars():
        other.append((f"action:{a.id}", f"{a.week[-3:]} {a.thing[:16]}"))
    for t in (await ctx.session.execute(select(Task).where(
            col(Task.tenant) == ctx.tenant.key, col(Task.owner_userid) == subject, col(Task.status) == TaskStatus.DONE,
            col(Task.completed_at) >= start, col(Task.completed_at) < end).order_by(col(Task.completed_at).desc()))).scalars():
        other.append((f"task:{t.id}", f"{t.code} {t.title[:16]}"))
    return tagged + other


async def evidence_labels(ctx: Outgoing, subject: str, period: str, refs: list[str]) -> str:
    if not refs:
        return ctx.t("comp.cal.ev.none")
    labels = dict(await evidence_choices(ctx, subject, period, ""))
    return ctx.t("list.semi").join(labels.get(r, r) for r in refs)


# -- asking --------------------------------------------------------------------------------------

def _what(ctx: Outgoing, a: comp.Assessment, subject_name: str) -> str:
    return ctx.t("comp.what.self") if a.side == comp.SELF else ctx.t("comp.what.manager", name=subject_name)


async def ask_next(ctx: Context, a: comp.Assessment) -> None:
    """The card of the first competency not rated yet, or the submit card when all are."""
    assert a.id is not None
    done = await comp.ratings(ctx.session, ctx.tenant.key, a.id)
    codes = comp.codes_of(a)
    code = next((c for c in codes if c not in done), None)
    if code is None:
        await _ask_submit(ctx, a, done)
        return
    await ask_level(ctx, a, code)


async def ask_level(ctx: Context, a: comp.Assessment, code: str) -> None:
    assert a.id is not None
    lib = await comp.library(ctx.session, ctx.tenant.key)
    c = lib[code]
    codes = comp.codes_of(a)
    subject_name = await ctx.name_of(a.subject_userid)
    who = ctx.t("comp.who.self") if a.side == comp.SELF else subject_name
    card = Card(
        title=ctx.t("comp.anchor.title", what=_what(ctx, a, subject_name), i=codes.index(code) + 1, n=len(codes),
                    code=code, name=c.name),
        body=ctx.t("comp.anchor.body", who=who, l1=c.l1, l2=c.l2, l3=c.l3),
        buttons=[Button(PickLevel(assessment=a.id, code=code, level=lv).pack(), f"L{lv} {c.anchor(lv)}")
                 for lv in comp.LEVELS])
    await ctx.expire_cards(kind=ANCHOR_CARD, ref_id=a.id, result=ctx.t("comp.replaced"))
    await ctx.issue_card(ctx.event.userid, ANCHOR_CARD, card, ref_id=a.id, data={"code": code},
                         ttl_hours=CARD_TTL_HOURS)
    await ctx.set_conversation(FLOW, {"assessment": a.id, "code": code, "step": "level"})


async def ask_evidence(ctx: Context, a: comp.Assessment, row: comp.Rating) -> None:
    assert a.id is not None
    lib = await comp.library(ctx.session, ctx.tenant.key)
    c = lib[row.code]
    choices = [(ref, label) for ref, label in await evidence_choices(ctx, a.subject_userid, a.period, row.code)
               if ref not in row.evidence]
    whose = ctx.t("comp.whose.self") if a.side == comp.SELF else await ctx.name_of(a.subject_userid)
    body = ctx.t("comp.evidence.body", whose=whose, need=ctx.t("comp.evidence.need") if row.level == 3 else "")
    if row.evidence:
        body += ctx.t("comp.evidence.attached", items=await evidence_labels(ctx, a.subject_userid, a.period,
                                                                            row.evidence))
    if not choices and not row.evidence:
        body += "\n" + ctx.t("comp.evidence.none")
    shown = choices[:MAX_EVIDENCE_BUTTONS]
    card = Card(title=ctx.t("comp.evidence.title", code=row.code, name=c.name, level=row.level), body=body,
                buttons=[Button(PickEvidence(assessment=a.id, code=row.code, ref=ref).pack(), f"{i}. {label}")
                         for i, (ref, label) in enumerate(shown, 1)]
                + [Button(NextCompetency(assessment=a.id, code=row.code).pack(), ctx.t("comp.btn.next"), "primary")])
    await ctx.expire_cards(kind=EVIDENCE_CARD, ref_id=a.id, result=ctx.t("comp.replaced"))
    await ctx.issue_card(ctx.event.userid, EVIDENCE_CARD, card, ref_id=a.id,
                         data={"code": row.code, "refs": [ref for ref, _ in shown]}, ttl_hours=CARD_TTL_HOURS)
    await ctx.set_conversation(FLOW, {"assessment": a.id, "code": row.code, "step": "evidence",
                                      "refs": [ref for ref, _ in shown]})


def _levels_line(ctx: Outgoing, lib: dict[str, comp.Competency], levels: dict[str, int]) -> str:
    return ctx.t("list.semi").join(f"{code} {lib[code].name if code in lib else ''} L{lv}" for code, lv in levels.items())


async def _ask_submit(ctx: Context, a: comp.Assessment, done: dict[str, comp.Rating]) -> None:
    assert a.id is not None
    lib = await comp.library(ctx.session, ctx.tenant.key)
    levels = {c: done[c].level for c in comp.codes_of(a) if c in done}
    name = await ctx.name_of(a.subject_userid)
    card = Card(title=ctx.t("comp.submit.title", what=_what(ctx, a, name), period=a.period),
                body=ctx.t("comp.submit.body", levels=_levels_line(ctx, lib, levels)),
                buttons=[Button(SubmitAssessment(assessment=a.id).pack(), ctx.t("comp.btn.submit"), "primary"),
                         Button(RedoAssessment(assessment=a.id).pack(), ctx.t("comp.btn.redo"))])
    await ctx.expire_cards(kind=SUBMIT_CARD, ref_id=a.id, result=ctx.t("comp.replaced"))
    await ctx.issue_card(ctx.event.userid, SUBMIT_CARD, card, ref_id=a.id, ttl_hours=CARD_TTL_HOURS)
    await ctx.set_conversation(FLOW, {"assessment": a.id, "step": "submit"})


async def resume(ctx: Context) -> None:
    """继续: the open question of the draft, asked again."""
    conv = await ctx.conversation()
    a = await _flow_assessment(ctx, conv.data if conv else {})
    if a is None or a.state != comp.DRAFT:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("flow.nothing"))
        return
    await _ask_current(ctx, a, conv.data if conv else {})


async def _ask_current(ctx: Context, a: comp.Assessment, data: dict[str, object]) -> None:
    assert a.id is not None
    if data.get("step") == "evidence":
        row = (await comp.ratings(ctx.session, ctx.tenant.key, a.id)).get(str(data.get("code")))
        if row is not None:
            await ask_evidence(ctx, a, row)
            return
    await ask_next(ctx, a)


async def _flow_assessment(ctx: Context, data: dict[str, object]) -> comp.Assessment | None:
    aid = data.get("assessment")
    if not isinstance(aid, int):
        return None
    a = await comp.assessment_by_id(ctx.session, ctx.tenant.key, aid)
    return a if a is not None and a.assessor_userid == ctx.event.userid else None


# -- starting --------------------------------------------------------------------------------------

def _period_arg(ctx: Context, words: list[str]) -> tuple[str | None, list[str]]:
    period, rest = None, []
    for w in words:
        p = parse_period(w)
        if p and period is None:
            period = p
        else:
            rest.append(w)
    return period, rest


async def start(ctx: Context, subject: Employee, period: str, side: str) -> None:
    """Open (or go back to) the assessment of `subject` by the sender and ask the open question."""
    lib = await comp.library(ctx.session, ctx.tenant.key)
    if not lib:
        ctx.reply(ctx.t("comp.no_library"))
        return
    a = await comp.open_assessment(ctx.session, ctx.tenant.key, period, subject, ctx.event.userid, side, ctx.now)
    if a.state == comp.SUBMITTED:
        assert a.id is not None
        done = await comp.ratings(ctx.session, ctx.tenant.key, a.id)
        ctx.reply(ctx.t("comp.already", period=period, what=_what(ctx, a, subject.name),
                        levels=_levels_line(ctx, lib, {c: r.level for c, r in done.items()})))
        return
    await ask_next(ctx, a)


@router.command("self_assess", words=("自评", "self-assess"), args=True, access="own")
async def on_self_assess(ctx: Context) -> None:
    me = ctx.me
    assert me is not None
    period, rest = _period_arg(ctx, ctx.args.split())
    if rest:
        ctx.reply(ctx.t("comp.period.bad", text=" ".join(rest)))
        return
    await start(ctx, me, period or default_period(ctx), comp.SELF)


@router.command("assess", words=("评估", "assess"), args=True, access="assess")
async def on_assess(ctx: Context) -> None:
    me = ctx.me
    assert me is not None
    parts = parse_feedback(ctx.args)
    period, rest = _period_arg(ctx, (parts.event or "").split())
    tokens = list(ctx.event.mentions) or parts.mentions
    if not tokens and len(rest) == 1:
        tokens, rest = rest, []
    if rest or len(tokens) != 1:
        ctx.reply(ctx.t("comp.usage.assess"))
        return
    subject = await _person(ctx, tokens[0])
    if subject is None:
        return
    if subject.userid == me.userid:
        ctx.reply(ctx.t("comp.self_is_self"))
        return
    if await reviewer_of(ctx, subject.userid) != me.userid:
        ctx.reply(ctx.t("comp.not_reviewer", name=subject.name))
        return
    await start(ctx, subject, period or default_period(ctx), comp.MANAGER)


async def _person(ctx: Context, token: str) -> Employee | None:
    if ctx.event.mentions:
        found = await ctx.employee(token)
        if found is None:
            ctx.reply(ctx.t("fb.person.none", token=token))
        return found
    m = (await tenant_directory(ctx.session, ctx.tenant.key)).resolve(token)
    if m.status == "choose":
        names = ctx.people_labels(m.candidates)
        ctx.reply(ctx.t("fb.person.ambiguous", token=token, names=names))
        return None
    found = await ctx.employee(m.person.userid) if m.status == "one" and m.person else None
    if found is None:
        ctx.reply(ctx.t("fb.person.none", token=token))
    return found



@router.action(StartAssessment)
async def on_start(ctx: Context, row: IssuedCard, action: StartAssessment) -> None:
    subject = await ctx.employee(action.subject)
    if subject is None:
        ctx.reply(ctx.t("card.unknown"))
        return
    if action.side == comp.MANAGER and await reviewer_of(ctx, subject.userid) != ctx.event.userid:
        await ctx.close_card(row, ctx.t("comp.not_reviewer", name=subject.name))
        return
    await ctx.close_card(row, ctx.t("comp.started"))
    await start(ctx, subject, action.period, action.side)


# -- answering ---------------------------------------------------------------------------------------

async def _draft(ctx: Context, row: IssuedCard, aid: int) -> comp.Assessment | None:
    """The draft a pressed card belongs to, or None (answered) when it is not the presser's open one."""
    a = await comp.assessment_by_id(ctx.session, ctx.tenant.key, aid)
    if a is None or a.assessor_userid != ctx.event.userid or row.ref_id != aid:
        ctx.reply(ctx.t("card.unknown"))
        return None
    if a.state != comp.DRAFT:
        await ctx.close_card(row, ctx.t("comp.submitted"))
        return None
    return a


async def l3_refused(ctx: Context, a: comp.Assessment, code: str, level: int) -> bool:
    """An L3 with no record of the period to back it is refused, with what would back it."""
    if level == 3 and not await evidence_choices(ctx, a.subject_userid, a.period, code):
        whose = ctx.t("comp.whose.self") if a.side == comp.SELF else await ctx.name_of(a.subject_userid)
        ctx.reply(ctx.t("comp.l3_no_records", whose=whose))
        return True
    return False


async def pick_level(ctx: Context, a: comp.Assessment, code: str, level: int) -> None:
    row = await comp.set_rating(ctx.session, a, code, level, ctx.now)
    await ask_evidence(ctx, a, row)



@router.action(PickLevel)
async def on_pick_level(ctx: Context, row: IssuedCard, action: PickLevel) -> None:
    a = await _draft(ctx, row, action.assessment)
    if a is None or action.code not in comp.codes_of(a) or action.level not in comp.LEVELS:
        return
    if not await l3_refused(ctx, a, action.code, action.level):
        await ctx.close_card(row, ctx.t("comp.picked", level=action.level))
        await pick_level(ctx, a, action.code, action.level)


async def attach(ctx: Context, a: comp.Assessment, code: str, ref: str) -> None:
    assert a.id is not None
    rating = (await comp.ratings(ctx.session, ctx.tenant.key, a.id)).get(code)
    valid = {r for r, _ in await evidence_choices(ctx, a.subject_userid, a.period, code)}
    if rating is None or ref not in valid:
        ctx.reply(ctx.t("card.unknown"))
        return
    comp.add_evidence(rating, ref)
    ctx.session.add(rating)
    await ask_evidence(ctx, a, rating)


async def next_competency(ctx: Context, a: comp.Assessment, code: str) -> bool:
    assert a.id is not None
    rating = (await comp.ratings(ctx.session, ctx.tenant.key, a.id)).get(code)
    if rating is None:
        await ask_next(ctx, a)
        return True
    if rating.level == 3 and not rating.evidence:
        ctx.reply(ctx.t("comp.l3_needs_evidence"))
        return False
    await ctx.expire_cards(kind=EVIDENCE_CARD, ref_id=a.id, result=ctx.t("comp.evidence.done", n=len(rating.evidence)))
    await ask_next(ctx, a)
    return True



@router.action(PickEvidence)
async def on_pick_evidence(ctx: Context, row: IssuedCard, action: PickEvidence) -> None:
    a = await _draft(ctx, row, action.assessment)
    if a is not None:
        await attach(ctx, a, action.code, action.ref)


@router.action(NextCompetency)
async def on_next(ctx: Context, row: IssuedCard, action: NextCompetency) -> None:
    a = await _draft(ctx, row, action.assessment)
    if a is not None:
        await next_competency(ctx, a, action.code)



@router.action(RedoAssessment)
async def on_redo(ctx: Context, row: IssuedCard, action: RedoAssessment) -> None:
    a = await _draft(ctx, row, action.assessment)
    if a is None:
        return
    assert a.id is not None
    for r in (await comp.ratings(ctx.session, ctx.tenant.key, a.id)).values():
        await ctx.session.delete(r)
    await ctx.session.flush()
    await ctx.close_card(row, ctx.t("comp.redo"))
    await ask_next(ctx, a)


@router.action(SubmitAssessment)
async def on_submit(ctx: Context, row: IssuedCard, action: SubmitAssessment) -> None:
    a = await _draft(ctx, row, action.assessment)
    if a is not None:
        await submit(ctx, a, row)


async def submit(ctx: Context, a: comp.Assessment, row: IssuedCard | None) -> None:
    assert a.id is not None
    done = await comp.ratings(ctx.session, ctx.tenant.key, a.id)
    if any(c not in done for c in comp.codes_of(a)):
        await ask_next(ctx, a)
        return
    if any(r.level == 3 and not r.evidence for r in done.values()):
        ctx.reply(ctx.t("comp.l3_needs_evidence"))
        return
    a.state, a.submitted_at = comp.SUBMITTED, comp.utc(ctx.now)
    ctx.session.add(a)
    await ctx.session.flush()
    audit.record(ctx.session, ctx.tenant.key, ctx.event.userid, AUDIT_SUBMIT, a.subject_userid, ctx.now)
    if row is not None:
        await ctx.close_card(row, ctx.t("comp.submitted"))
    await ctx.clear_conversation()
    name = await ctx.name_of(a.subject_userid)
    pair = await comp.revealed(ctx.session, ctx.tenant.key, a.period, a.subject_userid)
    if pair is None:
        other = ctx.t("comp.other.manager") if a.side == comp.SELF else ctx.t("comp.other.self", name=name)
        ctx.reply(ctx.t("comp.wait_other", period=a.period, what=_what(ctx, a, name), other=other))
        return
    await reveal(ctx, pair, name)


# -- the reveal and calibration ------------------------------------------------------------------

async def tagged_refs(ctx: Outgoing, subject: str, period: str) -> dict[str, set[str]]:
    """Competency → the subject's feedback refs of the period whose tag evidences it."""
    tags = tagged_codes(ctx)
    first, last = period_days(period)
    out: dict[str, set[str]] = {}
    for f in (await ctx.session.execute(select(Feedback).where(
            col(Feedback.tenant) == ctx.tenant.key, col(Feedback.receiver_userid) == subject,
            col(Feedback.created_at) >= local_day_start(first, ctx.tenant.tz),
            col(Feedback.created_at) < local_day_start(last + timedelta(days=1), ctx.tenant.tz)))).scalars():
        if f.tag in tags:
            out.setdefault(tags[f.tag], set()).add(f"feedback:{f.id}")
    return out


async def reveal(ctx: Outgoing, pair: comp.Pair, name: str) -> None:
    """Both sides have submitted: the side-by-side card to both, then calibration or the learning check."""
    lib = await comp.library(ctx.session, ctx.tenant.key)
    subject, boss = pair.self_.subject_userid, pair.manager.assessor_userid
    reasons = comp.calibration_reasons(pair, await tagged_refs(ctx, subject, pair.self_.period))
    gapped = [r["code"] for r in reasons]
    lines = []
    for code in pair.codes:
        s, m = pair.self_ratings.get(code), pair.manager_ratings.get(code)
        lines.append(ctx.t("comp.reveal.row", code=code, cname=lib[code].name if code in lib else "",
                           s=s.level if s else "-", m=m.level if m else "-", mark=" ⚠" if code in gapped else ""))
    body = "\n".join(lines) + (ctx.t("comp.reveal.calibrate", codes=ctx.t("list.sep").join(gapped)) if gapped
                               else ctx.t("comp.reveal.agree"))
    card = Card(title=ctx.t("comp.reveal.title", name=name, period=pair.self_.period), body=body)
    for userid in (subject, boss):
        ctx.send(userid, Message(kind="card", card=card))
    audit.record(ctx.session, ctx.tenant.key, boss, AUDIT_REVEAL, subject, ctx.now)
    if reasons:
        await open_calibration(ctx, pair, reasons, name)
    else:
        await learning_check(ctx, subject, pair.self_.period)


async def open_calibration(ctx: Outgoing, pair: comp.Pair, reasons: list[dict[str, str]], name: str) -> None:
    subject, boss, period = pair.self_.subject_userid, pair.manager.assessor_userid, pair.self_.period
    if await comp.calibration(ctx.session, ctx.tenant.key, period, subject) is not None:
        return
    cal_days = CompetencySettings.of(ctx.tenant).calibration_working_days
    due = WorkCalendar(ctx.tenant).add_working_days(ctx.now.astimezone(ctx.tenant.tz).date(), cal_days)
    cal = comp.Calibration(tenant=ctx.tenant.key, period=period, subject_userid=subject, manager_userid=boss,
                           reasons=reasons, opened_at=comp.utc(ctx.now), due_on=due.isoformat())
    ctx.session.add(cal)
    await ctx.session.flush()
    assert cal.id is not None
    audit.record(ctx.session, ctx.tenant.key, boss, AUDIT_CALIBRATION, subject, ctx.now)
    body = await calibration_body(ctx, pair, reasons, name, due.isoformat())
    title = ctx.t("comp.cal.title", name=name, period=period)
    buttons = [Button(AgreeLevel(calibration=cal.id, code=r["code"], level=lv).pack(),
                      ctx.t("comp.btn.agree", code=r["code"], level=lv)) for r in reasons[:2] for lv in comp.LEVELS]
    for userid in [subject, boss, *[h for h in await hr_people(ctx) if h not in (subject, boss)]]:
        card = Card(title=title, body=body, buttons=list(buttons) if userid != subject else [])
        if card.buttons:
            await ctx.issue_card(userid, CALIBRATION_CARD, card, ref_id=cal.id, ttl_hours=CARD_TTL_HOURS)
        else:
            ctx.send(userid, Message(kind="card", card=card))


async def calibration_body(ctx: Outgoing, pair: comp.Pair, reasons: list[dict[str, str]], name: str,
                           due: str) -> str:
    lib = await comp.library(ctx.session, ctx.tenant.key)
    rows = []
    for r in reasons:
        code = r["code"]
        c = lib.get(code)
        s, m = pair.self_ratings.get(code), pair.manager_ratings.get(code)
        refs = list(dict.fromkeys([*(s.evidence if s else []), *(m.evidence if m else [])]))
        rows.append(ctx.t("comp.cal.row", code=code, cname=c.name if c else "", why=ctx.t(f"comp.cal.why.{r['why']}"),
                          s=s.level if s else "-", sa=c.anchor(s.level) if c and s else "",
                          m=m.level if m else "-", ma=c.anchor(m.level) if c and m else "",
                          ev=await evidence_labels(ctx, pair.self_.subject_userid, pair.self_.period, refs)))
    return "\n".join(rows) + ctx.t("comp.cal.due", due=due, name=name, code=reasons[0]["code"])


async def may_calibrate(ctx: Outgoing, actor: Employee, cal: comp.Calibration) -> bool:
    return actor.has_role(Role.HR) or actor.userid == cal.manager_userid


async def record_agreement(ctx: Context, cal: comp.Calibration, code: str, level: int, note: str) -> None:
    me = ctx.me
    assert me is not None and cal.id is not None
    name = await ctx.name_of(cal.subject_userid)
    gapped = [r["code"] for r in cal.reasons]
    if code not in gapped:
        ctx.reply(ctx.t("comp.cal.not_gapped", code=code, codes=ctx.t("list.sep").join(gapped)))
        return
    done = await comp.agreed(ctx.session, ctx.tenant.key, cal.period, cal.subject_userid)
    if code in done:
        ctx.reply(ctx.t("comp.cal.already", code=code, level=done[code].level, by=await ctx.name_of(done[code].by_userid)))
        return
    row = comp.AgreedLevel(tenant=ctx.tenant.key, calibration_id=cal.id, period=cal.period,
                           subject_userid=cal.subject_userid, code=code, level=level, note=note[:200],
                           by_userid=me.userid, at=comp.utc(ctx.now))
    ctx.session.add(row)
    await ctx.session.flush()
    audit.record(ctx.session, ctx.tenant.key, me.userid, AUDIT_AGREED, cal.subject_userid, ctx.now)
    ctx.used("action", "competencies")
    ctx.reply(ctx.t("comp.cal.recorded", name=name, code=code, level=level, note=f"（{note}）" if note else ""))
    done[code] = row
    if all(c in done for c in gapped):
        cal.state, cal.held_at = "held", comp.utc(ctx.now)
        ctx.session.add(cal)
        lib = await comp.library(ctx.session, ctx.tenant.key)
        text = ctx.t("comp.cal.held", name=name, period=cal.period,
                     levels=_levels_line(ctx, lib, {c: done[c].level for c in gapped}))
        await ctx.expire_cards(kind=CALIBRATION_CARD, ref_id=cal.id, result=text)
        for userid in sorted({cal.subject_userid, cal.manager_userid} - {me.userid}):
            ctx.send(userid, text)
        await learning_check(ctx, cal.subject_userid, cal.period)


@router.command("calibrate", words=("校准", "calibrate"), args=True, access="calibrate")
async def on_calibrate(ctx: Context) -> None:
    me = ctx.me
    assert me is not None
    parts = parse_feedback(ctx.args)
    tokens = list(ctx.event.mentions) or parts.mentions
    words = (parts.event or "").split()
    period, words = _period_arg(ctx, words)
    code = words[0].upper() if words else ""
    level = comp.level_of(words[1]) if len(words) > 1 else None
    if len(tokens) != 1 or level is None:
        ctx.reply(ctx.t("comp.cal.usage"))
        return
    subject = await _person(ctx, tokens[0])
    if subject is None:
        return
    cal = None
    rows = (await ctx.session.execute(select(comp.Calibration).where(
        col(comp.Calibration.tenant) == ctx.tenant.key, col(comp.Calibration.subject_userid) == subject.userid)
        .order_by(col(comp.Calibration.id).desc()))).scalars()
    for row in rows:
        if period is None or row.period == period:
            cal = row
            break
    if cal is None or not await may_calibrate(ctx, me, cal):
        if cal is not None or not (me.has_role(Role.HR) or await reviewer_of(ctx, subject.userid) == me.userid):
            ctx.reply(ctx.t("comp.cal.denied", name=subject.name))
            return
        ctx.reply(ctx.t("comp.cal.none", name=subject.name, period=period or default_period(ctx)))
        return
    await record_agreement(ctx, cal, code, level, " ".join(words[2:]))



@router.action(AgreeLevel)
async def on_agree(ctx: Context, row: IssuedCard, action: AgreeLevel) -> None:
    me = ctx.me
    assert me is not None
    cal = (await ctx.session.execute(select(comp.Calibration).where(
        col(comp.Calibration.tenant) == ctx.tenant.key, col(comp.Calibration.id) == action.calibration))).scalar_one_or_none()
    if cal is None or row.ref_id != cal.id or action.level not in comp.LEVELS:
        ctx.reply(ctx.t("card.unknown"))
        return
    if not await may_calibrate(ctx, me, cal):
        ctx.reply(ctx.t("comp.cal.denied", name=await ctx.name_of(cal.subject_userid)))
        return
    await record_agreement(ctx, cal, action.code, action.level, "")


# -- the learning link ------------------------------------------------------------------------------

async def learning_check(ctx: Outgoing, subject: str, period: str) -> int:
    """A competency below L2 in this period and the one before: the learning card (once per period)."""
    now_levels = await comp.final_levels(ctx.session, ctx.tenant.key, period, subject)
    before = comp.previous_period(period)
    then_levels = await comp.final_levels(ctx.session, ctx.tenant.key, before, subject)
    cal = await comp.calibration(ctx.session, ctx.tenant.key, period, subject)
    if cal is not None and cal.state != "held":
        return 0  # the level that counts is not known before the meeting
    sent = 0
    lib = await comp.library(ctx.session, ctx.tenant.key)
    settings = CompetencySettings.of(ctx.tenant)
    for code, level in now_levels.items():
        if level >= 2 or then_levels.get(code, 3) >= 2 or code not in lib:
            continue
        if not await claim_send(ctx.session, ctx.tenant.key, subject, f"learning:{code}", period, ctx.now):
            continue
        c = lib[code]
        body = ctx.t("comp.learn.body", periods=f"{before}、{period}", l2=c.l2)
        cases = await success_cases(ctx, subject, code, settings)
        if cases:
            body += ctx.t("comp.learn.cases", cases="\n".join(cases))
        courses = await comp.courses_for(ctx.session, ctx.tenant.key, subject, code, settings.max_courses)
        buttons: list[Button] = []
        if courses:
            body += ctx.t("comp.learn.courses", courses="\n".join(
                f"{i}. {k.title} {k.url}" for i, k in enumerate(courses, 1)))
            for i, k in enumerate(courses, 1):
                assert k.id is not None
                suffix = str(i) if len(courses) > 1 else ""
                buttons += [Button(MarkCourse(course=k.id, mark="done").pack(), ctx.t("comp.btn.done", i=suffix)),
                            Button(MarkCourse(course=k.id, mark="useful").pack(), ctx.t("comp.btn.useful", i=suffix)),
                            Button(MarkCourse(course=k.id, mark="useless").pack(), ctx.t("comp.btn.useless", i=suffix))]
        card = Card(title=ctx.t("comp.learn.title", code=code, cname=c.name), body=body, buttons=buttons)
        if buttons:
            await ctx.issue_card(subject, LEARNING_CARD, card, data={"code": code}, ttl_hours=CARD_TTL_HOURS)
        else:
            ctx.send(subject, Message(kind="card", card=card))
        audit.record(ctx.session, ctx.tenant.key, subject, AUDIT_LEARNING, subject, ctx.now)
        boss = await reviewer_of(ctx, subject)
        if boss:
            ctx.send(boss, ctx.t("comp.learn.manager", name=await ctx.name_of(subject), code=code, cname=c.name))
        sent += 1
    return sent


async def success_cases(ctx: Outgoing, subject: str, code: str, settings: CompetencySettings) -> list[str]:
    """认可 feedback with a tag of the competency, impact 团队级 or 客户级, of the last days, about
    colleagues who allowed their feedback to be shown as a case."""
    tags = [t for t, c in tagged_codes(ctx).items() if c == code]
    allowed = await comp.consents(ctx.session, ctx.tenant.key) - {subject}
    if not tags or not allowed or settings.max_cases == 0:
        return []
    rows = (await ctx.session.execute(select(Feedback).where(
        col(Feedback.tenant) == ctx.tenant.key, col(Feedback.tag).in_(tags), col(Feedback.polarity) == Polarity.PRAISE,
        col(Feedback.impact).in_((Impact.TEAM, Impact.CUSTOMER)), col(Feedback.receiver_userid).in_(sorted(allowed)),
        col(Feedback.created_at) >= comp.utc(ctx.now - timedelta(days=settings.case_days)))
        .order_by(col(Feedback.created_at).desc(), col(Feedback.id).desc()).limit(settings.max_cases))).scalars()
    return [f"· {await ctx.name_of(f.receiver_userid)}（{Impact(f.impact).label(ctx.locale)}）：{f.event}" for f in rows]



@router.action(MarkCourse)
async def on_mark(ctx: Context, row: IssuedCard, action: MarkCourse) -> None:
    k = await comp.course(ctx.session, ctx.tenant.key, action.course)
    if k is None or row.kind != LEARNING_CARD:
        ctx.reply(ctx.t("card.unknown"))
        return
    if await comp.mark_course(ctx.session, ctx.tenant.key, ctx.event.userid, action.course, action.mark, ctx.now):
        ctx.reply(ctx.t("comp.marked", title=k.title, mark=ctx.t(f"comp.mark.{action.mark}")))
    else:
        ctx.reply(ctx.t("comp.marked.again"))


@router.command("case_consent", words=("案例授权", "share-cases"), args=True, access="own")
async def on_case_consent(ctx: Context) -> None:
    word = ctx.args.strip().casefold().rstrip("。.!！")
    if word in ("同意", "开", "开启", "yes", "on"):
        await comp.set_consent(ctx.session, ctx.tenant.key, ctx.event.userid, True, ctx.now)
        ctx.reply(ctx.t("comp.consent.on"))
    elif word in ("撤回", "关", "关闭", "不同意", "no", "off"):
        await comp.set_consent(ctx.session, ctx.tenant.key, ctx.event.userid, False, ctx.now)
        ctx.reply(ctx.t("comp.consent.off"))
    else:
        on = ctx.event.userid in await comp.consents(ctx.session, ctx.tenant.key)
        ctx.reply(ctx.t("comp.consent.status", state=ctx.t("comp.consent.yes" if on else "comp.consent.no")))


# -- the conversation: typed answers while a draft is under way -------------------------------------

@router.conversation(FLOW, label="comp.flow", resume=resume)
async def on_flow(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv else {}
    a = await _flow_assessment(ctx, data)
    if a is None or a.state != comp.DRAFT:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("help"))
        return
    text = ctx.event.text.strip()
    step, code = data.get("step"), str(data.get("code", ""))
    level = comp.level_of(text)
    if step == "level" and level is not None:
        if not await l3_refused(ctx, a, code, level):
            await ctx.expire_cards(kind=ANCHOR_CARD, ref_id=a.id or 0, result=ctx.t("comp.picked", level=level))
            await pick_level(ctx, a, code, level)
        return
    if step == "evidence":
        refs = [str(r) for r in data.get("refs") or []]
        folded = text.translate(str.maketrans("０１２３４５６７８９", "0123456789")).rstrip("。.")
        if folded.isdigit() and 1 <= int(folded) <= len(refs):
            await attach(ctx, a, code, refs[int(folded) - 1])
            return
        if folded.casefold() in ("下一项", "下一个", "跳过", "next", "skip", "好了"):
            await next_competency(ctx, a, code)
            return
    if step == "submit" and text.rstrip("。.!！") in ("提交", "submit"):
        await submit(ctx, a, None)
        await ctx.expire_cards(kind=SUBMIT_CARD, ref_id=a.id or 0, result=ctx.t("comp.submitted"))
        return
    ctx.reply(ctx.t("comp.flow.help"))

