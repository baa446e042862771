"""Typed verdicts (通过, 同意, 驳回, 属实 …) when more than one feature waits for the same person.

A goal change, a JD suggestion and a contribution can all wait for one HR person at once, and
通过 or 驳回 reads as an answer to the first two. Whichever exchange happened to be open would take
it, deciding something the person may not have meant. So each feature that reads typed verdicts
declares its card kind and its reader here, and before a typed word decides anything:

- exactly one feature has an open card the word answers → that feature decides, as before
  (within a feature its own rule holds: the item it last named);
- more than one → the bot lists them and asks for the button on the card; nothing changes;
- none (the exchange was put aside or ran out) → the word still reaches the one card it answers,
  and when there is none it is answered and never taken for a weekly action.

Acknowledgements (收到, 好的, 👍) are read by no feature's reader, so they decide nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlalchemy import select
from sqlmodel import col

from bot.core.timeutil import aware
from cards.texts import register
from handlers.context import Context
from store.models import IssuedCard
from store.statuses import CardState

TEXTS = register({
    "decide.which": {
        "zh": "「{word}」可以回答好几件等你决定的事，我没有改动任何一件。请在对应卡片上点按钮：\n{lines}",
        "en": "\"{word}\" could answer several things waiting for you; nothing was changed. Please press the button "
              "on the card you mean:\n{lines}"},
    "decide.line": {"zh": "· {title}", "en": "· {title}"},
    "decide.other": {"zh": "「{word}」不是这些卡片的回答，没有改动任何内容。请点卡片上的按钮：\n{lines}",
                     "en": "\"{word}\" does not answer these cards; nothing was changed. Please press a button on the card:\n{lines}"},
    "decide.nothing": {"zh": "现在没有等你决定的事，「{word}」没有改动任何内容。",
                       "en": "Nothing is waiting for your decision; \"{word}\" changed nothing."},
})


@dataclass(frozen=True)
class Decider:
    kind: str  # the card kind whose open cards are the feature's pending items
    reads: Callable[[str], object | None]  # the feature's reader of typed verdicts
    decide: Callable[[Context, IssuedCard], Awaitable[None]]  # the typed word on that card


DECIDERS: dict[str, Decider] = {}


def register_decider(decider: Decider) -> None:
    DECIDERS[decider.kind] = decider


_SEGMENT = re.compile(r"[\s,，。:：;；!！.?？、~～]")


def reads_verdict(text: str) -> bool:
    """A verdict standing on its own: its first segment alone is a bare verdict word (驳回, 同意👍, 驳回 预算不足),
    and no colleague is @-named. Outside an approval exchange a weekly action such as 「拒绝了3个不合格供应商
    @李娜」 or 「now the report is done」 must not reject anyone's goal change."""
    if "@" in text or "＠" in text:
        return False
    first = _SEGMENT.split(text.strip(), maxsplit=1)[0]
    for d in DECIDERS.values():
        verdict = d.reads(first)
        if isinstance(verdict, tuple) and len(verdict) == 2 and not verdict[1] and d.reads(text) is not None:
            return True
    return False


async def open_for(ctx: Context, *, any_word: bool = False) -> list[tuple[Decider, IssuedCard]]:
    """The sender's open, unexpired cards that the typed text answers (or, with `any_word`, any verdict
    card of theirs), newest first."""
    readers = {k: d for k, d in DECIDERS.items() if any_word or d.reads(ctx.event.text) is not None}
    if not readers:
        return []
    rows = (await ctx.session.execute(select(IssuedCard).where(
        col(IssuedCard.tenant) == ctx.tenant.key, col(IssuedCard.userid) == ctx.event.userid,
        col(IssuedCard.kind).in_(list(readers)), col(IssuedCard.state) == CardState.OPEN).order_by(
        col(IssuedCard.created_at).desc(), col(IssuedCard.id).desc()))).scalars()
    return [(readers[r.kind], r) for r in rows if aware(r.expires_at) > ctx.now]


async def ask_which(ctx: Context) -> bool:
    """True (and the list sent) when the typed word answers open cards of more than one feature."""
    found = await open_for(ctx)
    if len({d.kind for d, _ in found}) <= 1:
        return False
    lines = [ctx.t("decide.line", title=str(r.card.get("title") or "")) for d, r in found]
    ctx.reply(ctx.t("decide.which", word=ctx.event.text.strip()[:20], lines="\n".join(lines)))
    return True


async def decide_typed(ctx: Context) -> bool:
    """A verdict typed with no exchange open to take it. False when the text is no feature's verdict."""
    if not reads_verdict(ctx.event.text):
        return False
    if await ask_which(ctx):
        return True
    found = await open_for(ctx)
    if not found:
        others = await open_for(ctx, any_word=True)  # 同意 to a card that asks for 属实: say what it asks
        lines = [ctx.t("decide.line", title=str(r.card.get("title") or "")) for _, r in others]
        ctx.reply(ctx.t("decide.other", word=ctx.event.text.strip()[:20], lines="\n".join(lines)) if lines
                  else ctx.t("decide.nothing", word=ctx.event.text.strip()[:20]))
        return True
    decider, row = found[0]
    await decider.decide(ctx, row)
    return True
