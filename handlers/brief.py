"""`简报 @王强 2026Q4`: the fact brief of a person, as a card in chat and the full HTML document.

Who may ask: the person themself, the managers of their reporting line, and HR.
Every brief of someone else that is shown or sent is written to the audit log.
"""
from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

from bot.core.files import create_private, private_dir
from cards.brief_html import render_html
from cards.brief_records import Brief
from cards.model import Card, Message
from cards.texts import t
from handlers import brief_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.context import Context
from handlers.feedback import feedback_buttons, may_view, parse_feedback
from handlers.people import tenant_directory
from handlers.router import Router
from store import audit
from store.brief import build_brief, parse_period, period_days, quarter_of
from store.models import Employee, IssuedCard
from store.statuses import Polarity

router = Router("brief")
BRIEF_CARD = "brief"

# A review period stays the default of `简报` for this long after it opens.
REVIEW_DEFAULT_DAYS = 31


def brief_dir(tenant: str, data_dir: str | Path | None = None) -> Path:
    """Where the tenant's brief documents are written: <data_dir>/briefs/<tenant>/."""
    base = Path(data_dir) if data_dir is not None else Path("var")
    return base / "briefs" / tenant


def write_document(brief: Brief, data_dir: str | Path | None = None) -> Path:
    """Write the brief's HTML under brief_dir; a random suffix keeps two versions apart."""
    folder = brief_dir(brief.tenant, data_dir)
    private_dir(folder)
    safe = re.sub(r"[^0-9A-Za-z_-]", "_", brief.userid)
    path = folder / f"{brief.period}-{safe}-{uuid.uuid4().hex[:8]}.html"
    create_private(path)  # feedback text: owner only, whatever the umask
    path.write_text(render_html(brief), encoding="utf-8")
    return path


def filename(brief: Brief, locale: str = "zh") -> str:
    return t(locale, "brief.filename", name=brief.name, period=brief.period)


def summary_card(ctx: Context, brief: Brief) -> Card:
    b = brief
    praise = sum(1 for f in b.feedback if f.polarity == Polarity.PRAISE)
    sep = ctx.t("brief.sep")
    fields = [
        (ctx.t("brief.f.filled"), ctx.t("brief.f.filled.value", n=len(b.actions), weeks=len(b.expected_weeks))),
        (ctx.t("brief.f.done"), f"{len(b.done)}/{len(b.actions)}"),
        (ctx.t("brief.f.confirmed"), f"{len(b.confirmed)}/{len(b.done)}"),
        (ctx.t("brief.f.linked"), f"{len(b.linked)}/{len(b.actions)}"),
        (ctx.t("brief.f.feedback"), ctx.t("brief.f.feedback.value", n=len(b.feedback), praise=praise)),
        (ctx.t("brief.f.tasks"), f"{len(b.on_time)}/{len(b.due_tasks)}"),
        (ctx.t("brief.f.escalations"), str(len({(e.task_code, e.episode) for e in b.escalations}))),
    ]
    lines = []
    served = b.served()
    if served:
        lines.append(ctx.t("brief.goals", goals=sep.join(ctx.t("brief.count", what=code, n=len(acts))
                                                          for code, _t, acts in served[:4])))
    groups = b.feedback_groups()
    if groups:
        lines.append(ctx.t("brief.tags", tags=sep.join(
            f"{tag} {sum(len(r) for _, r in by)}" for tag, _p, by in groups[:4])))
    if b.adjustments:
        lines.append(ctx.t("brief.adjustments", n=len(b.adjustments)))
    lines.append(ctx.t("brief.attached"))
    return Card(title=ctx.t("brief.title", name=b.name, period=b.period), body="\n".join(lines), fields=fields)


async def deliver(ctx: Context, to_userid: str, brief: Brief, path: Path) -> None:
    """The summary card and the document to one person (a 反馈 button when they may give feedback)."""
    card = summary_card(ctx, brief)
    card.buttons = await feedback_buttons(ctx, to_userid, brief.userid)
    await ctx.issue_card(to_userid, BRIEF_CARD, card, data={"receiver": brief.userid, "period": brief.period},
                         ttl_hours=24 * 14)
    ctx.send(to_userid, Message(kind="file", path=str(path), filename=filename(brief, ctx.locale),
                                text=ctx.t("brief.caption", name=brief.name, period=brief.period)))


def default_period(ctx: Context) -> str:
    """The review period opened in the last month, else the current quarter."""
    today = ctx.now.astimezone(ctx.tenant.tz).date()
    recent = [p for p in ctx.tenant.review_periods
              if p.opens <= today < p.opens + timedelta(days=REVIEW_DEFAULT_DAYS)]
    if recent:
        return max(recent, key=lambda p: p.opens).period
    return quarter_of(today)


@router.command("brief", words=("简报", "brief"), args=True, access="read_person")
async def on_brief(ctx: Context) -> None:
    me = ctx.me
    assert me is not None
    rest = ctx.args
    parts = parse_feedback(rest)
    words = (parts.event or "").split()
    period: str | None = None
    leftover: list[str] = []
    i = 0
    while i < len(words):
        two = parse_period(" ".join(words[i:i + 2])) if i + 1 < len(words) else None
        one = parse_period(words[i])
        if period is None and one:
            period, i = one, i + 1
        elif period is None and two:
            period, i = two, i + 2
        else:
            leftover.append(words[i])
            i += 1
    tokens = list(ctx.event.mentions) or parts.mentions
    if not tokens and len(leftover) == 1 and not re.search(r"\d", leftover[0]):
        tokens, leftover = leftover, []  # `简报 王强`: a name without the @
    if any(re.search(r"\d{4}", w) for w in leftover):
        ctx.reply(ctx.t("brief.period.bad", text=next(w for w in leftover if re.search(r"\d{4}", w))))
        return
    if leftover or len(tokens) > 1:
        ctx.reply(ctx.t("brief.usage"))
        return

    subject: Employee | None = me
    if tokens:
        token = tokens[0]
        if ctx.event.mentions:
            subject = await ctx.employee(token)
        else:
            m = (await tenant_directory(ctx.session, ctx.tenant.key)).resolve(token)
            if m.status == "choose":
                names = ctx.people_labels(m.candidates)
                ctx.reply(ctx.t("fb.person.ambiguous", token=token, names=names))
                return
            subject = await ctx.employee(m.person.userid) if m.status == "one" and m.person else None
        if subject is None:
            ctx.reply(ctx.t("fb.person.none", token=token))
            return
    assert subject is not None
    if not await may_view(ctx, me, subject.userid):
        ctx.reply(ctx.t("brief.denied", name=subject.name))
        return
    period = period or default_period(ctx)
    try:
        period_days(period)
    except ValueError:
        ctx.reply(ctx.t("brief.period.bad", text=period))
        return
    brief = await build_brief(ctx.session, ctx.tenant.key, subject.userid, period, now=ctx.now, tz=ctx.tenant.tz)
    if subject.userid != me.userid:
        audit.record(ctx.session, ctx.tenant.key, me.userid, audit.VIEW_BRIEF, subject.userid, ctx.now)
    await deliver(ctx, me.userid, brief, write_document(brief, ctx.data_dir))




@router.card(BRIEF_CARD)
async def on_brief_card(ctx: Context, row: IssuedCard) -> None:
    """The brief card's one button, 反馈, is the feedback feature's typed action; nothing else is pressable."""
    ctx.reply(ctx.t("card.unknown"))
