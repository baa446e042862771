"""Routes an event to the handler that owns it: command, card press, pending conversation, menu.

A feature declares everything it answers on a `Router` of its own, and the root router
includes every feature's:

    router = Router("kudos")

    @router.command("kudos", words=("点赞", "kudos"), args=True, access="own")
    async def on_kudos(ctx: Context) -> None: ...          # ctx.args is the text after the word

    @router.card("kudos_pick", access="recipient")
    async def on_pick(ctx: Context, row: IssuedCard) -> None: ...

    @router.action(GiveKudos)                               # a typed button on any card
    async def on_give(ctx: Context, row: IssuedCard, action: GiveKudos) -> None: ...

Each use is recorded once, in the handler's transaction (store/usage.py): a command counts as
a pull of its feature unless it declares `usage="action"` (or None: not a use, like 帮助); a
press on a card the bot pushed counts as prompted; a press on a card shown in answer to the
person's own message is a step of what they started and not counted again. A handler that
completes something (feedback given, an escalation resolved) says so with `ctx.used("action")`.

The words of every command make up the command table the root classifies text with, so a
new command needs no edit of a shared list; `access` names the rule that decides who may
use it (the isolation tests read these declarations and try each as every role).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal, TypeVar

from sqlalchemy import select
from sqlmodel import col

from bot.core.timeutil import aware
from handlers.actions import CardAction
from cards.intent_words import command_words
from handlers.command_words import WordIndex
from handlers.context import ASKED, BROADCAST, Context, Use
from handlers.reply_grammar import CARD_ANSWERS, collapse_spaces, fold_width
from store.models import IssuedCard, ScheduledSend
from store.usage import UsageKind, record_use

Handler = Callable[[Context], Awaitable[None]]
CardHandler = Callable[[Context, IssuedCard], Awaitable[None]]
A = TypeVar("A", bound=CardAction)
ActionHandler = Callable[[Context, IssuedCard, Any], Awaitable[None]]

# Who may use a command or press a card kind; the rules are spelled out in tests/access_policy.py.
Access = Literal["own", "read_person", "give_feedback", "view_task", "report_task", "edit_task", "create_task",
                 "change_goal", "recipient", "assess", "calibrate", "lead", "hr", "any"]

# An argument command's word must stand alone (end, space, colon, @ or #): weekly actions often
# start with the same words — `修改注册资料 @李娜` is an action, `修改 @王强` is an edit.
_ARG_BOUNDARY = re.compile(r"$|[\s:@#]")
_TRAILING = "。.!！~～ "  # end marks a typed answer may carry (「接受。」)
# Commands that act on the flow itself, so they do not put it aside first.
ENGINE_COMMANDS = frozenset({"continue", "cancel", "answer"})


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Handler
    words: tuple[str, ...] = ()
    args: bool = False  # the word may be followed by an argument (`简报 @王强`)
    pattern: Callable[[str], bool] | None = None  # recognises the command instead of words (明天请假 …)
    access: tuple[Access, ...] = ("own",)  # the rules its uses follow (`反馈 @x …` gives, `反馈 查看 @x` reads)
    usage: UsageKind | None = "pull"  # how a use counts for the manager KPI (None: not a use)
    feature: str = ""  # the router that declared it


@dataclass(frozen=True)
class CardSpec:
    kind: str
    handler: CardHandler
    access: Access = "recipient"
    usage: UsageKind | None = "prompted"
    feature: str = ""


@dataclass(frozen=True)
class ActionSpec:
    action: type[CardAction]
    handler: ActionHandler
    usage: UsageKind | None = "prompted"
    feature: str = ""


@dataclass(frozen=True)
class FlowSpec:
    """A multi-step exchange: its replies go to `handler` while it is under way."""

    kind: str
    handler: Handler
    label: str = "flow.default"  # text key naming it in "已暂停{label}"
    # Asks the open question again when the person comes back to it with 继续.
    resume: Handler | None = None


@dataclass(frozen=True)
class CompleteMessage:
    """Text that stands on its own and belongs to a feature (a whole weekly action): it is handled
    by that feature even while another flow is under way, which is put aside first."""

    test: Callable[[Context], Awaitable[bool]]
    handler: Handler
    owns: tuple[str, ...]  # the flows that take such text themselves


@dataclass
class CommandTable:
    """Text → (command, argument), from the words the features declared.

    A whole message that is a command word is matched the way people type it (punctuation,
    particles, the same pinyin, a one-letter slip: handlers/command_words.py); a word followed
    by an argument must be spelled right, since weekly actions often start with such words."""

    whole: WordIndex = field(default_factory=WordIndex)
    prefixed: list[tuple[str, str]] = field(default_factory=list)  # longest word first
    patterns: list[tuple[Callable[[str], bool], str]] = field(default_factory=list)

    def add(self, spec: CommandSpec) -> None:
        for word in spec.words:
            if spec.args:  # `任务` alone is matched here too (the boundary allows the end of the text)
                self.prefixed.append((collapse_spaces(fold_width(word)).casefold(), spec.name))
            else:
                self.whole.add(word, spec.name)
        self.prefixed.sort(key=lambda wc: -len(wc[0]))
        if spec.pattern is not None:
            self.patterns.append((spec.pattern, spec.name))

    @staticmethod
    def key_of(text: str) -> str:
        """The text as the exact-word table keys it (width-folded, spaces collapsed, lower case, no end mark)."""
        return collapse_spaces(fold_width(text.strip())).casefold().rstrip(_TRAILING)

    def classify(self, text: str) -> tuple[str, str]:
        """(command, rest) for a chat command; ('', text) when the text is not one."""
        raw = text.strip()
        folded = fold_width(raw)  # same length as raw, so offsets carry over
        command = self.whole.match(folded)
        if command:
            return command, ""
        low = folded.casefold()
        for word, command in self.prefixed:
            if low.startswith(word) and _ARG_BOUNDARY.match(low, len(word)):
                return command, raw[len(word):].lstrip(" \t:：\u3000").strip()
        for matches, command in self.patterns:
            if matches(raw):
                return command, raw
        return "", text


class Router:
    def __init__(self, name: str = "root") -> None:
        self.name = name
        self.commands: dict[str, CommandSpec] = {}
        self.cards: dict[str, CardSpec] = {}
        self.actions: dict[str, ActionSpec] = {}
        self.flows: dict[str, FlowSpec] = {}
        self.complete: list[CompleteMessage] = []
        self.menus: dict[str, Handler] = {}
        self.fallback: Handler | None = None
        # Facts from the company's workflows (kind "external"): they have no sender to check.
        self.external_handler: Handler | None = None
        # Images and files people send in chat (kind "file"); one per bot.
        self.file_handler: Handler | None = None
        self.table = CommandTable()

    # -- declaring ------------------------------------------------------------------------
    def command(self, name: str, *, words: tuple[str, ...] = (), args: bool = False,
                pattern: Callable[[str], bool] | None = None,
                access: Access | tuple[Access, ...] = "own",
                usage: UsageKind | None = "pull") -> Callable[[Handler], Handler]:
        if not words and pattern is None:
            raise ValueError(f"command {name!r} needs words or a pattern")

        def deco(fn: Handler) -> Handler:
            rules = (access,) if isinstance(access, str) else tuple(access)
            self._add_command(CommandSpec(name, fn, words, args, pattern, rules, usage, self.name))
            return fn
        return deco

    def card(self, kind: str, *, access: Access = "recipient",
             usage: UsageKind | None = "prompted") -> Callable[[CardHandler], CardHandler]:
        def deco(fn: CardHandler) -> CardHandler:
            self._add(self.cards, kind, CardSpec(kind, fn, access, usage, self.name))
            return fn
        return deco

    def action(self, action: type[A], *, usage: UsageKind | None = "prompted"
               ) -> Callable[[Callable[[Context, IssuedCard, A], Awaitable[None]]],
                             Callable[[Context, IssuedCard, A], Awaitable[None]]]:
        """Presses of a typed button, on whichever card carries it (the card declares the button)."""
        def deco(fn: Callable[[Context, IssuedCard, A], Awaitable[None]]) -> Callable[[Context, IssuedCard, A], Awaitable[None]]:
            self._add(self.actions, action.prefix, ActionSpec(action, fn, usage, self.name))
            return fn
        return deco

    def conversation(self, kind: str, *, label: str = "flow.default",
                     resume: Handler | None = None) -> Callable[[Handler], Handler]:
        """Replies to the open exchange `kind` come here. A command in between puts it aside
        ("已暂停{label}，回复「继续」接着填"), and 继续 brings it back through `resume`."""
        def deco(fn: Handler) -> Handler:
            self._add(self.flows, kind, FlowSpec(kind, fn, label, resume))
            return fn
        return deco

    def complete_message(self, test: Callable[[Context], Awaitable[bool]], handler: Handler, *,
                         owns: tuple[str, ...] = ()) -> None:
        self.complete.append(CompleteMessage(test, handler, owns))

    @property
    def conversations(self) -> dict[str, Handler]:
        return {kind: spec.handler for kind, spec in self.flows.items()}

    def menu(self, key: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self._add(self.menus, key, fn)
            return fn
        return deco

    def external(self, fn: Handler) -> Handler:
        """The handler of external events (store/external_events.py); one per bot."""
        if self.external_handler is not None:
            raise ValueError(f"external events handler registered twice (router {self.name!r})")
        self.external_handler = fn
        return fn

    def file(self, fn: Handler) -> Handler:
        """The handler of images and files people send (Event kind "file"); one per bot."""
        if self.file_handler is not None:
            raise ValueError(f"file handler registered twice (router {self.name!r})")
        self.file_handler = fn
        return fn

    def _add(self, table: dict[str, Any], key: str, value: Any) -> None:
        if key in table:
            raise ValueError(f"{key!r} registered twice (router {self.name!r})")
        table[key] = value

    def _add_command(self, spec: CommandSpec) -> None:
        if spec.name in self.commands:
            # One command may be declared by several decorators only with the same handler.
            raise ValueError(f"command {spec.name!r} registered twice (router {self.name!r})")
        self.commands[spec.name] = spec
        self.table.add(spec)

    def include(self, other: "Router") -> None:
        for spec in other.commands.values():
            self._add_command(spec)
        for kind, card in other.cards.items():
            self._add(self.cards, kind, card)
        for prefix, act in other.actions.items():
            self._add(self.actions, prefix, act)
        for kind, flow in other.flows.items():
            self._add(self.flows, kind, flow)
        self.complete += other.complete
        for key, handler in other.menus.items():
            self._add(self.menus, key, handler)
        if other.fallback is not None:
            self.fallback = other.fallback
        if other.external_handler is not None:
            self.external(other.external_handler)
        if other.file_handler is not None:
            self.file(other.file_handler)

    def classify(self, text: str) -> tuple[str, str]:
        return self.table.classify(text)

    # -- dispatching ----------------------------------------------------------------------
    async def dispatch(self, ctx: Context) -> None:
        await self._dispatch(ctx)
        use = ctx.use
        if use is not None and ctx.me is not None:
            # One row, added to the handler's own transaction: the use and what it did commit together.
            record_use(ctx.session, ctx.tenant.key, ctx.me.userid, ctx.now, ctx.tenant.tz,
                       kind=use.kind, feature=use.feature, what=use.what)

    async def _dispatch(self, ctx: Context) -> None:
        ev = ctx.event
        if ev.kind == "external":  # a workflow's fact, not a person's message: nobody to answer
            if self.external_handler is not None:
                await self.external_handler(ctx)
            return
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
        elif ev.kind == "file":
            if self.file_handler is not None:
                await self.file_handler(ctx)
            else:
                ctx.reply(ctx.t("help"))
        # "enter" (the user opened the app) needs no answer: unsolicited messages annoy.

    async def _text(self, ctx: Context) -> None:
        name, rest = self.classify(ctx.event.text)
        conv = await ctx.conversation()
        open_flow = self.flows.get(conv.kind) if conv is not None else None
        if name:
            ctx.args = rest
            if open_flow is not None and name not in ENGINE_COMMANDS:
                await self.put_aside(ctx, open_flow)
            spec = self.commands[name]
            if spec.usage is not None:
                ctx.use = Use(spec.usage, spec.feature, spec.name)
            await spec.handler(ctx)
            return
        if open_flow is not None:
            for complete in self.complete:
                if open_flow.kind not in complete.owns and await complete.test(ctx):
                    await self.put_aside(ctx, open_flow)
                    await complete.handler(ctx)
                    return
            await open_flow.handler(ctx)
            return
        if self.fallback is not None:
            await self.fallback(ctx)
        else:
            ctx.reply(ctx.t("help"))

    # -- the flow engine's own commands --------------------------------------------------
    async def put_aside(self, ctx: Context, flow: FlowSpec) -> None:
        """Suspend the open flow and say so in one line, before something else is handled."""
        if await ctx.suspend():
            ctx.reply(ctx.t("flow.paused", what=ctx.t(flow.label)))

    async def resume(self, ctx: Context) -> None:
        """继续: the exchange under way asks its question again; else the newest one put aside comes back."""
        conv = await ctx.conversation()
        flow = self.flows.get(conv.kind) if conv is not None else None
        if flow is None:
            taken = await ctx.take_suspended()
            flow = self.flows.get(taken[0]) if taken else None
        if flow is None:
            ctx.reply(ctx.t("flow.nothing"))
            return
        if flow.resume is not None:
            await flow.resume(ctx)
        else:
            ctx.reply(ctx.t("flow.resumed", what=ctx.t(flow.label)))

    async def cancel(self, ctx: Context) -> None:
        """取消: the exchange under way ends (what was put aside stays, and the answer says so)."""
        conv = await ctx.conversation()
        flow = self.flows.get(conv.kind) if conv is not None else None
        await ctx.clear_conversation()
        aside = [self.flows[k] for k in await ctx.suspended() if k in self.flows]
        text = ctx.t("flow.cancelled", what=ctx.t(flow.label)) if flow else ctx.t("flow.cancelled.none")
        if aside:
            text += ctx.t("flow.still_aside", what=ctx.t(aside[0].label))
        ctx.reply(text)

    async def typed_answer(self, ctx: Context) -> None:
        """「接受」「确认」… typed instead of pressed: the newest open card of the person with that button.

        The card's own handler answers, after the same owner, state and expiry checks as a press.
        """
        key = CARD_ANSWERS.get(self.table.key_of(ctx.event.text), "")
        rows = (await ctx.session.execute(select(IssuedCard).where(
            col(IssuedCard.tenant) == ctx.tenant.key, col(IssuedCard.userid) == ctx.event.userid,
            col(IssuedCard.state) == "open").order_by(col(IssuedCard.created_at).desc(), col(IssuedCard.id).desc()))).scalars()
        for row in rows:
            if key and aware(row.expires_at) > ctx.now and key in _button_keys(row):
                ctx.event.kind, ctx.event.card_id, ctx.event.action_key = "action", row.id, key
                await self._card(ctx)
                return
        ctx.reply(ctx.t("answer.nothing"))

    def add_engine_commands(self) -> None:
        """继续, 取消 and typed card answers belong to the engine: the root router answers them for every flow."""
        # Not uses of a feature: a typed answer counts as the press it stands for.
        self._add_command(CommandSpec("continue", self.resume, command_words("resume"), usage=None))
        self._add_command(CommandSpec("cancel", self.cancel, command_words("cancel"), usage=None))
        self._add_command(CommandSpec("answer", self.typed_answer, tuple(CARD_ANSWERS), usage=None))

    async def _card(self, ctx: Context) -> None:
        ev = ctx.event
        row = (await ctx.session.execute(select(IssuedCard).where(
            col(IssuedCard.tenant) == ctx.tenant.key, col(IssuedCard.id) == ev.card_id))).scalar_one_or_none()
        if row is None:
            ctx.reply(ctx.t("card.unknown"))
        elif row.userid != ev.userid and not await _in_audience(ctx, row):
            ctx.reply(ctx.t("card.not_yours"))
        elif row.state != "open":
            ctx.reply(ctx.t("card.used"))
        elif aware(row.expires_at) <= ctx.now:
            ctx.reply(ctx.t("card.expired"))
        elif ev.action_key not in _button_keys(row):
            ctx.reply(ctx.t("card.unknown"))  # a key the card never offered: forged or stale
        elif (typed := self._typed(ev.action_key)) is not None:
            spec, action = typed
            ctx.use = _press_use(row, spec.usage, spec.feature, action.prefix)
            await spec.handler(ctx, row, action)
        elif row.kind in self.cards:
            card = self.cards[row.kind]
            ctx.use = _press_use(row, card.usage, card.feature, row.kind)
            await card.handler(ctx, row)
        else:
            ctx.reply(ctx.t("card.unknown"))

    def _typed(self, key: str) -> tuple[ActionSpec, CardAction] | None:
        prefix = key.split(":", 1)[0]
        spec = self.actions.get(prefix)
        if spec is None:
            return None
        action = spec.action.unpack(key)
        return (spec, action) if action is not None else None


def _press_use(row: IssuedCard, usage: UsageKind | None, feature: str, what: str) -> Use | None:
    """A press counts as prompted only on a card the bot pushed; on a card that answered the
    person's own message it is a step of the command already counted (unless it is an action)."""
    if usage is None or (usage == "prompted" and row.data.get(ASKED)):
        return None
    return Use(usage, feature, what)


def _button_keys(row: IssuedCard) -> set[str]:
    keys = {b["key"] for b in row.card.get("buttons", [])}
    if row.card.get("submit"):
        keys.add(row.card["submit"]["key"])
    return keys


async def _in_audience(ctx: Context, row: IssuedCard) -> bool:
    """Was this shared card actually sent to the presser? (A forwarded press is not.)"""
    if row.userid != BROADCAST:
        return False
    kind, _, day = str(row.data.get("audience", "")).partition(":")
    found = await ctx.session.execute(select(col(ScheduledSend.id)).where(
        col(ScheduledSend.tenant) == ctx.tenant.key, col(ScheduledSend.userid) == ctx.event.userid,
        col(ScheduledSend.kind) == kind, col(ScheduledSend.day) == day))
    return found.first() is not None
