"""Contributions in chat (贡献 项目收益 ¥120000 发布会提前两周上线 @唐凯), their verification, the ranked
list for managers and HR, reward suggestions and the payroll export.

A contribution counts only once a verifier confirmed it. The verifier is never the contributor, and
never someone whose own contribution the contributor verified (or was asked to verify) in the same
cycle, the calendar month: two colleagues confirming each other's claims is how recognition turns
into a favour exchange. Every refusal says why and stores nothing.

The ranked list is shown to nobody but managers (their own reporting line) and HR, one person at a
time, and is written to the audit log; there is no public leaderboard anywhere.
"""
from __future__ import annotations

import asyncio
import math
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from sqlalchemy import or_, select
from sqlmodel import col

from bot.core.config import Section
from bot.core.files import create_private, private_dir
from cards.heatmap import HeatTable, heatmap_png
from cards.model import Button, Card, Message
from handlers import contributions_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.actions import CardAction
from handlers.card_answers import normalise
from handlers.context import Context, Outgoing
from handlers.decisions import Decider, ask_which, register_decider
from handlers.people import tenant_directory
from handlers.reply_grammar import collapse_spaces
from handlers.router import Router
from store import audit
from store import contributions as cs
from store.brief import parse_period
from store.goal_changes import goal
from store.models import Employee, Feedback, IssuedCard, Task
from store.pulse import org_tree
from store.statuses import Role

router = Router("contributions")

DRAFT_FLOW, REWARD_FLOW = "contrib_draft", "contrib_reward"
KIND_CARD, VERIFY_CARD, REWARD_CARD = "contrib_kind", "contrib_verify", "contrib_reward"
CARD_TTL_HOURS = 24 * 14
AUDIT_RANK, AUDIT_EXPORT = "view_contribution_ranking", "export_contribution_rewards"
AUDIT_VERIFY, AUDIT_REWARD = "contribution_verify", "contribution_reward"
AUDIT_HEATMAP = "view_contribution_heatmap"


class ContributionSettings(Section, name="contributions"):
    """[tenants.contributions]"""

    # Caps per person and calendar month (pending and verified contributions count).
    max_per_month: int = Field(10, ge=1, le=100)
    max_yuan_per_month: float = Field(1_000_000, gt=0)
    max_hours_per_month: float = Field(200, gt=0)
    max_reuses_per_month: int = Field(500, ge=1)
    # The heat map: departments at this depth of the path (1 is the company), and no cell of fewer people.
    heatmap_depth: int = Field(2, ge=1, le=6)
    min_people: int = Field(5, ge=5, le=50)
    # Hidden contributors: confirmed at least this many colleagues' actions as witness in the period,
    # with recognitions and contributions together at most this many.
    hidden_min_witnessed: int = Field(4, ge=1)
    hidden_max_recognised: int = Field(1, ge=0)
    rank_top: int = Field(20, ge=1, le=200)
    max_reward_yuan: int = Field(50_000, ge=1)  # an entered amount above this is refused as a typo


class PickKind(CardAction, prefix="ctkind"):
    kind: str


class ConfirmContribution(CardAction, prefix="ctok"):
    contribution: int


class DeclineContribution(CardAction, prefix="ctno"):
    contribution: int


class EnterReward(CardAction, prefix="ctpay"):
    userid: str
    month: str


class Refused(Exception):
    """A contribution or amount that is refused: the text key and its values."""

    def __init__(self, key: str, **kw: object) -> None:
        super().__init__(key)
        self.key, self.kw = key, kw


# -- reading what people type -------------------------------------------------------------------------

_KIND_WORDS: tuple[tuple[str, str], ...] = tuple(sorted((
    ("项目收益", cs.REVENUE), ("收益", cs.REVENUE), ("项目", cs.REVENUE), ("revenue", cs.REVENUE),
    ("流程节省", cs.SAVING), ("流程优化", cs.SAVING), ("节省", cs.SAVING), ("节约", cs.SAVING),
    ("saving", cs.SAVING), ("savings", cs.SAVING),
    ("知识复用", cs.REUSE), ("知识沉淀", cs.REUSE), ("复用", cs.REUSE), ("reuse", cs.REUSE),
), key=lambda wk: -len(wk[0])))
_NUM = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_MULT = r"(万|w|k|千)?"
_LEFT, _RIGHT = r"(?<![\w.,])", r"(?![\w.,%])"
_MONEY_SIGN = re.compile(_LEFT + r"(?:¥|\$|rmb|cny)\s*" + _NUM + r"\s*" + _MULT + r"(?:元|块|rmb|yuan)?" + _RIGHT, re.I)
_MONEY_WORD = re.compile(_LEFT + _NUM + r"\s*(?:(万|w|k|千)\s*(?:元|块|rmb|yuan)?|(?:元|块|rmb|yuan))" + _RIGHT, re.I)
_HOURS = re.compile(_LEFT + _NUM + r"\s*(?:个)?\s*(?:小时|工时|h|hrs?|hours?)" + _RIGHT, re.I)
_TIMES = re.compile(_LEFT + _NUM + r"\s*(?:次|times?|x)" + _RIGHT, re.I)
# A bare number only where it stands alone: not the 12 of a date 12-20, a time 9:30 or a ratio 1/3.
_BARE = re.compile(r"(?<![\w.,\-/:])" + _NUM + r"(?![\w.,%\-/:])")
_MULTIPLIER = {"万": 10_000, "w": 10_000, "k": 1_000, "千": 1_000}
_MENTION = re.compile(r"@[ \t]*([^\s@#,;:、。!?()\[\]【】（）「」“”\"'‘’<>《》，；：！？]+)")
_TASK = re.compile(r"(?<![\w-])(T\d{1,6})(?![\w-])", re.I)
_GOAL = re.compile(r"(?<![\w-])(O\d{1,3}(?:-KR\d{1,3})?)(?![\w-])", re.I)
_FEEDBACK = re.compile(r"反馈\s*#\s*(\d{1,9})|(?<![\w-])(?:feedback\s*#?\s*|F)(\d{1,9})(?![\w-])", re.I)
_EDGE = " \t,;:、。，；：.!！?？-—"


def fold(text: str) -> str:
    """NFKC (full-width ￥, digits and letters to half-width), with the Chinese comma of 120，000 read as one."""
    return unicodedata.normalize("NFKC", text).replace("，", ",")


def _number(num: str, mult: str | None) -> float:
    return float(num.replace(",", "")) * _MULTIPLIER.get((mult or "").casefold(), 1)


def read_amount(text: str, kind: str) -> tuple[float, str, tuple[int, int]] | None:
    """The first amount in `text` that fits `kind`: (value, unit, span). ¥120000, ￥12万, 1.2w, 120,000元,
    16小时, 16h, 8次; a bare number is ¥ for revenue and times for reuse (a saving needs its unit)."""
    found: list[tuple[int, float, str, tuple[int, int]]] = []
    for m in _MONEY_SIGN.finditer(text):
        found.append((m.start(), _number(m.group(1), m.group(2)), cs.YUAN, m.span()))
    for m in _MONEY_WORD.finditer(text):
        found.append((m.start(), _number(m.group(1), m.group(2)), cs.YUAN, m.span()))
    for m in _HOURS.finditer(text):
        found.append((m.start(), _number(m.group(1), None), cs.HOURS, m.span()))
    for m in _TIMES.finditer(text):
        found.append((m.start(), _number(m.group(1), None), cs.TIMES, m.span()))
    if not found and kind in (cs.REVENUE, cs.REUSE):
        for m in _BARE.finditer(text):
            found.append((m.start(), _number(m.group(1), None), cs.YUAN if kind == cs.REVENUE else cs.TIMES, m.span()))
            break
    found.sort(key=lambda f: f[0])
    for _, value, unit, span in found:
        if unit in cs.UNITS[kind] and math.isfinite(value) and value > 0:
            return value, unit, span
    return None


def read_kind(text: str) -> tuple[str, str] | None:
    """(kind, the rest) when `text` starts with a type word: 项目收益, 流程节省, 知识复用 (or English)."""
    t = text.lstrip(_EDGE)
    low = t.casefold()
    for word, kind in _KIND_WORDS:
        if low.startswith(word):
            return kind, t[len(word):]
    return None


def kind_by_answer(text: str) -> str | None:
    said = normalise(text)
    by_number = {"1": cs.REVENUE, "2": cs.SAVING, "3": cs.REUSE}
    if said in by_number:
        return by_number[said]
    found = read_kind(said)
    return found[0] if found and not found[1].strip(_EDGE) else None


def fmt_amount(amount: float, unit: str, locale: str = "zh") -> str:
    n = f"{amount:,.2f}".rstrip("0").rstrip(".")
    if unit == cs.YUAN:
        return f"¥{n}"
    if unit == cs.HOURS:
        return f"{n} 小时" if locale == "zh" else f"{n} h"
    return f"{n} 次" if locale == "zh" else f"{n} times"


@dataclass
class Draft:
    kind: str
    amount: float
    unit: str
    description: str
    links: list[str]
    mentions: list[str]


def read_draft(text: str, kind: str | None = None) -> Draft:
    """Split `项目收益 ¥120000 发布会提前两周上线 O1-KR2 @唐凯` into its parts, or raise Refused."""
    folded = fold(text)
    mentions = [m.group(1).rstrip(".") for m in _MENTION.finditer(folded)]
    rest = _MENTION.sub(" ", folded)
    if kind is None:
        got = read_kind(rest)
        if got is None:
            raise Refused("contrib.no_kind", text=collapse_spaces(rest).strip()[:20])
        kind, rest = got
    amount = read_amount(rest, kind)
    if amount is None:
        raise Refused("contrib.no_amount", kind=f"contrib.kind.{kind}", units=f"contrib.units.{kind}")
    value, unit, (a, b) = amount
    description = collapse_spaces(rest[:a] + " " + rest[b:]).strip(_EDGE)
    links = [f"task:{m.group(1).upper()}" for m in _TASK.finditer(description)]
    links += [f"goal:{m.group(1).upper()}" for m in _GOAL.finditer(description)]
    links += [f"feedback:{m.group(1) or m.group(2)}" for m in _FEEDBACK.finditer(description)]
    if len(re.sub(r"[\W_]", "", description)) < 2:
        raise Refused("contrib.no_description")
    return Draft(kind, round(value, 2), unit, description[:300], list(dict.fromkeys(links)), mentions)


# -- recording ----------------------------------------------------------------------------------------

def _refuse(ctx: Context, exc: Refused) -> None:
    # Values that are text keys themselves (the kind, its units) are shown in the reader's language.
    kw = {k: ctx.t(str(v)) if isinstance(v, str) and v.startswith("contrib.") else v for k, v in exc.kw.items()}
    ctx.reply(ctx.t(exc.key, **kw))


async def _verifier(ctx: Context, draft: Draft) -> Employee:
    tokens = list(ctx.event.mentions) or draft.mentions
    if not tokens:
        raise Refused("contrib.no_verifier")
    if len(set(tokens)) > 1:
        raise Refused("contrib.one_verifier")
    found = await _person(ctx, tokens[0])
    if not found.active:
        raise Refused("contrib.verifier.gone", name=found.name)
    return found


async def _person(ctx: Context, token: str) -> Employee:
    """Who `@token` names: the platform's own user id, else the directory (name, pinyin, a typo)."""
    if ctx.event.mentions:
        found = await ctx.employee(token)
    else:
        m = (await tenant_directory(ctx.session, ctx.tenant.key)).resolve(token)
        if m.status == "choose":
            names = "、".join(f"{p.name}（{p.department.split('/')[-1] or p.userid}）" for p in m.candidates)
            raise Refused("fb.person.ambiguous", token=token, names=names)
        found = await ctx.employee(m.person.userid) if m.status == "one" and m.person else None
    if found is None:
        raise Refused("fb.person.none", token=token)
    return found


async def _check_links(ctx: Context, links: list[str], contributor: str) -> None:
    for link in links:
        what, _, ref = link.partition(":")
        if what == "task":
            ok = (await ctx.session.execute(select(col(Task.id)).where(
                col(Task.tenant) == ctx.tenant.key, col(Task.code) == ref))).first() is not None
        elif what == "goal":
            ok = await goal(ctx.session, ctx.tenant.key, ref) is not None
        else:  # only feedback the contributor gave or received: no reference to anyone else's
            ok = (await ctx.session.execute(select(col(Feedback.id)).where(
                col(Feedback.tenant) == ctx.tenant.key, col(Feedback.id) == int(ref),
                or_(col(Feedback.receiver_userid) == contributor, col(Feedback.giver_userid) == contributor)))).first() is not None
        if not ok:
            raise Refused("contrib.link.unknown", what=ref if what != "feedback" else f"反馈#{ref}")


async def _check_caps(ctx: Context, draft: Draft, userid: str, month: str) -> None:
    settings = ContributionSettings.of(ctx.tenant)
    n, sums = await cs.month_totals(ctx.session, ctx.tenant.key, userid, month)
    if n >= settings.max_per_month:
        raise Refused("contrib.over_count", month=month, n=n, cap=settings.max_per_month)
    cap = {cs.YUAN: settings.max_yuan_per_month, cs.HOURS: settings.max_hours_per_month,
           cs.TIMES: float(settings.max_reuses_per_month)}[draft.unit]
    have = sums.get(draft.unit, 0.0)
    if have + draft.amount > cap:
        raise Refused("contrib.over_cap", kind=f"contrib.kind.{draft.kind}", have=fmt_amount(have, draft.unit, ctx.locale),
                      add=fmt_amount(draft.amount, draft.unit, ctx.locale), cap=fmt_amount(cap, draft.unit, ctx.locale))


def describe(ctx: Outgoing, c: cs.Contribution) -> str:
    return f"{ctx.t(f'contrib.kind.{c.kind}')} {fmt_amount(c.amount, c.unit, ctx.locale)} {c.description}"


async def record(ctx: Context, text: str, kind: str | None = None) -> bool:
    """Check everything first; store the contribution and ask its verifier only when all holds."""
    me = ctx.me
    assert me is not None
    month = cs.month_of(ctx.now, ctx.tenant.tz)
    try:
        draft = read_draft(text, kind)
        verifier = await _verifier(ctx, draft)
        if verifier.userid == me.userid:
            raise Refused("contrib.self")
        if await cs.verified_by(ctx.session, ctx.tenant.key, me.userid, verifier.userid, month):
            raise Refused("contrib.reciprocal", month=month, name=verifier.name)
        await _check_links(ctx, draft.links, me.userid)
        await _check_caps(ctx, draft, me.userid, month)
    except Refused as exc:
        _refuse(ctx, exc)
        return False
    c = cs.Contribution(tenant=ctx.tenant.key, contributor_userid=me.userid, verifier_userid=verifier.userid,
                        department=me.department, kind=draft.kind, unit=draft.unit, amount=draft.amount,
                        description=draft.description, links=draft.links, month=month, created_at=cs.utc(ctx.now))
    ctx.session.add(c)
    await ctx.session.flush()
    await ask_verifier(ctx, c, me)
    ctx.reply(ctx.t("contrib.recorded", what=describe(ctx, c), verifier=verifier.name))
    return True


async def ask_verifier(ctx: Context, c: cs.Contribution, contributor: Employee) -> None:
    assert c.id is not None
    links = ctx.t("contrib.verify.links", links="、".join(l.partition(":")[2] for l in c.links)) if c.links else ""
    card = Card(title=ctx.t("contrib.verify.title", name=contributor.name, kind=ctx.t(f"contrib.kind.{c.kind}"),
                            amount=fmt_amount(c.amount, c.unit, ctx.locale)),
                body=ctx.t("contrib.verify.body", name=contributor.name, dept=contributor.department.split("/")[-1],
                           description=c.description, links=links),
                buttons=[Button(ConfirmContribution(contribution=c.id).pack(), ctx.t("contrib.btn.confirm"), "primary"),
                         Button(DeclineContribution(contribution=c.id).pack(), ctx.t("contrib.btn.decline"))])
    await ctx.issue_card(c.verifier_userid, VERIFY_CARD, card, ref_id=c.id, ttl_hours=CARD_TTL_HOURS)


# 供献 / 共献 / 贡现 项目收益 …: a slip of the input method on the command word. Only with a type word right
# after it, so a weekly action that merely starts like that (供应商资料 …) stays one.
_SLIPS = re.compile(r"^\s*(?:供献|共献|贡现|贡先|贡线|攻献|工献|贡獻)[\s:：]*")


def _slipped(text: str) -> bool:
    m = _SLIPS.match(fold(text))
    return m is not None and read_kind(fold(text)[m.end():]) is not None


@router.command("contribute", words=("贡献", "contribution", "contribute"), args=True, pattern=_slipped,
                access="own")
async def on_contribute(ctx: Context) -> None:
    args = _SLIPS.sub("", fold(ctx.args), count=1) if _slipped(ctx.args) else ctx.args
    if not args.strip():
        await _kind_card(ctx)
        return
    kind = read_kind(fold(args))
    if kind is not None and not kind[1].strip(_EDGE):  # 「贡献 项目收益」 alone: ask for the rest
        await _ask_rest(ctx, kind[0])
        return
    await record(ctx, args)


async def _kind_card(ctx: Context) -> None:
    card = Card(title=ctx.t("contrib.card.title"), body=ctx.t("contrib.card.body") + "\n\n" + ctx.t("contrib.usage"),
                buttons=[Button(PickKind(kind=k).pack(), f"{i}. {ctx.t(f'contrib.kind.{k}')}")
                         for i, k in enumerate(cs.KINDS, 1)])
    await ctx.issue_card(ctx.event.userid, KIND_CARD, card, ttl_hours=24)
    await ctx.set_conversation(DRAFT_FLOW, {"step": "kind"})


async def _ask_rest(ctx: Context, kind: str) -> None:
    await ctx.set_conversation(DRAFT_FLOW, {"step": "rest", "kind": kind})
    ctx.reply(ctx.t("contrib.ask.rest", kind=ctx.t(f"contrib.kind.{kind}"), example=ctx.t(f"contrib.example.{kind}")))


@router.action(PickKind)
async def on_pick_kind(ctx: Context, row: IssuedCard, action: PickKind) -> None:
    if action.kind not in cs.KINDS or row.kind != KIND_CARD:
        ctx.reply(ctx.t("card.unknown"))
        return
    await ctx.close_card(row, ctx.t(f"contrib.kind.{action.kind}"))
    await _ask_rest(ctx, action.kind)


async def _resume_draft(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = conv.data if conv else {}
    kind = str(data.get("kind") or "")
    if kind in cs.KINDS and data.get("step") == "verifier":
        ctx.reply(ctx.t("contrib.ask.verifier", what=str(data.get("text", ""))))
    elif kind in cs.KINDS:
        await _ask_rest(ctx, kind)
    else:
        ctx.reply(ctx.t("contrib.again.kind"))


@router.conversation(DRAFT_FLOW, label="contrib.flow", resume=_resume_draft)
async def on_draft(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv else {}
    if data.get("step") == "kind":
        kind = kind_by_answer(ctx.event.text)
        if kind is None:
            ctx.reply(ctx.t("contrib.again.kind"))
            return
        rows = (await ctx.session.execute(select(IssuedCard).where(
            col(IssuedCard.tenant) == ctx.tenant.key, col(IssuedCard.userid) == ctx.event.userid,
            col(IssuedCard.kind) == KIND_CARD, col(IssuedCard.state) == "open"))).scalars()
        for row in list(rows):
            await ctx.close_card(row, ctx.t(f"contrib.kind.{kind}"))
        await _ask_rest(ctx, kind)
        return
    kind = str(data.get("kind") or "")
    if kind not in cs.KINDS:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("contrib.usage"))
        return
    text = ctx.event.text
    if data.get("step") == "verifier":
        # The verifier in a message of its own: `@赵磊 16小时 …` on one line would read as a weekly action.
        token = fold(text).strip().strip(_EDGE).lstrip("@").strip()
        typed_kind = bool(data.get("typed_kind"))
        if await record(ctx, f"{data.get('text', '')} @{token}", None if typed_kind else kind):
            await ctx.clear_conversation()
        return
    # The whole line again (项目收益 ¥… @…) is read as typed; otherwise the kind chosen on the card holds.
    chosen = None if read_kind(fold(text)) else kind
    try:
        draft = read_draft(text, chosen)
    except Refused as exc:
        _refuse(ctx, exc)
        return
    if draft.mentions or ctx.event.mentions:
        if await record(ctx, text, chosen):
            await ctx.clear_conversation()
        return
    await ctx.set_conversation(DRAFT_FLOW, {"step": "verifier", "kind": draft.kind, "text": text,
                                            "typed_kind": chosen is None})
    ctx.reply(ctx.t("contrib.ask.verifier", what=f"{ctx.t(f'contrib.kind.{draft.kind}')} "
                                                 f"{fmt_amount(draft.amount, draft.unit, ctx.locale)} {draft.description}"))


# -- verifying ------------------------------------------------------------------------------------------

# Only words that say it: 收到 or 好的 is what people type when a card arrives, and must not verify anything.
# (驳回 and 拒绝 are left to the goal review and the witness cards, which answer them.)
_YES = ("属实", "核实无误", "确认属实", "情况属实", "verified")
_NO = ("不属实", "不认可", "not true")


def read_verification(text: str) -> tuple[bool, str] | None:
    """「属实」→ (True, ''); 「不属实 只提前了一周」→ (False, '只提前了一周'); anything else → None."""
    t = fold(text).strip()
    low = t.casefold()
    for word in sorted(_NO, key=len, reverse=True):
        if low.startswith(word):
            return False, t[len(word):].strip(_EDGE)[:200]
    said = normalise(t)
    if said in {normalise(w) for w in _YES}:
        return True, ""
    return None


async def decide(ctx: Context, c: cs.Contribution | None, ok: bool, reason: str = "",
                 row: IssuedCard | None = None) -> None:
    me = ctx.me
    assert me is not None
    if c is None or c.verifier_userid != me.userid:
        ctx.reply(ctx.t("card.unknown"))
        return
    if c.state != cs.PENDING:
        if row is not None:
            await ctx.close_card(row, ctx.t("contrib.verify.already"))
        else:
            ctx.reply(ctx.t("contrib.verify.already"))
        await _next_pending(ctx)
        return
    c.state, c.decided_at = (cs.VERIFIED if ok else cs.DECLINED), cs.utc(ctx.now)
    c.decline_reason = "" if ok else reason
    ctx.session.add(c)
    audit.record(ctx.session, ctx.tenant.key, me.userid, AUDIT_VERIFY, f"{c.id}:{c.state}", ctx.now)
    because = f"（{reason}）" if reason else ""
    result = ctx.t("contrib.verify.done") if ok else ctx.t("contrib.verify.declined", reason=because)
    await ctx.expire_cards(kind=VERIFY_CARD, ref_id=c.id or 0, result=result)
    if row is None:
        ctx.reply(f"{result}：{describe(ctx, c)}")
    key = "contrib.verify.told" if ok else "contrib.verify.told_no"
    ctx.send(c.contributor_userid, ctx.t(key, verifier=me.name, what=describe(ctx, c), reason=because))
    await _next_pending(ctx)


async def _next_pending(ctx: Context) -> None:
    """More waiting for the verifier: the next one typed 属实 / 不属实 answers is named."""
    waiting = await cs.pending_for(ctx.session, ctx.tenant.key, ctx.event.userid)
    if waiting:
        ctx.reply(ctx.t("contrib.verify.next", n=len(waiting), what=describe(ctx, waiting[0])))


@router.action(ConfirmContribution)
async def on_confirm(ctx: Context, row: IssuedCard, action: ConfirmContribution) -> None:
    c = await cs.get(ctx.session, ctx.tenant.key, action.contribution)
    await decide(ctx, c if c is not None and row.ref_id == c.id else None, True, row=row)


@router.action(DeclineContribution)
async def on_decline(ctx: Context, row: IssuedCard, action: DeclineContribution) -> None:
    c = await cs.get(ctx.session, ctx.tenant.key, action.contribution)
    await decide(ctx, c if c is not None and row.ref_id == c.id else None, False, row=row)


def _is_verdict(text: str) -> bool:
    return read_verification(text) is not None


@router.command("verify_contribution", pattern=_is_verdict, access="own")
async def on_verdict(ctx: Context) -> None:
    """属实 / 不属实 原因 typed instead of pressed: the newest contribution waiting for the sender. A
    command rather than an open exchange, so it still works after the verifier said something else."""
    verdict = read_verification(ctx.event.text)
    waiting = await cs.pending_for(ctx.session, ctx.tenant.key, ctx.event.userid)
    if verdict is None or not waiting:
        ctx.reply(ctx.t("contrib.verify.nothing"))
        return
    if await ask_which(ctx):
        return
    await decide(ctx, waiting[0], verdict[0], verdict[1])


async def _typed_on_card(ctx: Context, row: IssuedCard) -> None:
    verdict = read_verification(ctx.event.text)
    c = await cs.get(ctx.session, ctx.tenant.key, row.ref_id or 0)
    if verdict is not None:
        await decide(ctx, c, verdict[0], verdict[1])


register_decider(Decider(VERIFY_CARD, read_verification, _typed_on_card))


# -- who sees what ------------------------------------------------------------------------------------------

async def lead_scope(ctx: Outgoing, me: Employee) -> tuple[str, set[str] | None] | None:
    """('company', None) for HR; ('line', reports) for a manager with people below; None for anyone else."""
    if me.has_role(Role.HR):
        return "company", None
    line = (await org_tree(ctx.session, ctx.tenant.key)).line(me.userid)
    return ("line", line) if line else None


async def _lead_and_period(ctx: Context) -> tuple[Employee, tuple[str, set[str] | None], str] | None:
    """The sender, what they may see and the period they asked for; None when refused (said so)."""
    me = ctx.me
    assert me is not None
    scope = await lead_scope(ctx, me)
    if scope is None:
        ctx.reply(ctx.t("contrib.rank.denied"))
        return None
    period = read_period(ctx, ctx.args)
    if period is None:
        ctx.reply(ctx.t("contrib.period.bad", text=ctx.args.strip()))
        return None
    return me, scope, period


def read_period(ctx: Outgoing, text: str) -> str | None:
    """2026-12, 2026年12月, 12月 (this year), 2026Q4, 本月, 上月, 本季度; '' → this month."""
    t = fold(text).strip().casefold().replace(" ", "")
    local = ctx.now.astimezone(ctx.tenant.tz)
    if t in ("", "本月", "这个月", "thismonth"):
        return f"{local.year}-{local.month:02d}"
    if t in ("上月", "上个月", "lastmonth"):
        return cs.previous_month(f"{local.year}-{local.month:02d}")
    if t in ("本季度", "本季", "这个季度", "thisquarter"):
        return f"{local.year}Q{(local.month - 1) // 3 + 1}"
    quarter = parse_period(t)
    if quarter:
        return quarter
    m = re.fullmatch(r"(?:(\d{4})[-/.年])?(\d{1,2})月?", t)
    if m and 1 <= int(m.group(2)) <= 12:
        return f"{m.group(1) or local.year}-{int(m.group(2)):02d}"
    return None


def _dept(e: Employee | None) -> str:
    return e.department.split("/")[-1] if e else ""


def _sums(ctx: Outgoing, s: cs.Standing) -> str:
    parts = [fmt_amount(v, u, ctx.locale) for v, u in ((s.yuan, cs.YUAN), (s.hours, cs.HOURS), (s.times, cs.TIMES)) if v]
    return (" · " + " · ".join(parts)) if parts else ""


@router.command("contribution_ranking", words=("贡献排名", "contribution-ranking", "ranking"), args=True,
                access="lead")
async def on_ranking(ctx: Context) -> None:
    asked = await _lead_and_period(ctx)
    if asked is None:
        return
    me, scope, period = asked
    settings = ContributionSettings.of(ctx.tenant)
    rows = await cs.standings(ctx.session, ctx.tenant.key, period, ctx.tenant.tz, scope[1])
    people = {e.userid: e for e in (await ctx.session.execute(select(Employee).where(
        col(Employee.tenant) == ctx.tenant.key))).scalars()}
    ranked = [s for s in rows if s.contributions][:settings.rank_top]
    lines = [ctx.t("contrib.rank.row", i=i, name=people[s.userid].name if s.userid in people else s.userid,
                   dept=_dept(people.get(s.userid)), n=s.contributions, sums=_sums(ctx, s))
             for i, s in enumerate(ranked, 1)] or [ctx.t("contrib.rank.none")]
    quiet = cs.hidden(rows, min_witnessed=settings.hidden_min_witnessed, max_recognised=settings.hidden_max_recognised)
    if quiet:
        lines.append(ctx.t("contrib.rank.hidden"))
        lines += [ctx.t("contrib.rank.hidden.row", name=people[s.userid].name if s.userid in people else s.userid,
                        dept=_dept(people.get(s.userid)), w=s.witnessed, r=s.recognitions, c=s.contributions)
                  for s in quiet[:settings.rank_top]]
    audit.record(ctx.session, ctx.tenant.key, me.userid, AUDIT_RANK, f"{scope[0]}:{period}", ctx.now)
    ctx.reply(Message(kind="card", card=Card(
        title=ctx.t("contrib.rank.title", period=period, scope=ctx.t(f"contrib.rank.scope.{scope[0]}")),
        body="\n".join(lines))))


# -- reward suggestions ---------------------------------------------------------------------------------------

def read_yuan(text: str) -> float | None:
    """An entered reward: 2000, ¥2,000, ￥2000元, 0.2万, 2k; None when it is not one amount."""
    t = fold(text).strip()
    if t.startswith(("-", "−", "—")):  # a negative amount is a typo, never ¥2000 with a dash before it
        return None
    t = t.strip(_EDGE)
    for rx in (_MONEY_SIGN, _MONEY_WORD, _BARE):
        m = rx.fullmatch(t)
        if m:
            value = _number(m.group(1), m.group(2) if rx is not _BARE else None)
            return value if math.isfinite(value) else None
    return None


async def reward_card(ctx: Outgoing, manager: str, person: Employee, month: str,
                      items: list[cs.Contribution]) -> None:
    evidence = "\n".join([ctx.t("contrib.reward.evidence", kind=ctx.t(f"contrib.kind.{c.kind}"),
                                amount=fmt_amount(c.amount, c.unit, ctx.locale), description=c.description,
                                verifier=await ctx.name_of(c.verifier_userid)) for c in items])
    card = Card(title=ctx.t("contrib.reward.title", name=person.name, month=month),
                body=ctx.t("contrib.reward.body", name=person.name, evidence=evidence),
                buttons=[Button(EnterReward(userid=person.userid, month=month).pack(), ctx.t("contrib.btn.amount"),
                                "primary")])
    await ctx.issue_card(manager, REWARD_CARD, card, ref_id=items[0].id, ttl_hours=CARD_TTL_HOURS)


async def send_reward_cards(ctx: Outgoing, manager: Employee, month: str) -> int:
    """A card per direct report with verified contributions in `month`, to their manager."""
    reports = (await ctx.session.execute(select(Employee).where(
        col(Employee.tenant) == ctx.tenant.key, col(Employee.manager_userid) == manager.userid,
        col(Employee.active).is_(True)).order_by(col(Employee.userid)))).scalars()
    by_person: dict[str, list[cs.Contribution]] = {}
    for c in await cs.verified_in(ctx.session, ctx.tenant.key, month):
        by_person.setdefault(c.contributor_userid, []).append(c)
    sent = 0
    for person in list(reports):
        if person.userid in by_person:
            await reward_card(ctx, manager.userid, person, month, by_person[person.userid])
            sent += 1
    return sent


async def may_reward(ctx: Outgoing, me: Employee, userid: str) -> bool:
    return userid != me.userid and userid in (await org_tree(ctx.session, ctx.tenant.key)).line(me.userid)


async def save_reward(ctx: Context, person: Employee, month: str, text: str) -> bool:
    me = ctx.me
    assert me is not None
    settings = ContributionSettings.of(ctx.tenant)
    if not await may_reward(ctx, me, person.userid):
        ctx.reply(ctx.t("contrib.reward.denied", name=person.name))
        return True
    items = [c for c in await cs.verified_in(ctx.session, ctx.tenant.key, month, {person.userid})]
    if not items:
        ctx.reply(ctx.t("contrib.reward.no_evidence", name=person.name, month=month))
        return True
    yuan = read_yuan(text)
    if yuan is None or not 1 <= yuan <= settings.max_reward_yuan:
        ctx.reply(ctx.t("contrib.reward.bad", text=text.strip()[:30], cap=f"{settings.max_reward_yuan:,}"))
        return False
    fen = round(yuan * 100)
    await cs.set_reward(ctx.session, ctx.tenant.key, person.userid, month, fen, [c.id or 0 for c in items],
                        me.userid, ctx.now)
    audit.record(ctx.session, ctx.tenant.key, me.userid, AUDIT_REWARD, f"{person.userid}:{month}", ctx.now)
    ctx.reply(ctx.t("contrib.reward.saved", name=person.name, month=month, amount=f"{fen / 100:,.2f}".rstrip("0").rstrip("."),
                    n=len(items)))
    return True


@router.action(EnterReward)
async def on_enter_reward(ctx: Context, row: IssuedCard, action: EnterReward) -> None:
    me = ctx.me
    person = await ctx.employee(action.userid)
    if me is None or person is None or row.kind != REWARD_CARD:
        ctx.reply(ctx.t("card.unknown"))
        return
    if not await may_reward(ctx, me, person.userid):
        ctx.reply(ctx.t("contrib.reward.denied", name=person.name))
        return
    await ctx.set_conversation(REWARD_FLOW, {"userid": person.userid, "month": action.month, "card": row.id})
    ctx.reply(ctx.t("contrib.reward.ask", name=person.name, month=action.month))


async def _resume_reward(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = conv.data if conv else {}
    ctx.reply(ctx.t("contrib.reward.ask", name=await ctx.name_of(str(data.get("userid") or "")),
                    month=data.get("month", "")))


@router.conversation(REWARD_FLOW, label="contrib.reward.flow", resume=_resume_reward)
async def on_reward_answer(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv else {}
    person = await ctx.employee(str(data.get("userid") or ""))
    if person is None:
        await ctx.clear_conversation()
        ctx.reply(ctx.t("help"))
        return
    if await save_reward(ctx, person, str(data.get("month")), ctx.event.text):
        await ctx.clear_conversation()
        card_id = data.get("card")
        row = (await ctx.session.execute(select(IssuedCard).where(
            col(IssuedCard.tenant) == ctx.tenant.key, col(IssuedCard.id) == card_id))).scalar_one_or_none()
        if row is not None and row.state == "open":
            await ctx.close_card(row, ctx.t("contrib.verify.done"))


@router.command("reward", words=("奖励", "reward"), args=True, access="give_feedback")
async def on_reward(ctx: Context) -> None:
    """奖励 @王强 2000 [2026-12] (the month defaults to the last one), or 奖励建议 [月] for the cards."""
    me = ctx.me
    assert me is not None
    folded = fold(ctx.args)
    tokens = list(ctx.event.mentions) or [m.group(1) for m in _MENTION.finditer(folded)]
    rest = _MENTION.sub(" ", folded).split()
    month = None
    for w in list(rest):
        p = read_period(ctx, w) if re.search(r"\d{4}|月", w) else None
        if p and "Q" not in p:
            month = p
            rest.remove(w)
    if len(tokens) != 1 or not rest:
        ctx.reply(ctx.t("contrib.reward.usage"))
        return
    try:
        person = await _person(ctx, tokens[0])
    except Refused as exc:
        _refuse(ctx, exc)
        return
    local = ctx.now.astimezone(ctx.tenant.tz)
    await save_reward(ctx, person, month or cs.previous_month(f"{local.year}-{local.month:02d}"), " ".join(rest))


@router.command("reward_suggestions", words=("奖励建议", "reward-suggestions"), args=True, access="lead")
async def on_reward_suggestions(ctx: Context) -> None:
    me = ctx.me
    assert me is not None
    if await lead_scope(ctx, me) is None:
        ctx.reply(ctx.t("contrib.rank.denied"))
        return
    local = ctx.now.astimezone(ctx.tenant.tz)
    month = read_period(ctx, ctx.args) if ctx.args.strip() else cs.previous_month(f"{local.year}-{local.month:02d}")
    if month is None or "Q" in month:
        ctx.reply(ctx.t("contrib.period.bad", text=ctx.args.strip()))
        return
    n = await send_reward_cards(ctx, me, month)
    ctx.reply(ctx.t("contrib.reward.sent", n=n, month=month) if n else ctx.t("contrib.reward.nobody", month=month))


@router.command("reward_export", words=("奖励导出", "reward-export"), args=True, access="lead")
async def on_reward_export(ctx: Context) -> None:
    me = ctx.me
    assert me is not None
    scope = await lead_scope(ctx, me)
    if scope is None:
        ctx.reply(ctx.t("contrib.rank.denied"))
        return
    local = ctx.now.astimezone(ctx.tenant.tz)
    month = read_period(ctx, ctx.args) if ctx.args.strip() else cs.previous_month(f"{local.year}-{local.month:02d}")
    if month is None or "Q" in month:
        ctx.reply(ctx.t("contrib.period.bad", text=ctx.args.strip()))
        return
    out_dir = Path(ctx.data_dir) / "exports" / ctx.tenant.key
    private_dir(out_dir)
    path = out_dir / f"rewards-{month}-{uuid.uuid4().hex[:6]}.xlsx"
    create_private(path)
    await cs.write_rewards_xlsx(ctx.session, ctx.tenant.key, month, path, tz=ctx.tenant.tz, people=scope[1])
    audit.record(ctx.session, ctx.tenant.key, me.userid, AUDIT_EXPORT, f"{scope[0]}:{month}", ctx.now)
    ctx.reply(Message(kind="file", path=str(path), filename=ctx.t("contrib.export.file", month=month),
                      text=ctx.t("contrib.export.caption", month=month)))


# -- the heat map -------------------------------------------------------------------------------------------

async def heat_table(ctx: Outgoing, period: str, people: set[str] | None = None) -> tuple[cs.HeatMap, HeatTable]:
    """The heat map of `period`: the company's, or only the contributions of `people` (a manager's line)."""
    settings = ContributionSettings.of(ctx.tenant)
    data = cs.heat_map(await cs.verified_in(ctx.session, ctx.tenant.key, period, people), period,
                       depth=settings.heatmap_depth, min_people=settings.min_people)
    values: list[list[int | None]] = []
    for d in data.departments:
        row: list[int | None] = []
        for k in data.kinds:
            cell = data.cell(d, k)
            row.append(None if cell is not None and cell.suppressed else (cell.evidence if cell else 0))
        values.append(row)
    table = HeatTable(title=ctx.t("contrib.heat.title", period=period),
                      rows=[d.split("/")[-1] or d for d in data.departments],
                      columns=[ctx.t(f"contrib.kind.{k}") for k in data.kinds], values=values,
                      min_people=settings.min_people)
    return data, table


@router.command("contribution_heatmap", words=("热力图", "贡献热力图", "heatmap"), args=True, access="lead")
async def on_heatmap(ctx: Context) -> None:
    """热力图 [2026-12|本季度]: HR sees the company, a manager the contributions of their line only, with
    the same small-cell suppression; the PNG comes as an image."""
    asked = await _lead_and_period(ctx)
    if asked is None:
        return
    me, scope, period = asked
    line = None if scope[1] is None else scope[1] | {me.userid}
    data, table = await heat_table(ctx, period, line)
    if not data.departments:
        ctx.reply(ctx.t("contrib.heat.none", period=period, scope=ctx.t(f"contrib.rank.scope.{scope[0]}")))
        return
    out_dir = Path(ctx.data_dir) / "exports" / ctx.tenant.key
    private_dir(out_dir)
    png = out_dir / f"contributions-{period}-{uuid.uuid4().hex[:6]}.png"
    create_private(png)
    png.write_bytes(await asyncio.to_thread(heatmap_png, table, ctx.locale))
    audit.record(ctx.session, ctx.tenant.key, me.userid, AUDIT_HEATMAP, f"{scope[0]}:{period}", ctx.now)
    ctx.reply(Message(kind="image", path=str(png), filename=ctx.t("contrib.heat.file", period=period),
                      text=ctx.t("contrib.heat.caption", period=period, n=ContributionSettings.of(ctx.tenant).min_people)))
