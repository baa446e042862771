"""Times, hours, statuses and people as the task messages show them."""
from __future__ import annotations

from datetime import datetime

from bot.core.timeutil import aware
from cards import texts
from handlers.context import Outgoing
from store.models import Task
from store.statuses import TaskStatus
from store.tasks import BLOCKED


def local(ctx: Outgoing, dt: datetime) -> datetime:
    return aware(dt).astimezone(ctx.tenant.tz)


def fmt_time(ctx: Outgoing, dt: datetime) -> str:
    """'12-01 12:00', with the year when it is not this year."""
    loc = local(ctx, dt)
    return loc.strftime("%m-%d %H:%M" if loc.year == local(ctx, ctx.now).year else "%Y-%m-%d %H:%M")


def fmt_hours(hours: float) -> str:
    return f"{hours:g}"


def status_label(task: Task, locale: str = "zh") -> str:
    """The status as people read it (阻塞（等采购确认）); the stored value never reaches them."""
    label = TaskStatus(task.status).label(locale)
    if task.status == BLOCKED and task.block_reason:
        return texts.t(locale, "task.status.blocked_by", status=label, reason=task.block_reason)
    return label


async def names(ctx: Outgoing, userids: list[str]) -> str:
    return ctx.t("list.sep").join([await ctx.name_of(u) for u in userids])


def fmt_since(ctx: Outgoing, since: datetime) -> str:
    """How long ago `since` was, as people say it: 40 分钟, 5 小时, 1 天 3 小时."""
    minutes = max(0, int((ctx.now - aware(since)).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return ctx.t("time.days_hours", d=days, h=hours) if hours else ctx.t("time.days", d=days)
    if hours:
        return ctx.t("time.hours", h=hours)
    return ctx.t("time.minutes", m=mins)
