"""`简报 @王强 2026Q4`: the fact brief of a person, as a card in chat and the full HTML document.

Who may ask: the person themself, the managers of their reporting line, and HR.
Every brief of someone else that is shown or sent is written to the audit log.
"""
from __future__ import annotations

import re
from datetime import timedelta

from handlers.brief_document import BRIEF_CARD, deliver, write_document
from handlers.context import Context
from handlers.feedback import parse_feedback
from handlers.feedback_rights import may_view
from handlers.people import tenant_directory
from handlers.router import Router
from store import audit
from store.brief import build_brief, parse_period, period_days, quarter_of
from store.models import Employee, IssuedCard

router = Router("brief")

# A review period stays the default of `简报` for this long after it opens.
REVIEW_DEFAULT_DAYS = 31


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
    brief = await build_brief(ctx.session, ctx.tenant.key, subject.userid, period, now=ctx.now, tz=ctx.tenant.tz,
                              locale=ctx.locale)
    if subject.userid != me.userid:
        audit.record(ctx.session, ctx.tenant.key, me.userid, audit.VIEW_BRIEF, subject.userid, ctx.now)
    await deliver(ctx, me.userid, brief, write_document(brief, ctx.data_dir))




@router.card(BRIEF_CARD)
async def on_brief_card(ctx: Context, row: IssuedCard) -> None:
    """The brief card's one button, 反馈, is the feedback feature's typed action; nothing else is pressable."""
    ctx.reply(ctx.t("card.unknown"))
