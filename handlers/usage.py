"""我的使用 / my usage: a person's own uses of the bot, and the manager KPI lines of HR's Friday card.

Uses are recorded by the router (handlers/router.py) and the console; the figures are in
store/usage.py and defined in docs/manager_kpi.md. Nobody sees another person's figures here:
a manager's own in chat, the company's and each department's only in HR's card and export.
"""
from __future__ import annotations

from bot.core.calendar import WorkCalendar, iso_week, week_back, week_label
from handlers import usage_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.context import Context, Outgoing
from handlers.reply_grammar import fold_width
from handlers.router import Router
from store import usage

router = Router("usage")

_WEEKS_BACK = 4


def _num(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.0f}%"


_WORDS = ("我的使用", "我的使用数据", "使用情况", "my usage")


def _names_someone(text: str) -> bool:
    """`我的使用 @刘洋`: the command's word followed by more (the words alone are whole-word matched,
    so 「我的使用。」 and typos still reach the command). After 使用情况 only a mention counts:
    「使用情况调研 @李娜」 is a weekly action."""
    low = fold_width(text.strip()).casefold()
    for word in _WORDS:
        rest = low[len(word):].strip() if low.startswith(word) else ""
        if rest and (word != "使用情况" or rest.startswith("@")):
            return True
    return False


@router.command("my_usage", words=_WORDS, pattern=_names_someone, access="own")
async def on_my_usage(ctx: Context) -> None:
    me = ctx.me
    assert me is not None
    if ctx.args.strip():  # only one's own, whoever asks and whoever they name
        ctx.use = None  # refused: nothing stored, not even as a use
        ctx.reply(ctx.t("usage.own_only"))
        return
    week = iso_week(ctx.now.astimezone(ctx.tenant.tz).date())
    weeks = [week_back(week, n) for n in range(_WEEKS_BACK - 1, -1, -1)]
    counts = await usage.uses_of(ctx.session, ctx.tenant.key, weeks, userid=me.userid)
    # This message is a pull too; its row is added when the turn commits.
    pulls = counts.get((week, me.userid, "pull"), 0) + 1
    active = sum(1 for w in weeks[:-1] if counts.get((w, me.userid, "pull"), 0)) + 1
    lines = [ctx.t("usage.title", week=week_label(week, ctx.locale)),
             ctx.t("usage.week", pulls=pulls, prompted=counts.get((week, me.userid, "prompted"), 0),
                   actions=counts.get((week, me.userid, "action"), 0)),
             ctx.t("usage.active_weeks", n=_WEEKS_BACK, active=active)]
    sent = await usage.escalations_of(ctx.session, ctx.tenant.key, week, WorkCalendar(ctx.tenant), me.userid)
    if sent:
        hours = [h for h in sent if h is not None]
        median = usage.median(hours)
        lines.append(ctx.t("usage.escalations", n=len(sent), resolved=len(hours),
                           median=ctx.t("usage.escalations.median", hours=_num(median)) if median is not None else ""))
    lines.append(ctx.t("usage.definitions"))
    ctx.reply("\n".join(lines))


async def usage_lines(ctx: Outgoing, week: str) -> str:
    """HR's Friday card: the managers' weekly use per department, and the features to consider turning off."""
    kpi = await usage.manager_kpi(ctx.session, ctx.tenant.key, week, WorkCalendar(ctx.tenant))
    total = kpi.total
    if not total.managers:
        return ""

    def esc(f: usage.KpiFigures, key: str) -> str:
        h = f.median_act_hours
        return "" if h is None else ctx.t(key, n=f.escalations, hours=_num(h))

    lines = [ctx.t("usage.hr.title", active=total.active, n=len(total.managers), pct=_pct(total.active_rate),
                   median=_num(total.median_pulls), esc=esc(total, "usage.hr.esc"))]
    for d in kpi.departments:
        lines.append(ctx.t("usage.hr.dept", dept=d.department.split("/")[-1] or d.department, active=d.active,
                           n=len(d.managers), median=_num(d.median_pulls), prompted=d.prompted, actions=d.actions,
                           esc=esc(d, "usage.hr.dept.esc")))
    off = [a for a in await usage.adoption(ctx.session, ctx.tenant.key, week) if a.turn_off]
    if off:
        items = ctx.t("usage.sep").join(
            ctx.t("usage.hr.turn_off.item", name=a.info.zh if ctx.locale == "zh" else a.info.en, pct=_pct(a.share),
                  users=a.users, eligible=a.eligible) for a in off)
        lines.append(ctx.t("usage.hr.turn_off", weeks=usage.MATURE_WEEKS, window=usage.WINDOW_WEEKS,
                           floor=f"{usage.ADOPTION_FLOOR:.0%}", items=items))
    return "\n".join(lines)
