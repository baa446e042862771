"""Micro-feedback (微反馈): a concrete, tagged note from a manager to a person, in one message or a few taps.

`反馈 @王强 #主动补位 客户级 周二夜里帮客户排查退货问题` records it at once. Any
part may be missing; the draft is kept in conversation state and the bot asks
for the next part: the person (buttons from the giver's reporting line), the tag
(buttons from the tenant's library), the impact level, then the event text.
Nothing is invented: an unknown tag is offered as a choice, a vague event
(`继续加油`) is refused with a request for what actually happened.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlmodel import col

from pydantic import Field, field_validator

from bot.core.config import Section, Strict
from cards.intent_words import command_words
from cards.model import Button, Card
from bot.core.timeutil import aware
from handlers.actions import CardAction
from handlers import feedback_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.context import Context, Outgoing
from handlers.people import Directory, Person, tenant_directory
from handlers.reply_grammar import collapse_spaces, fold_width
from handlers.router import Router
from store import audit
from store.feedback import IMPACTS, add_feedback, counts_by_tag, local_day_start, received
from store.models import Employee, Feedback, IssuedCard, Task
from store.statuses import FeedbackRef, Impact, Polarity
from store.pulse import in_line, reporting_line
from store.weekly import action_by_id

router = Router("feedback")

DRAFT = "feedback_draft"
FLOW_CARDS = ("fb_person", "fb_tag", "fb_impact")


class FeedbackTag(Strict):
    name: str = Field(min_length=1, max_length=20)
    polarity: Polarity = Polarity.PRAISE

    @field_validator("polarity", mode="before")
    @classmethod
    def _label(cls, value: Any) -> Any:
        """The file may name a polarity by its label (认可, 改进) or its value (praise, improve)."""
        return Polarity.from_label(value) or value if isinstance(value, str) else value
    competency: str = Field("", max_length=20)  # the competency code it evidences (C03), if any


_PRAISE, _IMPROVE = Polarity.PRAISE, Polarity.IMPROVE
DEFAULT_TAGS = [FeedbackTag(name=n, polarity=p) for n, p in (
    ("主动补位", _PRAISE), ("方案创新", _PRAISE), ("客户需求深挖", _PRAISE), ("跨部门协作", _PRAISE),
    ("风险预警", _PRAISE), ("知识沉淀", _PRAISE), ("响应不及时", _IMPROVE), ("交付质量待提升", _IMPROVE))]


def person_label(ctx: Context | Outgoing, name: str, department: str, userid: str) -> str:
    """王强（注册部）: a name told apart from a namesake by the last part of the department."""
    return ctx.t("fb.person.label", name=name, where=department.split("/")[-1] or userid)


class FeedbackSettings(Section, name="feedback", legacy={
        "feedback_tags": "tags", "peer_feedback": "peer", "notify_feedback_receiver": "notify_receiver"}):
    """[tenants.feedback]"""

    tags: list[FeedbackTag] = DEFAULT_TAGS  # the behaviour tags feedback is given with
    # May colleagues give feedback outside their reporting line? On by default: recognition between
    # peers is most of what a company's feedback is. Each giver has a monthly quota of it.
    peer: bool = True
    peer_monthly_quota: int = Field(10, ge=1)  # feedback one person may give outside their line per month
    notify_receiver: bool = True  # tell the receiver at once


def settings(ctx: Outgoing) -> FeedbackSettings:
    return FeedbackSettings.of(ctx.tenant)


class GiveFeedback(CardAction, prefix="feedback"):
    """The 反馈 button on another feature's card; `about` says what the card's ref_id is
    ("action" or "task"), so the feedback is pre-filled with its person and linked to it.
    Empty: the person is the card's data["receiver"] if it has one, else the flow opens empty."""

    about: Literal["action", "task", ""] = ""


class PickReceiver(CardAction, prefix="to"):
    userid: str


class PickTag(CardAction, prefix="tag"):
    name: str


class MoreTags(CardAction, prefix="more"):
    page: int


class PickImpact(CardAction, prefix="impact"):
    impact: str


# WeCom shows at most 6 buttons on a card; bigger teams are asked to @ the person.
MAX_BUTTONS = 6
NONE_OF_THEM = "to:none"  # the last button of a choice among matching people
MAX_EVENT = 500
LIST_LIMIT = 20

# -- parsing one message -----------------------------------------------------------

_MENTION = re.compile(r"@[ \t]*([^\s@#,;:、。!?()\[\]【】（）「」“”\"'‘’<>《》，；：！？]+)")
_TAG = re.compile(r"#[ \t]*([^\s@#,;:、。!?，；：！？]+)")
_EDGE = " \t,;:、。，；：.!！?？"
# The impact level as a word of its own: the full form anywhere, the short form
# (`客户`) only before the event starts, where it cannot be the event's first word.
_IMPACT_FULL: dict[str, Impact] = {"客户级": Impact.CUSTOMER, "团队级": Impact.TEAM, "流程级": Impact.PROCESS}
_IMPACT_SHORT: dict[str, Impact] = {
    "客户": Impact.CUSTOMER, "customer": Impact.CUSTOMER, "团队": Impact.TEAM, "team": Impact.TEAM,
    "流程": Impact.PROCESS, "process": Impact.PROCESS,
}
_VIEW_WORDS = ("查看", "看", "我的", "列表", "view", "list")


@dataclass
class FeedbackParts:
    """What one message says; every part may be missing."""

    mentions: list[str] = field(default_factory=list)
    tag: str | None = None
    impact: Impact | None = None
    event: str | None = None


def parse_feedback(text: str) -> FeedbackParts:
    """Split `@person #tag impact event` (any order) into its parts, as typed."""
    folded = fold_width(text)
    chars = list(text)
    parts = FeedbackParts()

    def blank(start: int, end: int) -> None:
        for i in range(start, end):
            chars[i] = " "

    for m in _MENTION.finditer(folded):
        parts.mentions.append(text[m.start(1):m.end(1)].rstrip("."))
        blank(m.start(), m.end())
    for m in _TAG.finditer(fold_width("".join(chars))):
        if parts.tag is None:
            token = text[m.start(1):m.end(1)]
            # `#主动补位客户级`: the impact glued to the tag.
            for word, level in _IMPACT_FULL.items():
                if token.endswith(word) and len(token) > len(word):
                    token, parts.impact = token[: -len(word)], level
            parts.tag = token
        blank(m.start(), m.end())
    kept = "".join(chars)
    words: list[str] = []
    for word in kept.split():
        w = fold_width(word).strip(_EDGE).casefold()
        impact = _IMPACT_FULL.get(w) or (None if words else _IMPACT_SHORT.get(w))
        if impact and parts.impact is None:
            parts.impact = impact
        else:
            words.append(word)
    event = collapse_spaces(" ".join(words)).strip(_EDGE)
    parts.event = event or None
    return parts


# -- concrete events only -------------------------------------------------------------

MIN_EVENT_CHARS = 6
# What is left once praise words and fillers are gone must be at least this long.
MIN_CONCRETE_CHARS = 4
VAGUE_PHRASES: tuple[str, ...] = tuple(sorted((
    "再接再厉", "继续努力", "继续加油", "加油", "不错", "很好", "挺好", "真好", "很棒", "真棒", "辛苦了", "辛苦",
    "继续保持", "保持", "表现", "干得好", "干得漂亮", "好样的", "优秀", "点赞", "赞", "棒", "厉害", "给力",
    "认真", "负责", "努力", "积极", "值得表扬", "表扬", "值得肯定", "肯定", "满意", "进步", "工作", "态度",
    "good", "great", "job", "well", "done", "nice", "keep", "it", "up", "excellent", "work", "thanks",
), key=len, reverse=True))
_FILLER_CHARS = frozenset("很非常特别真挺太了的得地啊呀哦吧呢嘛你您他她们大家这次本周这周最近一直都也还好")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def is_vague(event: str) -> bool:
    """True for praise without a fact (`再接再厉`, `表现不错继续加油`) and for very short texts."""
    core = _NOT_WORD.sub("", unicodedata.normalize("NFKC", event).casefold())
    if len(core) < MIN_EVENT_CHARS:
        return True
    rest = core
    for phrase in VAGUE_PHRASES:
        rest = rest.replace(phrase, "")
    rest = "".join(ch for ch in rest if ch not in _FILLER_CHARS)
    return len(rest) < MIN_CONCRETE_CHARS


# -- tags -------------------------------------------------------------------------------

TAG_ACCEPT = 70.0
TAG_MARGIN = 10.0


def _norm_tag(token: str) -> str:
    return unicodedata.normalize("NFKC", token).strip().lstrip("#").strip().casefold()


def match_tag(token: str, tags: list[FeedbackTag]) -> tuple[FeedbackTag | None, list[FeedbackTag]]:
    """(the tag meant, None) or (None, close candidates — possibly none); never a tag not in `tags`."""
    q = _norm_tag(token)
    if not q or not tags:
        return None, []
    by_name = {_norm_tag(t.name): t for t in tags}
    if q in by_name:
        return by_name[q], []
    # `补位` for 主动补位, `客户需求` for 客户需求深挖: people type the part they remember.
    inside = [t for name, t in by_name.items() if len(q) >= 2 and (q in name or name in q)]
    if len(inside) == 1:
        return inside[0], []
    scored = process.extract(q, list(by_name), scorer=fuzz.ratio, processor=None, limit=len(by_name))
    if scored and scored[0][1] >= TAG_ACCEPT and (len(scored) == 1 or scored[0][1] - scored[1][1] >= TAG_MARGIN):
        return by_name[scored[0][0]], []
    close = inside or [by_name[name] for name, score, _ in scored if score >= TAG_ACCEPT - 2 * TAG_MARGIN]
    return None, close[:MAX_BUTTONS]


def _tag(ctx: Context, name: str | None) -> FeedbackTag | None:
    return next((t for t in settings(ctx).tags if t.name == name), None)


# -- who may give and see ------------------------------------------------------------------

async def may_give(ctx: Context, giver: str, receiver: Employee) -> str | None:
    """None if `giver` may give `receiver` feedback, else the refusal to show."""
    if receiver.userid == giver:
        return ctx.t("fb.self")
    if not receiver.active:
        return ctx.t("fb.person.none", token=receiver.name)
    if await in_line(ctx.session, ctx.tenant.key, giver, receiver.userid):
        return None
    if not settings(ctx).peer:
        return ctx.t("fb.outside_line", name=receiver.name)
    quota = settings(ctx).peer_monthly_quota
    if await peer_feedback_this_month(ctx, giver) >= quota:
        return ctx.t("fb.quota", n=quota)
    return None


async def peer_feedback_this_month(ctx: Context, giver: str) -> int:
    """Feedback `giver` gave this calendar month (tenant time) to people outside their line."""
    tz = ctx.tenant.tz
    first = ctx.now.astimezone(tz).date().replace(day=1)
    rows = (await ctx.session.execute(select(col(Feedback.receiver_userid)).where(
        col(Feedback.tenant) == ctx.tenant.key, col(Feedback.giver_userid) == giver,
        col(Feedback.created_at) >= local_day_start(first, tz)))).scalars()
    return sum([not await in_line(ctx.session, ctx.tenant.key, giver, r) for r in list(rows)])


async def may_view(ctx: Context, viewer: Employee, subject: str) -> bool:
    """The person themself, HR, and managers of the person's reporting line."""
    if subject == viewer.userid or viewer.has_role("hr"):
        return True
    return subject in await reporting_line(ctx.session, ctx.tenant.key, viewer.userid)


async def feedback_buttons(ctx: Context, giver: str, receiver: str,
                           about: Literal["action", "task", ""] = "") -> list[Button]:
    """The 反馈 button for another feature's card, when `giver` may give `receiver` feedback."""
    person = await ctx.employee(receiver)
    if person is None or await may_give(ctx, giver, person) is not None:
        return []
    return [Button(GiveFeedback(about=about).pack(), ctx.t("fb.btn"))]


# -- the draft -------------------------------------------------------------------------------

async def _load_draft(ctx: Context) -> dict[str, Any] | None:
    conv = await ctx.conversation()
    return dict(conv.data) if conv is not None and conv.kind == DRAFT else None


async def _new_draft(ctx: Context) -> dict[str, Any]:
    """An empty draft. Whatever else was under way is kept by the flow engine (handlers/context.py):
    put aside by the command that started this, or waiting underneath a draft opened from a card."""
    return {}


async def _finish(ctx: Context, draft: dict[str, Any]) -> None:
    await _close_flow_cards(ctx)
    await ctx.clear_conversation()


async def _close_flow_cards(ctx: Context, result: str | None = None) -> None:
    """Only the latest question of a draft stays answerable, so an old card cannot record twice."""
    rows = (await ctx.session.execute(select(IssuedCard).where(
        col(IssuedCard.tenant) == ctx.tenant.key, col(IssuedCard.userid) == ctx.event.userid,
        col(IssuedCard.kind).in_(FLOW_CARDS), col(IssuedCard.state) == "open"))).scalars()
    for row in list(rows):
        await ctx.close_card(row, result or ctx.t("fb.card.superseded"))


async def _directory(ctx: Context) -> Directory:
    return await tenant_directory(ctx.session, ctx.tenant.key)


async def _set_receiver(ctx: Context, draft: dict[str, Any], token: str, problems: list[str]) -> bool:
    """Resolve `token` into draft["receiver"]; True when a choice card was issued instead."""
    people = await _directory(ctx)
    if ctx.event.mentions and token in ctx.event.mentions:
        person = people.get(token)
        cands = [person] if person else []
    else:
        m = people.resolve(token)
        cands = [m.person] if m.status == "one" and m.person else m.candidates
    if not cands:
        problems.append(ctx.t("fb.person.none", token=token))
        return False
    allowed: list[Person] = []
    refusal = ""
    for p in cands:
        emp = await ctx.employee(p.userid)
        why = await may_give(ctx, ctx.event.userid, emp) if emp else ctx.t("fb.person.none", token=token)
        if why is None:
            allowed.append(p)
        elif not refusal:
            refusal = why
    if len(allowed) == 1:
        draft["receiver"] = allowed[0].userid
        return False
    if not allowed:
        draft.pop("receiver", None)
        problems.append(refusal)
        return False
    card = Card(title=ctx.t("fb.person.title"), body=ctx.t("fb.person.which", token=token),
                buttons=[Button(PickReceiver(userid=p.userid).pack(), person_label(ctx, p.name, p.department, p.userid))
                         for p in allowed[:MAX_BUTTONS - 1]] + [Button(NONE_OF_THEM, ctx.t("btn.none_of_them"))])
    await _issue(ctx, "fb_person", card, draft)
    return True


async def _absorb(ctx: Context, draft: dict[str, Any], text: str, problems: list[str]) -> bool:
    """Merge what `text` says into the draft; True when a choice card was issued."""
    parts = parse_feedback(text)
    mentions = list(ctx.event.mentions) or parts.mentions
    choosing = False
    if not mentions and not draft.get("receiver") and parts.event and draft.get("asked") == "receiver" \
            and " " not in parts.event and len(parts.event) <= 20:
        # Asked for a person, they typed a name without the @.
        mentions, parts.event = [parts.event], None
    if parts.tag is None and parts.event and draft.get("asked") == "tag" and " " not in parts.event:
        # Asked for a tag, they typed its name without the #.
        parts.tag, parts.event = parts.event, None
    if len(mentions) > 1:
        problems.append(ctx.t("fb.person.many"))
    elif mentions:
        choosing = await _set_receiver(ctx, draft, mentions[0], problems)
    if parts.impact:
        draft["impact"] = parts.impact
    if parts.tag is not None:
        tag, close = match_tag(parts.tag, settings(ctx).tags)
        if tag is not None:
            draft["tag"] = tag.name
        elif not choosing:
            problems.append(ctx.t("fb.tag.unknown", token=parts.tag))
            await _tag_card(ctx, draft, close)
            choosing = True
        else:
            problems.append(ctx.t("fb.tag.unknown", token=parts.tag))
    if parts.event:
        if len(parts.event) > MAX_EVENT:
            problems.append(ctx.t("fb.event.long", n=len(parts.event), max=MAX_EVENT))
        elif is_vague(parts.event):
            draft.pop("event", None)
            problems.append(ctx.t("fb.event.vague", text=parts.event))
        else:
            draft["event"] = parts.event
    return choosing


async def _advance(ctx: Context, draft: dict[str, Any], problems: list[str], *, choosing: bool = False) -> None:
    """Record the feedback if the draft is complete, else ask for the next missing part."""
    if problems:
        ctx.reply("\n".join(problems))
    if choosing:
        await ctx.set_conversation(DRAFT, draft)
        return
    if all(draft.get(k) for k in ("receiver", "tag", "impact", "event")):
        await _record(ctx, draft)
        return
    if not draft.get("receiver"):
        await _ask_person(ctx, draft, quiet=bool(problems))
    elif not draft.get("tag"):
        await _tag_card(ctx, draft, [])
    elif not draft.get("impact"):
        await _impact_card(ctx, draft)
    else:
        draft["asked"] = "event"
        await ctx.set_conversation(DRAFT, draft)
        if not problems:
            name = await ctx.name_of(draft["receiver"])
            ctx.reply(ctx.t("fb.ask.event", name=name))


async def _issue(ctx: Context, kind: str, card: Card, draft: dict[str, Any]) -> None:
    await _close_flow_cards(ctx)
    snapshot = dict(draft)
    await ctx.issue_card(ctx.event.userid, kind, card, data={"draft": snapshot}, ttl_hours=ctx.tenant.draft_ttl_hours)


async def _ask_person(ctx: Context, draft: dict[str, Any], *, quiet: bool = False) -> None:
    me = ctx.event.userid
    line = await reporting_line(ctx.session, ctx.tenant.key, me)
    draft["asked"] = "receiver"
    if not line and not settings(ctx).peer:
        await _finish(ctx, draft)
        if not quiet:  # after a refusal, the refusal says enough
            ctx.reply(ctx.t("fb.no_line"))
        return
    await ctx.set_conversation(DRAFT, draft)
    if quiet:
        return
    if not line or len(line) > MAX_BUTTONS:
        ctx.reply(ctx.t("fb.ask.person"))
        return
    rows = list((await ctx.session.execute(select(Employee).where(
        col(Employee.tenant) == ctx.tenant.key, col(Employee.userid).in_(sorted(line))))).scalars())
    # Direct reports first: they are whom a manager gives feedback to most.
    rows.sort(key=lambda e: (e.manager_userid != me, e.name, e.userid))
    names = [e.name for e in rows]
    buttons = [Button(PickReceiver(userid=e.userid).pack(), e.name if names.count(e.name) == 1 else
                      person_label(ctx, e.name, e.department, e.userid)) for e in rows]
    body = ctx.t("fb.person.body") + (ctx.t("fb.person.peers") if settings(ctx).peer else "")
    await _issue(ctx, "fb_person", Card(title=ctx.t("fb.person.title"), body=body, buttons=buttons), draft)


async def _tag_card(ctx: Context, draft: dict[str, Any], close: list[FeedbackTag], page: int = 0) -> None:
    tags = list(settings(ctx).tags)
    if close:
        shown, more = close[:MAX_BUTTONS], False
    elif len(tags) <= MAX_BUTTONS:
        shown, more = tags, False
    else:
        per = MAX_BUTTONS - 1
        pages = (len(tags) + per - 1) // per
        page %= pages
        shown, more = tags[page * per:(page + 1) * per], True
    buttons = [Button(PickTag(name=t.name).pack(), t.name) for t in shown]
    if more:
        buttons.append(Button(MoreTags(page=page + 1).pack(), ctx.t("fb.tag.more")))
    elif close:
        buttons = buttons[:MAX_BUTTONS - 1] + [Button(MoreTags(page=0).pack(), ctx.t("fb.tag.all"))]
    sep = ctx.t("fb.sep")
    praise = sep.join(t.name for t in tags if t.polarity is Polarity.PRAISE)
    improve = sep.join(t.name for t in tags if t.polarity is Polarity.IMPROVE)
    body = ctx.t("fb.tag.body", praise=praise or "—", improve=improve or "—")
    draft["asked"] = "tag"
    await ctx.set_conversation(DRAFT, draft)
    await _issue(ctx, "fb_tag", Card(title=ctx.t("fb.tag.title"), body=body, buttons=buttons), draft)


async def _impact_card(ctx: Context, draft: dict[str, Any]) -> None:
    draft["asked"] = "impact"
    await ctx.set_conversation(DRAFT, draft)
    card = Card(title=ctx.t("fb.impact.title"), body=ctx.t("fb.impact.body"),
                buttons=[Button(PickImpact(impact=i.value).pack(), i.label(ctx.locale)) for i in IMPACTS])
    await _issue(ctx, "fb_impact", card, draft)


async def _record(ctx: Context, draft: dict[str, Any]) -> None:
    receiver = await ctx.employee(draft["receiver"])
    why = await may_give(ctx, ctx.event.userid, receiver) if receiver else ctx.t("fb.person.none", token=draft["receiver"])
    tag = _tag(ctx, draft["tag"])
    if why is not None or receiver is None:
        draft.pop("receiver", None)
        await ctx.set_conversation(DRAFT, draft)
        ctx.reply(why or "")
        return
    if tag is None:  # the library changed while the draft waited
        draft.pop("tag", None)
        await _tag_card(ctx, draft, [])
        return
    impact = Impact.from_label(draft["impact"])  # a draft saved before values were English holds the label
    if impact is None:
        draft.pop("impact", None)
        await _impact_card(ctx, draft)
        return
    ref_kind = FeedbackRef(draft["ref_kind"]) if draft.get("ref_kind") else None
    row = add_feedback(ctx.session, ctx.tenant.key, giver=ctx.event.userid, receiver=receiver.userid, tag=tag.name,
                       polarity=tag.polarity, impact=impact, event=draft["event"], at=ctx.now,
                       ref_kind=ref_kind, ref_id=draft.get("ref_id"))
    await ctx.session.flush()
    await _finish(ctx, draft)
    giver = await ctx.name_of(ctx.event.userid)
    what = ctx.t("fb.what", tag=tag.name, polarity=tag.polarity.label(ctx.locale), impact=impact.label(ctx.locale),
                 event=row.event)
    if settings(ctx).notify_receiver:
        ctx.send(receiver.userid, ctx.t("fb.received", giver=giver, what=what))
        ctx.reply(ctx.t("fb.recorded", name=receiver.name, what=what) + "\n" + ctx.t("fb.notified", name=receiver.name))
    else:
        ctx.reply(ctx.t("fb.recorded", name=receiver.name, what=what))


# -- entry points ------------------------------------------------------------------------------

async def start(ctx: Context, *, receiver: str | None = None, ref_kind: str | None = None,
                ref_id: int | None = None) -> None:
    """Open the card flow (menu, card button), optionally pre-filled with the person and the record."""
    draft = await _new_draft(ctx)
    problems: list[str] = []
    if receiver:
        emp = await ctx.employee(receiver)
        why = await may_give(ctx, ctx.event.userid, emp) if emp else ctx.t("fb.person.none", token=receiver)
        if why is not None:
            ctx.reply(why)
            return
        draft["receiver"] = receiver
    if ref_kind and ref_id is not None:
        draft["ref_kind"], draft["ref_id"] = ref_kind, ref_id
    await _advance(ctx, draft, problems)


@router.command("feedback", words=("反馈", "feedback"), args=True, access=("give_feedback", "read_person"))
async def on_feedback(ctx: Context) -> None:
    rest = ctx.args
    words = rest.split(maxsplit=1)
    if words and fold_width(words[0]).casefold() in _VIEW_WORDS:
        await _view(ctx, words[1] if len(words) > 1 else "")
        return
    if not rest.strip():
        await start(ctx)
        return
    # A full message starts a new feedback.
    draft = await _new_draft(ctx)
    problems: list[str] = []
    choosing = await _absorb(ctx, draft, rest, problems)
    await _advance(ctx, draft, problems, choosing=choosing)


async def _resume_draft(ctx: Context) -> None:
    draft = await _load_draft(ctx) or await _new_draft(ctx)
    await _advance(ctx, draft, [])


@router.conversation(DRAFT, label="fb.flow", resume=_resume_draft)
async def on_draft_reply(ctx: Context) -> None:
    draft = await _load_draft(ctx) or await _new_draft(ctx)
    problems: list[str] = []
    choosing = await _absorb(ctx, draft, ctx.event.text, problems)
    if not choosing and not problems and draft.get("asked") == "event" and not draft.get("event"):
        problems.append(ctx.t("fb.ask.event", name=await ctx.name_of(draft.get("receiver", ""))))
    await _advance(ctx, draft, problems, choosing=choosing)


@router.menu("feedback")
async def on_menu(ctx: Context) -> None:
    await start(ctx)


async def _draft_for_press(ctx: Context, row: IssuedCard) -> dict[str, Any]:
    return await _load_draft(ctx) or dict(row.data.get("draft", {}))


@router.card("fb_person")
async def on_person_card(ctx: Context, row: IssuedCard) -> None:
    draft = await _draft_for_press(ctx, row)
    if ctx.event.action_key == NONE_OF_THEM:
        await ctx.close_card(row, ctx.t("btn.none_of_them"))
        await ctx.set_conversation(DRAFT, draft)
        ctx.reply(ctx.t("fb.ask.person"))
        return
    picked = PickReceiver.unpack(ctx.event.action_key)
    userid = picked.userid if picked else ""
    person = await ctx.employee(userid) if userid else None
    why = await may_give(ctx, ctx.event.userid, person) if person else ctx.t("card.unknown")
    if why is not None or person is None:
        await ctx.close_card(row, ctx.t("fb.card.refused"))
        ctx.reply(why or "")
        await ctx.set_conversation(DRAFT, draft)
        return
    await ctx.close_card(row, ctx.t("fb.card.chosen", text=person.name))
    draft["receiver"] = userid
    await _advance(ctx, draft, [])


@router.card("fb_tag")
async def on_tag_card(ctx: Context, row: IssuedCard) -> None:
    key = ctx.event.action_key
    draft = await _draft_for_press(ctx, row)
    if (more := MoreTags.unpack(key)) is not None:
        await _tag_card(ctx, draft, [], page=more.page)
        return
    picked = PickTag.unpack(key)
    tag = _tag(ctx, picked.name) if picked else None
    if tag is None:
        await ctx.close_card(row, ctx.t("fb.card.superseded"))
        await _tag_card(ctx, draft, [])
        return
    await ctx.close_card(row, ctx.t("fb.card.chosen", text=tag.name))
    draft["tag"] = tag.name
    await _advance(ctx, draft, [])


@router.card("fb_impact")
async def on_impact_card(ctx: Context, row: IssuedCard) -> None:
    picked = PickImpact.unpack(ctx.event.action_key)
    # A card issued before values were English carries the label (impact:客户级).
    impact = Impact.from_label(picked.impact) if picked else None
    draft = await _draft_for_press(ctx, row)
    if impact is None:
        await _impact_card(ctx, draft)
        return
    await ctx.close_card(row, ctx.t("fb.card.chosen", text=impact.label(ctx.locale)))
    draft["impact"] = impact.value
    await _advance(ctx, draft, [])


@router.action(GiveFeedback)
async def on_feedback_button(ctx: Context, row: IssuedCard, action: GiveFeedback) -> None:
    """The 反馈 button on another card: the person (and the record) come from the card.

    The card stays open: giving feedback does not answer it."""
    ref_kind = action.about or None
    receiver: str | None = None
    if ref_kind == "action" and row.ref_id is not None:
        weekly = await action_by_id(ctx.session, ctx.tenant.key, row.ref_id)
        receiver = weekly.userid if weekly else None
    elif ref_kind == "task" and row.ref_id is not None:
        task = (await ctx.session.execute(select(Task).where(
            col(Task.tenant) == ctx.tenant.key, col(Task.id) == row.ref_id))).scalar_one_or_none()
        receiver = task.owner_userid if task else None
    elif ref_kind is None and row.data.get("receiver"):
        receiver = str(row.data["receiver"])  # e.g. the fact brief of this person
    if ref_kind and receiver is None:
        ctx.reply(ctx.t("card.unknown"))
        return
    await start(ctx, receiver=receiver, ref_kind=ref_kind if receiver else None, ref_id=row.ref_id if receiver else None)


# -- reading feedback ------------------------------------------------------------------------------

@router.command("my_feedback", words=command_words("my_feedback"))
async def on_my_feedback(ctx: Context) -> None:
    await _view(ctx, "")


async def _view(ctx: Context, who: str) -> None:
    me = ctx.me
    assert me is not None
    subject: Employee | None = me
    token = (parse_feedback(who).mentions or [who.strip()])[0] if who.strip() else ""
    if ctx.event.mentions:
        subject = await ctx.employee(ctx.event.mentions[0])
    elif token:
        m = (await _directory(ctx)).resolve(token)
        if m.status == "none":
            ctx.reply(ctx.t("fb.person.none", token=token))
            return
        if m.status == "choose":
            names = ctx.t("fb.sep").join(person_label(ctx, p.name, p.department, p.userid) for p in m.candidates)
            ctx.reply(ctx.t("fb.person.ambiguous", token=token, names=names))
            return
        assert m.person is not None
        subject = await ctx.employee(m.person.userid)
    if subject is None:
        ctx.reply(ctx.t("fb.person.none", token=token))
        return
    if not await may_view(ctx, me, subject.userid):
        ctx.reply(ctx.t("fb.view.denied", name=subject.name))
        return
    if subject.userid != me.userid:
        audit.record(ctx.session, ctx.tenant.key, me.userid, audit.VIEW_FEEDBACK, subject.userid, ctx.now)
    ctx.reply(await feedback_list_text(ctx, subject))


async def feedback_list_text(ctx: Context, subject: Employee) -> str:
    """The latest feedback a person received, with counts by tag."""
    rows = await received(ctx.session, ctx.tenant.key, subject.userid, limit=LIST_LIMIT)
    by_tag = await counts_by_tag(ctx.session, ctx.tenant.key, subject.userid)
    total = sum(n for _tag, n in by_tag)
    if not rows:
        return ctx.t("fb.view.empty", name=subject.name)
    givers = {r.giver_userid for r in rows}
    names = {e.userid: e.name for e in (await ctx.session.execute(select(Employee).where(
        col(Employee.tenant) == ctx.tenant.key, col(Employee.userid).in_(sorted(givers))))).scalars()}
    lines = [ctx.t("fb.view.title", name=subject.name, n=total), " · ".join(f"{tag} {n}" for tag, n in by_tag)]
    for r in rows:
        lines.append(_line(ctx, r, names.get(r.giver_userid, r.giver_userid)))
    if total > len(rows):
        lines.append(ctx.t("fb.view.more", n=len(rows), name=subject.name))
    return "\n".join(lines)


def _line(ctx: Context, r: Feedback, giver: str) -> str:
    day = aware(r.created_at).astimezone(ctx.tenant.tz).strftime("%m-%d")
    return ctx.t("fb.view.line", day=day, giver=giver, tag=r.tag, polarity=Polarity(r.polarity).label(ctx.locale),
                 impact=Impact(r.impact).label(ctx.locale), event=r.event)
