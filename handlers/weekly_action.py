"""This week's key action: record it, have a colleague witness it, mark it done.

A reply may carry all three parts (`O1-KR2 完成2份临床评价报告初稿 @李娜`) or
arrive in pieces; the pieces are kept in a draft (conversation state, persisted
with an expiry) and the bot asks for what is missing, one thing at a time.
Nothing the person typed is thrown away: a part that fails validation is
reported and the valid parts stay in the draft.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from cards.intent_words import command_words
from cards.model import Button, Card
from handlers.actions import CardAction
from handlers.context import Context
from handlers.decisions import decide_typed
from handlers.feedback_rights import feedback_buttons
from handlers.weekly_prompt import prompt_card
from handlers.card_answers import meaning_of, typed_answer
from handlers.intent import Intent, classify
from handlers.people import MAX_CANDIDATES, Directory, tenant_directory
from handlers.reply_grammar import LeaveParseError, date_range, parse_action_reply, parse_leave, starts_leave, starts_skip
from handlers.router import Router
from bot.core.calendar import WorkCalendar, iso_week, week_days, week_label
from store.goals import active_goals, find_goal, goal_by_code
from store.models import ActionEdit, Leave, WeeklyAction, WitnessEvent
from store.statuses import ActionStatus, LeaveKind, WitnessEventKind, WitnessState
from store.pulse import action_status
from store.weekly import action_by_id, action_of_week, leave_overlapping



class PickWitness(CardAction, prefix="pick"):
    userid: str


class PickGoal(CardAction, prefix="goal"):
    code: str


NO_GOAL = "none"  # the 不关联目标 button of the goal card

router = Router("weekly_action")

MAX_THING = 20
DOUBT_CARD = "action_doubt"
NONE_OF_THEM = "pick:none"  # the last button of every choice of people (PickWitness(userid="none"))
LEAVE_PAST = "leave_past"
DRAFT = "weekly_draft"
EDIT = "weekly_edit"
REWITNESS = "weekly_rewitness"


# -- lookups -------------------------------------------------------------------
def this_week(ctx: Context) -> str:
    return iso_week(ctx.now.astimezone(ctx.tenant.tz).date())


def today(ctx: Context):  # type: ignore[no-untyped-def]
    return ctx.now.astimezone(ctx.tenant.tz).date()


async def my_action(ctx: Context, userid: str | None = None) -> WeeklyAction | None:
    return await action_of_week(ctx.session, ctx.tenant.key, userid or ctx.event.userid, this_week(ctx))


async def directory(ctx: Context) -> Directory:
    return await tenant_directory(ctx.session, ctx.tenant.key)


async def goal_label(ctx: Context, code: str | None) -> str:
    if not code:
        return ctx.t("goal.none")
    goal = await goal_by_code(ctx.session, ctx.tenant.key, code)
    return f"{code} {goal.title}" if goal else code


# -- understanding one reply ------------------------------------------------------
async def _absorb(ctx: Context, draft: dict[str, Any], text: str, *, purpose: str) -> list[str]:
    """Merge what `text` says into `draft`; returns problems to tell the person.

    May issue a choice card (ambiguous witness), in which case draft["choosing"] is set.
    """
    parsed = parse_action_reply(text, platform_mentions=ctx.event.mentions or None)
    problems: list[str] = []
    if parsed.goal_none:
        draft["goal"], draft["goal_set"] = None, True
    elif parsed.goal:
        goal = await find_goal(ctx.session, ctx.tenant.key, parsed.goal)
        if goal is None:
            problems.append(ctx.t("goal.unknown", token=parsed.goal))
        else:
            draft["goal"], draft["goal_set"] = goal.code, True
    if parsed.thing:
        if parsed.thing_length > MAX_THING:
            problems.append(ctx.t("too_long", n=parsed.thing_length))
        else:
            draft["thing"] = parsed.thing
    tokens = parsed.witness_tokens
    if len(tokens) > 1:
        problems.append(ctx.t("witness.many"))
    elif len(tokens) == 1:
        await _resolve_witness(ctx, draft, tokens[0], problems, purpose=purpose)
    return problems


async def _resolve_witness(ctx: Context, draft: dict[str, Any], token: str, problems: list[str], *, purpose: str) -> None:
    people = await directory(ctx)
    typo = False
    if ctx.event.mentions and token in ctx.event.mentions:
        person = next((p for p in people.people if p.userid == token), None)
        match_status, cands = ("one", [person]) if person else ("none", [])
    else:
        m = people.resolve(token)
        match_status, cands, typo = m.status, ([m.person] if m.status == "one" and m.person else m.candidates), m.typo
    if match_status == "none" or not cands:
        problems.append(ctx.t("witness.none", token=token))
        return
    if match_status == "one":
        person = cands[0]
        assert person is not None
        if person.userid == ctx.event.userid:
            problems.append(ctx.t("witness.self"))
            return
        if not typo:
            draft["witness"] = person.userid
            return
    others = [p for p in cands if p is not None and p.userid != ctx.event.userid][:MAX_CANDIDATES]
    if len(others) == 1 and not typo:
        draft["witness"] = others[0].userid
        return
    # Only a typo matched (`@zhaolie` → 赵磊): who the witness is must not change on a guess.
    card = Card(
        title=ctx.t("witness.choose.title"),
        body=ctx.t("witness.typo.body" if typo else "witness.choose.body", token=token),
        buttons=[Button(key=PickWitness(userid=p.userid).pack(), text=ctx.person_label(p))
                 for p in others] + [Button(key=NONE_OF_THEM, text=ctx.t("btn.none_of_them"))],
    )
    await ctx.issue_card(ctx.event.userid, "witness_choice", card, data={"purpose": purpose}, ttl_hours=ctx.tenant.draft_ttl_hours)
    draft["choosing"] = True


async def _goal_card(ctx: Context) -> None:
    me = ctx.me
    assert me is not None
    rows = await active_goals(ctx.session, ctx.tenant.key)
    # Goals of my own department first: they are the ones most people serve.
    mine = [g for g in rows if g.department and me.department.startswith(g.department)]
    picks = (mine + [g for g in rows if g not in mine])[:5]
    card = Card(
        title=ctx.t("ask.goal.title"), body=ctx.t("ask.goal.body"),
        buttons=[Button(key=PickGoal(code=g.code).pack(), text=f"{g.code} {g.title}"[:20]) for g in picks]
        + [Button(key=PickGoal(code=NO_GOAL).pack(), text=ctx.t("btn.none_goal"))],
    )
    await ctx.issue_card(me.userid, "goal_choice", card, ttl_hours=ctx.tenant.draft_ttl_hours)


async def _advance(ctx: Context, draft: dict[str, Any], problems: list[str]) -> None:
    """Record the action if the draft is complete, else ask for the next missing part."""
    choosing = draft.pop("choosing", False)
    if problems:
        ctx.reply("\n".join(problems))
    if choosing:
        await ctx.set_conversation(DRAFT, draft)
        return
    if draft.get("thing") and draft.get("witness") and draft.get("goal_set"):
        await ctx.clear_conversation()
        await _record(ctx, draft)
        return
    await ctx.set_conversation(DRAFT, draft)
    if problems:
        return  # the problem message already says what to fix
    if not draft.get("thing"):
        ctx.reply(ctx.t("ask.thing"))
    elif not draft.get("witness"):
        ctx.reply(ctx.t("ask.witness"))
    else:
        await _goal_card(ctx)


async def _record(ctx: Context, draft: dict[str, Any]) -> None:
    me = ctx.me
    assert me is not None
    action = WeeklyAction(tenant=ctx.tenant.key, userid=me.userid, week=this_week(ctx), goal_code=draft.get("goal"),
                          thing=draft["thing"], witness_userid=draft["witness"], status=ActionStatus.OPEN,
                          witness_state=WitnessState.INVITED, created_at=ctx.now)
    ctx.session.add(action)
    ctx.used("action", "weekly_action")
    await ctx.session.flush()
    assert action.id is not None
    ctx.session.add(WitnessEvent(tenant=ctx.tenant.key, action_id=action.id, witness_userid=action.witness_userid,
                                 kind=WitnessEventKind.INVITED, at=ctx.now))
    await _send_summary(ctx, action, ctx.t("summary.title"))
    await _invite(ctx, action)


async def _fields(ctx: Context, action: WeeklyAction) -> list[tuple[str, str]]:
    return [(ctx.t("field.goal"), await goal_label(ctx, action.goal_code)),
            (ctx.t("field.thing"), action.thing),
            (ctx.t("field.witness"), await ctx.name_of(action.witness_userid))]


async def _send_summary(ctx: Context, action: WeeklyAction, title: str) -> None:
    await ctx.expire_cards(kind="action_owner", ref_id=action.id or 0, result=ctx.t("btn.edit"))
    card = Card(title=title, body=ctx.t("summary.body", witness=await ctx.name_of(action.witness_userid)),
                fields=await _fields(ctx, action),
                buttons=[Button("edit", ctx.t("btn.edit")), Button("done", ctx.t("btn.done"), "primary")])
    await ctx.issue_card(action.userid, "action_owner", card, ref_id=action.id, ttl_hours=24 * 7)


async def _invite(ctx: Context, action: WeeklyAction) -> None:
    owner = await ctx.name_of(action.userid)
    card = Card(title=ctx.t("invite.title"), body=ctx.t("invite.body", name=owner, thing=action.thing),
                fields=[(ctx.t("field.goal"), await goal_label(ctx, action.goal_code))],
                buttons=[Button("accept", ctx.t("btn.accept"), "primary"), Button("decline", ctx.t("btn.decline"), "danger")]
                + await feedback_buttons(ctx, action.witness_userid, action.userid, about="action"))
    await ctx.issue_card(action.witness_userid, "witness_invite", card, ref_id=action.id, ttl_hours=72)


# -- entry points ------------------------------------------------------------------
async def on_text(ctx: Context) -> None:
    """A message that is not a command: chit-chat, a doubt, or (part of) this week's action.

    Intent first: 「你好」「好的，收到」「👍」「这是什么？」 get a friendly answer and are never
    stored; a short text alone (「测试」) is recorded only when the person confirms it.
    """
    conv = await ctx.conversation()
    draft: dict[str, Any] = dict(conv.data) if conv is not None and conv.kind == DRAFT else {}
    # 同意 / 通过 / 驳回 with no exchange open to take them answer the card waiting for them, never a week's action.
    if not draft and await decide_typed(ctx):
        return
    intent = classify(ctx.event.text, locale=ctx.locale, mentions=ctx.event.mentions)
    if intent.kind in ("chitchat", "unclear"):
        await _chat(ctx, intent)
        return
    action = await my_action(ctx)
    if action is not None:
        ctx.reply(ctx.t("already_recorded", thing=action.thing))
        return
    # A short text is an answer when the bot has just asked for the thing; alone, it is a doubt.
    if intent.kind == "doubtful" and not (draft and not draft.get("thing")):
        await _ask_doubt(ctx, intent.text)
        return
    problems = await _absorb(ctx, draft, ctx.event.text, purpose="draft")
    await _advance(ctx, draft, problems)


async def _chat(ctx: Context, intent: Intent) -> None:
    """A short friendly answer with the week's status and the one-line format; nothing is stored."""
    lines = [ctx.t(f"chat.{intent.chat}") if intent.kind == "chitchat" else ctx.t("chat.unclear")]
    action = await my_action(ctx)
    if action is None:
        lines.append(ctx.t("status.none", week=week_label(this_week(ctx), ctx.tenant.locale)))
        lines.append(ctx.t("chat.format"))
    else:
        lines.append(ctx.t("chat.has_action", thing=action.thing, status=action_status(action, week_over=False, locale=ctx.locale)))
    ctx.reply("\n".join(lines))


async def _ask_doubt(ctx: Context, text: str) -> None:
    parsed = parse_action_reply(text)
    thing = parsed.thing or text
    if parsed.thing_length > MAX_THING:
        ctx.reply(ctx.t("too_long", n=parsed.thing_length))
        return
    card = Card(title=ctx.t("doubt.title"), body=ctx.t("doubt.body", thing=thing),
                buttons=[Button("yes", ctx.t("doubt.yes"), "primary"), Button("no", ctx.t("doubt.no"))])
    await ctx.issue_card(ctx.event.userid, DOUBT_CARD, card, data={"thing": thing}, ttl_hours=ctx.tenant.draft_ttl_hours)


@router.card(DOUBT_CARD)
async def on_doubt_card(ctx: Context, row: Any) -> None:
    thing = str(row.data.get("thing", ""))
    if ctx.event.action_key != "yes":
        await ctx.close_card(row, ctx.t("doubt.no"))
        ctx.reply(ctx.t("doubt.dropped") + "\n" + ctx.t("chat.format"))
        return
    await ctx.close_card(row, ctx.t("doubt.yes"))
    action = await my_action(ctx)
    if action is not None:
        ctx.reply(ctx.t("already_recorded", thing=action.thing))
        return
    conv = await ctx.conversation()
    draft: dict[str, Any] = dict(conv.data) if conv is not None and conv.kind == DRAFT else {}
    draft["thing"] = thing
    await _advance(ctx, draft, [])


async def _resume_draft(ctx: Context) -> None:
    conv = await ctx.conversation()
    await _advance(ctx, dict(conv.data) if conv is not None and conv.kind == DRAFT else {}, [])


async def _is_whole_action(ctx: Context) -> bool:
    """A whole weekly action (the thing and a witness) stands on its own, whatever else is under way."""
    if await my_action(ctx) is not None:
        return False
    parsed = parse_action_reply(ctx.event.text, platform_mentions=ctx.event.mentions or None)
    return bool(parsed.thing) and bool(parsed.witness_tokens) and not parsed.too_long


router.fallback = on_text
router.conversation(DRAFT, label="flow.weekly", resume=_resume_draft)(on_text)
router.complete_message(_is_whole_action, on_text, owns=(DRAFT,))


@router.command("edit", words=("修改", "edit"), args=True)
async def on_edit(ctx: Context) -> None:
    rest = ctx.args
    await _edit(ctx, rest)


@router.conversation(EDIT, label="flow.weekly_edit")
async def on_edit_reply(ctx: Context) -> None:
    await ctx.clear_conversation()
    await _edit(ctx, ctx.event.text)


@router.conversation(REWITNESS, label="flow.weekly_edit")
async def on_rewitness(ctx: Context) -> None:
    await ctx.clear_conversation()
    await _edit(ctx, ctx.event.text)


async def _edit(ctx: Context, text: str) -> None:
    action = await my_action(ctx)
    if action is None:
        # No action yet: an "edit" is simply the first version of it.
        if text.strip():
            await on_text(_with_text(ctx, text))
        else:
            ctx.reply(ctx.t("no_action"))
        return
    if action.status == "confirmed":
        ctx.reply(ctx.t("already_confirmed"))
        return
    if not text.strip():
        await ctx.set_conversation(EDIT, {})
        ctx.reply(ctx.t("edit.ask"))
        return
    draft: dict[str, Any] = {}
    problems = await _absorb(ctx, draft, text, purpose="edit")
    if problems:
        # Bad input changes nothing: "修改 新内容 @自己" refused the witness but used to apply the text.
        ctx.reply("\n".join([*problems, ctx.t("edit.unchanged")]))
        return
    if draft.pop("choosing", False):
        return  # the choice card's answer finishes the edit
    await _apply_edit(ctx, action, draft)


async def _apply_edit(ctx: Context, action: WeeklyAction, draft: dict[str, Any], *, quiet_if_empty: bool = False) -> None:
    changes: list[str] = []
    by = ctx.event.userid

    def log(field: str, old: str | None, new: str | None) -> None:
        ctx.session.add(ActionEdit(tenant=ctx.tenant.key, action_id=action.id or 0, by_userid=by, at=ctx.now,
                                   field_name=field, old_value=old or "", new_value=new or ""))

    if draft.get("goal_set") and draft.get("goal") != action.goal_code:
        log("goal", action.goal_code, draft.get("goal"))
        changes.append(f"{ctx.t('field.goal')} {action.goal_code or '—'} → {draft.get('goal') or '—'}")
        action.goal_code = draft.get("goal")
    if draft.get("thing") and draft["thing"] != action.thing:
        log("thing", action.thing, draft["thing"])
        changes.append(f"{ctx.t('field.thing')} {action.thing} → {draft['thing']}")
        action.thing = draft["thing"]
    new_witness = draft.get("witness")
    witness_changed = bool(new_witness and (new_witness != action.witness_userid or action.witness_state == "declined"))
    if witness_changed and new_witness != action.witness_userid:
        log("witness", action.witness_userid, new_witness)
        changes.append(f"{ctx.t('field.witness')} {await ctx.name_of(action.witness_userid)} → {await ctx.name_of(new_witness)}")
    if not changes and not witness_changed:
        if not quiet_if_empty:
            ctx.reply(ctx.t("edit.nothing"))
        return
    ctx.session.add(action)
    if witness_changed:
        for kind in ("witness_invite", "witness_confirm"):
            await ctx.expire_cards(kind=kind, ref_id=action.id or 0, result=ctx.t("card.witness_changed"))
        action.witness_userid = new_witness or action.witness_userid
        action.witness_state = WitnessState.INVITED
        ctx.session.add(WitnessEvent(tenant=ctx.tenant.key, action_id=action.id or 0,
                                     witness_userid=action.witness_userid, kind=WitnessEventKind.INVITED, at=ctx.now))
        await _invite(ctx, action)
        if action.status == "done":
            await _ask_confirmation(ctx, action)
    await _send_summary(ctx, action, ctx.t("edit.done", changes="；".join(changes) or ctx.t("field.witness")))


def _with_text(ctx: Context, text: str) -> Context:
    ev = replace(ctx.event, text=text)
    return Context(session=ctx.session, tenant=ctx.tenant, event=ev, me=ctx.me, now=ctx.now, sent=ctx.sent,
                   data_dir=ctx.data_dir)


@router.command("done", words=command_words("done"), usage="action")
async def on_done(ctx: Context) -> None:
    action = await my_action(ctx)
    if action is None:
        ctx.reply(ctx.t("no_action"))
        return
    await _mark_done(ctx, action)


async def _mark_done(ctx: Context, action: WeeklyAction) -> None:
    witness = await ctx.name_of(action.witness_userid)
    if action.status == "confirmed":
        ctx.reply(ctx.t("confirmed.owner", witness=witness, thing=action.thing))
        return
    if action.status == "done":
        ctx.reply(ctx.t("done.owner", witness=witness))
        return
    action.status, action.done_at = ActionStatus.DONE, ctx.now
    ctx.session.add(action)
    await ctx.expire_cards(kind="action_owner", ref_id=action.id or 0, result=ctx.t("btn.done"))
    await ctx.expire_cards(kind="last_day", ref_id=action.id or 0, result=ctx.t("btn.done"))
    if action.witness_state == "declined":
        await ctx.set_conversation(REWITNESS, {}, userid=action.userid)
        ctx.reply(ctx.t("declined.owner", witness=witness, thing=action.thing))
        return
    await _ask_confirmation(ctx, action)
    ctx.reply(ctx.t("done.owner", witness=witness))


async def _ask_confirmation(ctx: Context, action: WeeklyAction) -> None:
    owner = await ctx.name_of(action.userid)
    ctx.session.add(WitnessEvent(tenant=ctx.tenant.key, action_id=action.id or 0,
                                 witness_userid=action.witness_userid, kind=WitnessEventKind.ASKED, at=ctx.now))
    card = Card(title=ctx.t("confirm.title"), body=ctx.t("confirm.body", name=owner, thing=action.thing),
                fields=[(ctx.t("field.goal"), await goal_label(ctx, action.goal_code))],
                buttons=[Button("confirm", ctx.t("btn.confirm"), "primary"), Button("deny", ctx.t("btn.deny"), "danger")]
                + await feedback_buttons(ctx, action.witness_userid, action.userid, about="action"))
    await ctx.issue_card(action.witness_userid, "witness_confirm", card, ref_id=action.id, ttl_hours=72)


@router.command("not_done", words=command_words("not_done"), usage="action")
async def on_not_done(ctx: Context) -> None:
    action = await my_action(ctx)
    if action is None:
        ctx.reply(ctx.t("no_action"))
        return
    # 「未完成」 on a Wednesday is a worry, not the week's outcome: the week closes on its last
    # working day, when the bot asks anyway. (The last-day card's button goes to its own handler.)
    last = WorkCalendar(ctx.tenant).last_working_day(action.week)
    if last is not None and today(ctx) < last:
        ctx.reply(ctx.t("not_done.early", day=f"{last.month}-{last.day:02d}"))
        return
    await _mark_not_done(ctx, action)


async def _mark_not_done(ctx: Context, action: WeeklyAction) -> None:
    if action.status == "confirmed":
        ctx.reply(ctx.t("already_confirmed"))
        return
    action.status, action.done_at = ActionStatus.NOT_DONE, None
    ctx.session.add(action)
    await ctx.expire_cards(kind="witness_confirm", ref_id=action.id or 0, result=ctx.t("btn.not_done"))
    ctx.reply(ctx.t("not_done.owner"))


# -- card presses --------------------------------------------------------------------
async def _action_of(ctx: Context, ref_id: int | None) -> WeeklyAction | None:
    return await action_by_id(ctx.session, ctx.tenant.key, ref_id)


@router.card("action_owner")
async def on_owner_card(ctx: Context, row: Any) -> None:
    action = await _action_of(ctx, row.ref_id)
    if action is None:
        ctx.reply(ctx.t("card.unknown"))
        return
    if ctx.event.action_key == "edit":
        if action.status == "confirmed":
            ctx.reply(ctx.t("already_confirmed"))
            return
        await ctx.set_conversation(EDIT, {})
        ctx.reply(ctx.t("edit.ask"))
    elif ctx.event.action_key == "done":
        await _mark_done(ctx, action)


@router.card("last_day")
async def on_last_day_card(ctx: Context, row: Any) -> None:
    action = await _action_of(ctx, row.ref_id)
    if action is None:
        ctx.reply(ctx.t("card.unknown"))
        return
    if ctx.event.action_key == "done":
        await ctx.close_card(row, ctx.t("btn.done"))
        await _mark_done(ctx, action)
    else:
        await ctx.close_card(row, ctx.t("btn.not_done"))
        await _mark_not_done(ctx, action)


@router.card("witness_invite")
async def on_invite_card(ctx: Context, row: Any) -> None:
    action = await _action_of(ctx, row.ref_id)
    if action is None or action.witness_userid != ctx.event.userid:
        await ctx.close_card(row, ctx.t("card.witness_changed"))
        return
    witness = await ctx.name_of(ctx.event.userid)
    if ctx.event.action_key == "accept":
        action.witness_state = WitnessState.ACCEPTED
        ctx.session.add(WitnessEvent(tenant=ctx.tenant.key, action_id=action.id or 0,
                                     witness_userid=ctx.event.userid, kind=WitnessEventKind.ACCEPTED, at=ctx.now))
        await ctx.close_card(row, ctx.t("card.accepted", thing=action.thing))
        ctx.send(action.userid, ctx.t("accepted.owner", witness=witness, thing=action.thing))
    else:
        action.witness_state = WitnessState.DECLINED
        ctx.session.add(WitnessEvent(tenant=ctx.tenant.key, action_id=action.id or 0,
                                     witness_userid=ctx.event.userid, kind=WitnessEventKind.DECLINED, at=ctx.now))
        await ctx.close_card(row, ctx.t("card.declined"))
        await ctx.expire_cards(kind="witness_confirm", ref_id=action.id or 0, result=ctx.t("card.declined"))
        await ctx.set_conversation(REWITNESS, {}, userid=action.userid)
        ctx.send(action.userid, ctx.t("declined.owner", witness=witness, thing=action.thing))
    ctx.session.add(action)


@router.card("witness_confirm")
async def on_confirm_card(ctx: Context, row: Any) -> None:
    action = await _action_of(ctx, row.ref_id)
    if action is None or action.witness_userid != ctx.event.userid or action.status != "done":
        await ctx.close_card(row, ctx.t("card.void"))
        return
    witness = await ctx.name_of(ctx.event.userid)
    if ctx.event.action_key == "confirm":
        action.status, action.confirmed_at = ActionStatus.CONFIRMED, ctx.now
        if action.witness_state != "accepted":
            action.witness_state = WitnessState.ACCEPTED  # confirming is the strongest form of accepting
        ctx.session.add(WitnessEvent(tenant=ctx.tenant.key, action_id=action.id or 0,
                                     witness_userid=ctx.event.userid, kind=WitnessEventKind.CONFIRMED, at=ctx.now))
        await ctx.expire_cards(kind="witness_invite", ref_id=action.id or 0, result=ctx.t("card.confirmed"))
        await ctx.close_card(row, ctx.t("card.confirmed.thing", thing=action.thing))
        ctx.send(action.userid, ctx.t("confirmed.owner", witness=witness, thing=action.thing))
    else:
        action.status, action.done_at = ActionStatus.OPEN, None
        ctx.session.add(WitnessEvent(tenant=ctx.tenant.key, action_id=action.id or 0,
                                     witness_userid=ctx.event.userid, kind=WitnessEventKind.DENIED, at=ctx.now))
        await ctx.close_card(row, ctx.t("card.denied"))
        ctx.send(action.userid, ctx.t("denied.owner", witness=witness, thing=action.thing))
    ctx.session.add(action)


@router.card("witness_choice")
async def on_witness_choice(ctx: Context, row: Any) -> None:
    if ctx.event.action_key == NONE_OF_THEM:
        # Nothing changes: the draft (or the recorded action) keeps what it had.
        await ctx.close_card(row, ctx.t("btn.none_of_them"))
        ctx.reply(ctx.t("witness.none_of_them"))
        return
    picked = PickWitness.unpack(ctx.event.action_key)
    userid = picked.userid if picked else ""
    chosen = await ctx.employee(userid) if userid else None
    if chosen is None or not chosen.active:
        await ctx.close_card(row, ctx.t("card.gone"))
        return
    await ctx.close_card(row, ctx.t("card.chosen", name=chosen.name))
    if row.data.get("purpose") in ("edit", "rewitness"):
        action = await my_action(ctx)
        if action is not None:
            await _apply_edit(ctx, action, {"witness": userid})
            return
    conv = await ctx.conversation()
    draft = dict(conv.data) if conv is not None and conv.kind == DRAFT else {}
    draft["witness"] = userid
    if await my_action(ctx) is None:
        await _advance(ctx, draft, [])


@router.card("goal_choice")
async def on_goal_choice(ctx: Context, row: Any) -> None:
    picked = PickGoal.unpack(ctx.event.action_key)
    if picked is None:
        ctx.reply(ctx.t("card.unknown"))
        return
    code = picked.code
    await ctx.close_card(row, ctx.t("btn.none_goal") if code == NO_GOAL else f"{code}")
    conv = await ctx.conversation()
    draft = dict(conv.data) if conv is not None and conv.kind == DRAFT else {}
    draft["goal"], draft["goal_set"] = (None if code == NO_GOAL else code), True
    if await my_action(ctx) is None:
        await _advance(ctx, draft, [])


# -- leave and skipping ------------------------------------------------------------------
@router.command("leave", pattern=starts_leave)
async def on_leave(ctx: Context) -> None:
    await _leave(ctx, ctx.event.text)


@router.command("skip", pattern=starts_skip)
async def on_skip(ctx: Context) -> None:
    await _leave(ctx, ctx.event.text)


async def _leave(ctx: Context, text: str) -> None:
    try:
        req = parse_leave(text, today(ctx), WorkCalendar(ctx.tenant))
    except LeaveParseError as exc:
        if exc.code == "past" and exc.suggested is not None:
            # 12-01 typed on 12-02: ask whether next year is meant; never move it in silence.
            s = exc.suggested
            said = date_range(ctx.locale, s.start, s.end)
            await ctx.set_conversation(LEAVE_PAST, {"start": s.start.isoformat(), "end": s.end.isoformat(),
                                                    "reason": s.reason})
            ctx.reply(ctx.t("leave.past.ask", question=exc.text(ctx.locale), suggested=said, example=said))
            return
        ctx.reply(exc.text(ctx.locale))
        return
    if req is None:
        ctx.reply(ctx.t("help"))
        return
    await _store_leave(ctx, req.start, req.end, req.reason, whole_week=req.whole_week)


@router.conversation(LEAVE_PAST)
async def on_leave_past_answer(ctx: Context) -> None:
    """The answer to 「12-01 已经过去了，是指 2027-12-01 吗？」."""
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    await ctx.clear_conversation()
    answer = typed_answer(ctx.event.text, [("yes", ctx.t("doubt.yes")), ("no", ctx.t("doubt.no"))], locale=ctx.locale)
    kind = meaning_of(answer.key) if answer else None
    if kind == "yes" and data.get("start"):
        await _store_leave(ctx, date.fromisoformat(data["start"]), date.fromisoformat(data["end"]),
                           str(data.get("reason", "")), whole_week=False)
    elif kind == "no":
        ctx.reply(ctx.t("leave.past.dropped"))
    else:
        await on_text(ctx)  # not an answer: read it as any other message


async def _store_leave(ctx: Context, start, end, reason: str, *, whole_week: bool) -> None:  # type: ignore[no-untyped-def]
    ctx.session.add(Leave(tenant=ctx.tenant.key, userid=ctx.event.userid, start_day=start, end_day=end,
                          reason=reason, kind=LeaveKind.SKIP if whole_week else LeaveKind.LEAVE, created_at=ctx.now))
    await ctx.clear_conversation()
    suffix = ctx.t("reason.suffix", reason=reason) if reason else ""
    if whole_week:
        ctx.reply(ctx.t("skip.ok", reason=suffix))
    else:
        ctx.reply(ctx.t("leave.ok", start=start.isoformat(), end=end.isoformat(), reason=suffix))


@router.card("morning_prompt")
async def on_prompt_card(ctx: Context, row: Any) -> None:
    if ctx.event.action_key == "skip":
        await ctx.close_card(row, ctx.t("btn.skip_week"))
        days = week_days(this_week(ctx))
        already = await leave_overlapping(ctx.session, ctx.tenant.key, ctx.event.userid, days[-1], days[-1])
        if already is not None:  # the shared card can be pressed again: skipping twice is once
            ctx.reply(ctx.t("skip.ok", reason=""))
            return
        await _store_leave(ctx, today(ctx), days[-1], "", whole_week=True)


# -- status and help -----------------------------------------------------------------------
@router.command("status", words=command_words("status"))
async def on_status(ctx: Context) -> None:
    action = await my_action(ctx)
    if action is None:
        week = week_label(this_week(ctx), ctx.tenant.locale)
        days = week_days(this_week(ctx))
        away = await leave_overlapping(ctx.session, ctx.tenant.key, ctx.event.userid, days[0], days[-1])
        if away is None:
            ctx.reply(ctx.t("status.none", week=week))
            return
        # Someone on leave asking 我的 should hear that nothing is expected of them, not "no action".
        reason = ctx.t("reason.suffix", reason=away.reason) if away.reason else ""
        what = (ctx.t("status.skip", reason=reason) if away.kind == "skip" else
                ctx.t("status.leave", start=f"{away.start_day:%m-%d}", end=f"{away.end_day:%m-%d}", reason=reason))
        ctx.reply(ctx.t("status.away", week=week, what=what))
        return
    card = Card(title=f"{ctx.t('summary.title')} · {action.week}", fields=await _fields(ctx, action)
                + [(ctx.t("field.status"), action_status(action, week_over=False, locale=ctx.locale))])
    await ctx.issue_card(action.userid, "status", card, ref_id=action.id)


GOAL_LIST_MAX = 15


@router.command("goals", words=command_words("goals"))
async def on_goals(ctx: Context) -> None:
    """The goal list with codes, the sender's department first: what to put in front of an action."""
    me = ctx.me
    assert me is not None
    rows = await active_goals(ctx.session, ctx.tenant.key)
    if not rows:
        ctx.reply(ctx.t("goals.none"))
        return
    mine = [g for g in rows if g.department and me.department.startswith(g.department)]
    ordered = mine + [g for g in rows if g not in mine]
    lines = [ctx.t("goals.head")] + [f"{g.code} {g.title}" for g in ordered[:GOAL_LIST_MAX]]
    if len(ordered) > GOAL_LIST_MAX:
        lines.append(ctx.t("goals.more", n=len(ordered), shown=GOAL_LIST_MAX))
    lines.append(ctx.t("goals.hint"))
    ctx.reply("\n".join(lines))


@router.command("help", words=command_words("help"), usage=None)
async def on_help(ctx: Context) -> None:
    ctx.reply(ctx.t("help"))


@router.menu("weekly")
async def on_menu_weekly(ctx: Context) -> None:
    if await my_action(ctx) is None:
        await ctx.issue_card(ctx.event.userid, "morning_prompt", prompt_card(ctx), ttl_hours=24 * 7)
    else:
        await on_status(ctx)


router.menu("mydata")(on_status)
