"""A question the bot asks and waits on; 继续 after an interruption asks it again."""
from __future__ import annotations

from typing import Any

from handlers.context import Context

ASK_BLOCK_REASON = "task_block_reason"
ASK_DELIVERABLE = "task_deliverable"
ASK_NEW_DUE = "task_new_due"


async def ask(ctx: Context, kind: str, data: dict[str, Any], question: str, **kw: Any) -> None:
    """Ask one question and wait for its answer; 继续 after an interruption asks it again."""
    await ctx.set_conversation(kind, {**data, "question": question, "question_kw": kw})
    ctx.reply(ctx.t(question, **kw))


async def ask_again(ctx: Context) -> None:
    conv = await ctx.conversation()
    data = dict(conv.data) if conv is not None else {}
    ctx.reply(ctx.t(str(data.get("question") or "flow.resumed"), **dict(data.get("question_kw") or {"what": ""})))
