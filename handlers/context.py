"""What handlers and jobs get: a transaction, the tenant, "now", and ways to send.

`Outgoing` is what a clock-driven job needs (send, issue and close cards); `Context` adds
what a conversation has: the inbound event, the person who sent it and their half-finished
exchange. Everything either sends goes into the outbox in the same transaction as its
business change, so a crash either keeps both or neither.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Protocol

from sqlalchemy import delete, select
from sqlmodel import col
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import TenantConfig
from bot.core.events import Event
from cards import texts
from cards.model import Card, Message
from bot.core.timeutil import aware
from store import outbox
from store.db import try_insert
from store.models import Conversation, Employee, IssuedCard
from store.statuses import CardState


BROADCAST = "*"  # IssuedCard.userid of a card shared by many recipients
# A person's Conversation row holds the exchange under way (kind, data) and, under SUSPENDED,
# the flows they put aside with a command in between; IDLE: nothing under way, only flows aside.
SUSPENDED = "_suspended"
IDLE = "idle"
MAX_SUSPENDED = 3
# IssuedCard.data key of a card shown in answer to its recipient's own message: pressing it is a
# step of what they started, not a press on something the bot pushed (store/usage.py counts both).
ASKED = "_asked"


@dataclass(frozen=True)
class Use:
    """How this turn counts as a use of a feature (store/usage.py): pull, prompted or action."""

    kind: str
    feature: str
    what: str = ""


def _aside(kind: str, data: dict[str, Any], *, comes_back: bool) -> list[dict[str, Any]]:
    return [{"kind": kind, "data": {k: v for k, v in data.items() if k != SUSPENDED}, "comes_back": comes_back}]


class Named(Protocol):
    """A person as the roster knows them (an Employee, a matched Person)."""

    @property
    def userid(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def department(self) -> str: ...


_UNREAD: Any = object()  # Context._conversation before the row was looked up


def new_card_id() -> str:
    # WeCom task_id allows [0-9a-zA-Z_-@] up to 128 bytes; DingTalk outTrackId is free-form.
    return "c" + secrets.token_hex(10)


@dataclass
class Outgoing:
    """A transaction of one tenant at one moment, with the ways to send from it."""

    session: AsyncSession
    tenant: TenantConfig
    now: datetime
    sent: list[tuple[str, Message]] = field(default_factory=list)
    data_dir: str = "var"  # where generated documents (briefs, exports) are written
    # People already read in this transaction, by userid: one reply names the same colleague
    # three or four times (summary, fields, invitation, feedback check). Only found rows are
    # kept, and they are the session's own objects, so a change made meanwhile is seen.
    _people: dict[str, Employee] = field(default_factory=dict, repr=False)

    @property
    def locale(self) -> str:
        return self.tenant.locale

    def t(self, key: str, **kw: Any) -> str:
        return texts.t(self.locale, key, **kw)

    # -- sending -----------------------------------------------------------
    def send(self, userid: str, message: Message | str) -> None:
        if isinstance(message, str):
            message = Message(kind="text", text=message)
        outbox.enqueue(self.session, tenant=self.tenant.key, platform=self.tenant.platform,
                       userid=userid, message=message)
        self.sent.append((userid, message))

    async def issue_card(self, userid: str, kind: str, card: Card, *, ref_id: int | None = None,
                         data: dict[str, Any] | None = None, ttl_hours: int = 72) -> Card:
        """Send a card whose presses come back to the handler registered for `kind`."""
        card.id = new_card_id()
        self.session.add(IssuedCard(
            id=card.id, tenant=self.tenant.key, userid=userid, kind=kind, ref_id=ref_id,
            data=data or {}, card=card.to_dict(), state=CardState.OPEN, created_at=self.now,
            # WeCom response codes live 72 h; a card answered later is refused clearly.
            expires_at=self.now + timedelta(hours=ttl_hours),
        ))
        self.send(userid, Message(kind="card", card=card))
        return card

    async def issue_broadcast_card(self, userids: list[str], kind: str, card: Card, *, audience: str,
                                   ttl_hours: int = 72) -> Card:
        """Send one card to many people (presses are accepted from members of `audience`).

        `audience` is "<scheduled_send kind>:<day>": a press counts only from someone
        that scheduled send went to. The card id is derived from tenant and audience,
        so processes issuing the same broadcast agree on it.
        """
        card.id = "b" + hashlib.sha1(f"{self.tenant.key}|{audience}".encode()).hexdigest()[:24]
        card.broadcast = True
        await try_insert(self.session, IssuedCard, dict(
            id=card.id, tenant=self.tenant.key, userid=BROADCAST, kind=kind, ref_id=None,
            data={"audience": audience}, card=card.to_dict(), state=CardState.OPEN, created_at=self.now,
            expires_at=self.now + timedelta(hours=ttl_hours)))
        message = Message(kind="card", card=card)
        outbox.enqueue_many(self.session, tenant=self.tenant.key, platform=self.tenant.platform,
                            userids=userids, message=message)
        self.sent.append((outbox.EVERYONE, message))
        return card

    def _reply_hint(self, row: IssuedCard) -> dict[str, Any]:
        """What the platform needs to update a card in place after a press (none without one)."""
        return {}

    async def close_card(self, row: IssuedCard, result: str) -> None:
        """Mark a card answered and show `result` in place of its buttons."""
        row.state = CardState.USED
        row.used_at = self.now
        card = Card.from_dict(row.card)
        card.result = result
        card.id = row.id
        row.card = card.to_dict()
        self.session.add(row)
        self.send(row.userid, Message(kind="card_update", card=card, hint=self._reply_hint(row)))

    async def expire_cards(self, *, kind: str, ref_id: int, result: str) -> None:
        """Close still-open cards of one record (e.g. the old witness's invitation)."""
        rows = (await self.session.execute(select(IssuedCard).where(
            col(IssuedCard.tenant) == self.tenant.key, col(IssuedCard.kind) == kind,
            col(IssuedCard.ref_id) == ref_id, col(IssuedCard.state) == "open", col(IssuedCard.userid) != BROADCAST))).scalars()
        for row in list(rows):
            await self.close_card(row, result)

    # -- people ------------------------------------------------------------
    async def employee(self, userid: str) -> Employee | None:
        known = self._people.get(userid)
        if known is not None:
            return known
        found = (await self.session.execute(select(Employee).where(
            col(Employee.tenant) == self.tenant.key, col(Employee.userid) == userid))).scalar_one_or_none()
        if found is not None:
            self._people[userid] = found
        return found

    async def name_of(self, userid: str | None) -> str:
        """The person's name as people see it; their user id when they are not on the roster."""
        if not userid:
            return ""
        emp = await self.employee(userid)
        return emp.name if emp else userid

    def person_label(self, person: Named) -> str:
        """李娜（注册部） / 李娜 (注册部): a name told apart from a namesake by the last part of the department."""
        return self.t("person.label", name=person.name, where=person.department.split("/")[-1] or person.userid)

    def people_labels(self, people: Iterable[Named]) -> str:
        """李娜（注册部）、李纳（质量部）: the choice a name matched, in one line."""
        return self.t("list.sep").join(self.person_label(p) for p in people)

    async def label_of(self, userid: str) -> str:
        """`person_label` of a user id; the bare id when they are not on the roster."""
        emp = await self.employee(userid)
        return self.person_label(emp) if emp else userid


@dataclass(kw_only=True)
class Context(Outgoing):
    """A conversation turn: the outgoing part plus the event, its sender and their open exchange."""

    event: Event
    me: Employee | None = None
    # The text after the command's word when the event is a command (`简报 @王强` → '@王强').
    args: str = ""
    # Set by the router from what the feature declared; a handler refines it with `used`.
    use: Use | None = None
    # The sender's Conversation row once read (None: they have none): the router, the flow and
    # its end each ask for it, and only this class writes it, so it is read once per turn.
    _conversation: Any = field(default=_UNREAD, repr=False)

    def __post_init__(self) -> None:
        if self.me is not None:
            self._people[self.me.userid] = self.me

    def reply(self, message: Message | str) -> None:
        self.send(self.event.userid, message)

    def used(self, kind: str, feature: str = "") -> None:
        """This turn completed something of `feature` (default: the one whose entry it came in by),
        e.g. feedback given or an escalation resolved: it counts as that kind, once."""
        old = self.use
        self.use = Use(kind, feature or (old.feature if old else ""), old.what if old else "")

    async def issue_card(self, userid: str, kind: str, card: Card, *, ref_id: int | None = None,
                         data: dict[str, Any] | None = None, ttl_hours: int = 72) -> Card:
        if userid == self.event.userid:
            data = {**(data or {}), ASKED: True}
        return await super().issue_card(userid, kind, card, ref_id=ref_id, data=data, ttl_hours=ttl_hours)

    def _reply_hint(self, row: IssuedCard) -> dict[str, Any]:
        # Only the card that was pressed can be answered with the press's response code.
        return dict(self.event.hint) if self.event.card_id == row.id else {}

    async def close_card(self, row: IssuedCard, result: str) -> None:
        if row.userid == BROADCAST:
            # A shared card stays open for the others; only the presser's copy changes.
            card = Card.from_dict(row.card)
            card.result, card.id = result, row.id
            self.send(self.event.userid, Message(kind="card_update", card=card, hint=dict(self.event.hint)))
            return
        await super().close_card(row, result)

    # -- conversation state ------------------------------------------------
    def known_conversation(self, row: Conversation | None) -> None:
        """The sender's Conversation row (or None), read together with the sender by the dispatcher."""
        self._conversation = row

    async def conversation(self) -> Conversation | None:
        row: Conversation | None = self._conversation
        if row is _UNREAD:
            row = (await self.session.execute(select(Conversation).where(
                col(Conversation.tenant) == self.tenant.key,
                col(Conversation.userid) == self.event.userid))).scalar_one_or_none()
        if row is not None and aware(row.expires_at) <= self.now:
            await self.session.delete(row)
            # Deleted now, not at commit: a new row for the same person may follow in this turn.
            await self.session.flush()
            row = None
        self._conversation = row
        return row

    async def set_conversation(self, kind: str, data: dict[str, Any], *, userid: str = "") -> None:
        """Remember a half-finished exchange with `userid` (default: the sender).

        A different exchange under way is not lost: it waits underneath and comes back by itself
        when this one is over (a card's follow-up question in the middle of a weekly action).
        What the person put aside with a command stays aside until 继续."""
        userid = userid or self.event.userid
        mine = userid == self.event.userid
        if mine and self._conversation is not _UNREAD:
            row = self._conversation
        else:
            row = (await self.session.execute(select(Conversation).where(
                col(Conversation.tenant) == self.tenant.key, col(Conversation.userid) == userid))).scalar_one_or_none()
        expires = self.now + timedelta(hours=self.tenant.draft_ttl_hours)
        data = {k: v for k, v in data.items() if k != SUSPENDED}
        if row is None:
            row = Conversation(tenant=self.tenant.key, userid=userid, kind=kind, data=data, expires_at=expires)
        else:
            live = aware(row.expires_at) > self.now
            aside = list(row.data.get(SUSPENDED) or []) if live else []
            if live and row.kind not in (IDLE, kind):
                aside = _aside(row.kind, row.data, comes_back=True) + aside
            row.kind, row.data, row.expires_at = kind, {**data, **({SUSPENDED: aside[:MAX_SUSPENDED]} if aside else {})}, expires
        self.session.add(row)
        if mine:
            self._conversation = row

    async def clear_conversation(self) -> None:
        """The exchange under way is over. One it interrupted comes back; one put aside with a
        command stays aside until 继续 (or its expiry)."""
        row = await self.conversation()
        if row is None:
            return
        aside = list(row.data.get(SUSPENDED) or [])
        if aside and aside[0].get("comes_back"):
            top, rest = aside[0], aside[1:]
            row.kind, row.data = str(top["kind"]), {**dict(top.get("data") or {}), **({SUSPENDED: rest} if rest else {})}
            self.session.add(row)
        elif aside:
            row.kind, row.data = IDLE, {SUSPENDED: aside}
            self.session.add(row)
        else:
            await self.session.execute(delete(Conversation).where(
                col(Conversation.tenant) == self.tenant.key, col(Conversation.userid) == self.event.userid))
            self._conversation = None

    # -- flows put aside ---------------------------------------------------------------------
    async def suspend(self) -> str | None:
        """Put the exchange under way aside (newest first, at most MAX_SUSPENDED); returns its kind."""
        row = await self.conversation()
        if row is None or row.kind == IDLE:
            return None
        aside = _aside(row.kind, row.data, comes_back=False)
        aside += [a for a in (row.data.get(SUSPENDED) or []) if a.get("kind") != row.kind]
        row.kind, row.data = IDLE, {SUSPENDED: aside[:MAX_SUSPENDED]}
        row.expires_at = self.now + timedelta(hours=self.tenant.draft_ttl_hours)
        self.session.add(row)
        return str(aside[0]["kind"])

    async def suspended(self) -> list[str]:
        """Kinds of the flows put aside, newest first."""
        row = await self.conversation()
        return [str(a["kind"]) for a in (row.data.get(SUSPENDED) or [])] if row is not None else []

    async def take_suspended(self) -> tuple[str, dict[str, Any]] | None:
        """Bring back the newest flow put aside as the exchange under way."""
        row = await self.conversation()
        aside = list(row.data.get(SUSPENDED) or []) if row is not None else []
        if row is None or not aside:
            return None
        top, rest = aside[0], aside[1:]
        row.kind = str(top["kind"])
        row.data = {**dict(top.get("data") or {}), **({SUSPENDED: rest} if rest else {})}
        row.expires_at = self.now + timedelta(hours=self.tenant.draft_ttl_hours)
        self.session.add(row)
        return row.kind, {k: v for k, v in row.data.items() if k != SUSPENDED}


