"""The 09:30 card that asks for the week's key action: sent by the morning job, and again from the menu."""
from __future__ import annotations

from cards.model import Button, Card
from handlers.context import Outgoing


def prompt_card(ctx: Outgoing) -> Card:
    return Card(title=ctx.t("prompt.title"), body=ctx.t("prompt.body"),
                buttons=[Button("skip", ctx.t("btn.skip_week"))])
