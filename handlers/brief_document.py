"""The fact brief as it is sent: the HTML document on disk, its summary card and the file, to one person.

Both the `简报` command and the review-period job deliver briefs; this is the part they share,
so the job needs no router.
"""
from __future__ import annotations

import re
import uuid
from pathlib import Path

from bot.core.files import create_private, private_dir
from cards.brief_html import render_html
from cards.brief_records import Brief
from cards.model import Card, Message
from cards.texts import t
from handlers import brief_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.context import Outgoing
from handlers.feedback_rights import feedback_buttons
from store.statuses import Polarity

BRIEF_CARD = "brief"


def brief_dir(tenant: str, data_dir: str | Path | None = None) -> Path:
    """Where the tenant's brief documents are written: <data_dir>/briefs/<tenant>/."""
    base = Path(data_dir) if data_dir is not None else Path("var")
    return base / "briefs" / tenant


def write_document(brief: Brief, data_dir: str | Path | None = None) -> Path:
    """Write the brief's HTML under brief_dir, in the locale it was built in (`build_brief(locale=…)`:
    the tenant's, so its records' labels and the page agree); a random suffix keeps two versions apart."""
    folder = brief_dir(brief.tenant, data_dir)
    private_dir(folder)
    safe = re.sub(r"[^0-9A-Za-z_-]", "_", brief.userid)
    path = folder / f"{brief.period}-{safe}-{uuid.uuid4().hex[:8]}.html"
    create_private(path)  # feedback text: owner only, whatever the umask
    path.write_text(render_html(brief), encoding="utf-8")
    return path


def filename(brief: Brief, locale: str = "zh") -> str:
    return t(locale, "brief.filename", name=brief.name, period=brief.period)


def summary_card(ctx: Outgoing, brief: Brief) -> Card:
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


async def deliver(ctx: Outgoing, to_userid: str, brief: Brief, path: Path) -> None:
    """The summary card and the document to one person (a 反馈 button when they may give feedback)."""
    card = summary_card(ctx, brief)
    card.buttons = await feedback_buttons(ctx, to_userid, brief.userid)
    await ctx.issue_card(to_userid, BRIEF_CARD, card, data={"receiver": brief.userid, "period": brief.period},
                         ttl_hours=24 * 14)
    ctx.send(to_userid, Message(kind="file", path=str(path), filename=filename(brief, ctx.locale),
                                text=ctx.t("brief.caption", name=brief.name, period=brief.period)))
