"""Routes an event to the handler that owns it: command, card press, pending conversation, menu."""
from __future__ import annotations

from typing import Awaitable, Callable

from sqlalchemy import select

from bot.core.timeutil import aware
from handlers.context import BROADCAST, Context
from store.models import IssuedCard, ScheduledSend

Handler = Callable[[Context], Awaitable[None]]
CardHandler = Callable[[Context, IssuedCard], Awaitable[None]]


class Router:
    def __init__(self) -> None:
        self.commands: dict[str, Handler] = {}
        self.cards: dict[str, CardHandler] = {}
        self.conversations: dict[str, Handler] = {}
        self.menus: dict[str, Handler] = {}
        self.fallback: Handler | None = None

    def command(self, name: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.commands[name] = fn
            return fn
        return deco

    def card(self, kind: str) -> Callable[[CardHandler], CardHandler]:
        def deco(fn: CardHandler) -> CardHandler:
            self.cards[kind] = fn
            return fn
        return deco

    def conversation(self, kind: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.conversations[kind] = fn
            return fn
        return deco

    def menu(self, key: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.menus[key] = fn
            return fn
        return deco

    def include(self, other: "Router") -> None:
        for mine, theirs in ((self.commands, other.commands), (self.cards, other.cards),
                             (self.conversations, other.conversations), (self.menus, other.menus)):
            clash = set(mine) & set(theirs)
            if clash:
                raise ValueError(f"routes registered twice: {sorted(clash)}")
            mine.update(theirs)
        if other.fallback is not None:
            self.fallback = other.fallback

    async def dispatch(self, ctx: Context) -> None:
        ev = ctx.event
        if ctx.me is None or not ctx.me.active:
            ctx.reply(ctx.t("unknown_user"))
            return
        if ev.kind == "action":
            await self._card(ctx)
        elif ev.kind == "menu":
            handler = self.menus.get(ev.action_key)
            if handler is not None:
                await handler(ctx)
            else:
                ctx.reply(ctx.t("help"))
        elif ev.kind == "text":
            await self._text(ctx)
        # "enter" (the user opened the app) needs no answer: unsolicited messages annoy.

    async def _text(self, ctx: Context) -> None:
        from handlers.reply_grammar import classify_command

        name, _rest = classify_command(ctx.event.text)
        if name and name in self.commands:
            await self.commands[name](ctx)
            return
        if name:  # a command of a feature this installation does not have
            ctx.reply(ctx.t("help"))
            return
        conv = await ctx.conversation()
        if conv is not None and conv.kind in self.conversations:
            await self.conversations[conv.kind](ctx)
            return
        if self.fallback is not None:
            await self.fallback(ctx)
        else:
            ctx.reply(ctx.t("help"))

    async def _card(self, ctx: Context) -> None:
        ev = ctx.event
        row = (await ctx.session.execute(select(IssuedCard).where(
            IssuedCard.tenant == ctx.tenant.key, IssuedCard.id == ev.card_id))).scalar_one_or_none()
        if row is None:
            ctx.reply(ctx.t("card.unknown"))
        elif row.userid != ev.userid and not await _in_audience(ctx, row):
            ctx.reply(ctx.t("card.not_yours"))
        elif row.state != "open":
            ctx.reply(ctx.t("card.used"))
        elif aware(row.expires_at) <= ctx.now:
            ctx.reply(ctx.t("card.expired"))
        elif row.kind not in self.cards:
            ctx.reply(ctx.t("card.unknown"))
        else:
            valid_keys = {b["key"] for b in row.card.get("buttons", [])}
            if row.card.get("submit"):
                valid_keys.add(row.card["submit"]["key"])
            if ev.action_key not in valid_keys:
                ctx.reply(ctx.t("card.unknown"))
                return
            await self.cards[row.kind](ctx, row)


async def _in_audience(ctx: Context, row: IssuedCard) -> bool:
    """Was this shared card actually sent to the presser? (A forwarded press is not.)"""
    if row.userid != BROADCAST:
        return False
    kind, _, day = str(row.data.get("audience", "")).partition(":")
    found = await ctx.session.execute(select(ScheduledSend.id).where(
        ScheduledSend.tenant == ctx.tenant.key, ScheduledSend.userid == ctx.event.userid,
        ScheduledSend.kind == kind, ScheduledSend.day == day))
    return found.first() is not None
