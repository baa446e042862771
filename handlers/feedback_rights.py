"""Who may give and see micro-feedback, the feature's settings, and the 反馈 button other cards carry.

The weekly action, task and brief cards place the button; the brief job delivers one. They need
these rules, not the feedback conversation, so the rules live here and handlers/feedback.py
(the conversation and its router) uses them too.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from sqlmodel import col, select

from bot.core.config import Section, Strict
from cards.model import Button
from handlers import feedback_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.actions import CardAction
from handlers.context import Outgoing
from store.feedback import local_day_start
from store.models import Employee, Feedback
from store.pulse import in_line
from store.statuses import Polarity, Role


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


async def may_give(ctx: Outgoing, giver: str, receiver: Employee) -> str | None:
    """None if `giver` may give `receiver` feedback, else the refusal to show."""
    if receiver.userid == giver:
        return ctx.t("fb.self")
    if not receiver.active:
        return ctx.t("fb.person.none", token=receiver.name)
    # Up the receiver's manager chain (one recursive query), not the giver's whole line, which is
    # the company for the top manager and grew with every person on each witness invitation.
    if await in_line(ctx.session, ctx.tenant.key, giver, receiver.userid):
        return None
    if not settings(ctx).peer:
        return ctx.t("fb.outside_line", name=receiver.name)
    quota = settings(ctx).peer_monthly_quota
    if await peer_feedback_this_month(ctx, giver) >= quota:
        return ctx.t("fb.quota", n=quota)
    return None


async def peer_feedback_this_month(ctx: Outgoing, giver: str) -> int:
    """Feedback `giver` gave this calendar month (tenant time) to people outside their line."""
    tz = ctx.tenant.tz
    first = ctx.now.astimezone(tz).date().replace(day=1)
    rows = (await ctx.session.execute(select(col(Feedback.receiver_userid)).where(
        col(Feedback.tenant) == ctx.tenant.key, col(Feedback.giver_userid) == giver,
        col(Feedback.created_at) >= local_day_start(first, tz)))).scalars()
    return sum([not await in_line(ctx.session, ctx.tenant.key, giver, r) for r in list(rows)])


async def may_view(ctx: Outgoing, viewer: Employee, subject: str) -> bool:
    """The person themself, HR, and managers of the person's reporting line."""
    if subject == viewer.userid or viewer.has_role(Role.HR):
        return True
    return await in_line(ctx.session, ctx.tenant.key, viewer.userid, subject)


async def feedback_buttons(ctx: Outgoing, giver: str, receiver: str,
                           about: Literal["action", "task", ""] = "") -> list[Button]:
    """The 反馈 button for another feature's card, when `giver` may give `receiver` feedback."""
    person = await ctx.employee(receiver)
    if person is None or await may_give(ctx, giver, person) is not None:
        return []
    return [Button(GiveFeedback(about=about).pack(), ctx.t("fb.btn"))]
