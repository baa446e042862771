"""Where the light shows outside the check itself: the task card's fields, the PMO's task list, and
the refusal of 完成 for a red deliverable without a PMO's override.

The task package calls these (one line each); nothing here knows the task handlers.
"""
from __future__ import annotations

from cards.model import Button, Card
from handlers.actions import CardAction
from handlers.context import Outgoing
from handlers.deliverables.lights import FieldResult, Verdict, as_light
from handlers.deliverables.texts import light_label, summary, values_line
from store.deliverables import closable, latest_check
from store.models import DeliverableCheck, Task


RELEASE_CARD = "deliv_release"  # to the PMO: a 完成 was refused for a red deliverable


class ReleaseTask(CardAction, prefix="drel"):
    """放行 on the PMO's notice: the same checks and audit as the command (handlers/deliverable_intake.py)."""

    task: int
    check: int


def verdict_of_row(row: DeliverableCheck) -> Verdict:
    fields = [FieldResult(**f) for f in row.fields]
    return Verdict(as_light(row.light), fields, row.reason)


def row_summary(locale: str, row: DeliverableCheck) -> str:
    return summary(locale, verdict_of_row(row))


async def card_fields(ctx: Outgoing, task: Task) -> list[tuple[str, str]]:
    """`交付物检查 🟡 黄灯（缺项：CPU峰值）` and `检查数值 并发量 5600 🟢 · …` once a file was checked."""
    if task.id is None:
        return []
    row = await latest_check(ctx.session, ctx.tenant.key, task.id)
    if row is None:
        return []
    head = row_summary(ctx.locale, row)
    if row.override_by:
        head = ctx.t("deliv.with_override", summary=head,
                     override=ctx.t("deliv.override.field", who=await ctx.name_of(row.override_by)))
    out = [(ctx.t("deliv.field"), head)]
    shown = [f for f in verdict_of_row(row).fields if f.light != "none" or f.value is not None]
    if shown:
        out.append((ctx.t("deliv.values"), values_line(ctx.locale, shown)))
    return out


async def list_mark(ctx: Outgoing, task: Task) -> str:
    """`🔴 红灯`, a column after a task in the PMO's list; empty before any check."""
    if task.id is None:
        return ""
    row = await latest_check(ctx.session, ctx.tenant.key, task.id)
    return light_label(ctx.locale, row.light) if row is not None and row.light else ""


async def done_refusal(ctx: Outgoing, task: Task, *, by: str, pmo: str) -> str:
    """Why the task cannot be closed as done now (a red check without an override), or "" when it can.

    The project's PMO is told at the same time, with the command that releases it."""
    if task.id is None:
        return ""
    row = await latest_check(ctx.session, ctx.tenant.key, task.id)
    if closable(row):
        return ""
    assert row is not None
    from_reason = row_summary(ctx.locale, row)
    if pmo and pmo != by:
        body = ctx.t("deliv.pmo.refused", who=await ctx.name_of(by), code=task.code, title=task.title,
                     why=from_reason)
        await ctx.issue_card(pmo, RELEASE_CARD, Card(
            title=ctx.t("deliv.release.title", code=task.code, title=task.title), body=body,
            buttons=[Button(ReleaseTask(task=task.id, check=row.id or 0).pack(), ctx.t("deliv.release.btn"),
                            "primary")]), ref_id=row.id)
    return ctx.t("deliv.refuse_done", code=task.code, why=from_reason, pmo=await ctx.name_of(pmo) if pmo else "")


async def delivered_note(ctx: Outgoing, task: Task) -> str:
    """What 完成 records as the deliverable when a file was checked: its name and light."""
    if task.id is None:
        return ""
    row = await latest_check(ctx.session, ctx.tenant.key, task.id)
    if row is None:
        return ""
    return ctx.t("deliv.delivered", name=row.filename or ctx.t("deliv.file.image"), light=light_label(ctx.locale, row.light))
