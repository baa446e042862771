"""The one ingestion contract for facts from the company's workflows (自动留痕).

Every source — WeCom 审批 callbacks, DingTalk OA events over Stream, signed webhooks from
low-code tools, CSV/XLSX drops — becomes one `external_event` row, unique on
(tenant, source, external_id), and one inbox row in the same transaction: a redelivery
is refused by the database itself, and the fact is stored before the source is answered.
The inbox then hands it to handlers/trace.py like any chat event (per-person order,
retries, dead letters); the mapping rules decide its effect there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, UniqueConstraint, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from bot.core.events import Event
from store.db import Database, try_insert
from store.models import BigId, Employee, InboxEvent, UTCDateTime
from store.statuses import InboxStatus

# The inbox's platform for external events: their dedup keys live apart from chat messages'.
INBOX_PLATFORM = "trace"

# What became of an event once the rules saw it.
PENDING, APPLIED, UNMATCHED, IGNORED = "pending", "applied", "unmatched", "ignored"


class ExternalEvent(SQLModel, table=True):
    __tablename__ = "external_event"
    __table_args__ = (
        UniqueConstraint("tenant", "source", "external_id"),
        Index("ix_external_event_state", "tenant", "state"),
    )
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    source: str = Field(max_length=64)  # wecom_approval, dingtalk_oa, a webhook or file source name
    external_id: str = Field(max_length=255)
    type: str = Field(max_length=64)  # approval | approval_task | whatever a webhook/file names
    person: str = Field(default="", max_length=255)  # the source's id (or name) of the person
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # code (template / process code), status, title, link, fields (form label → value), approvers …
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    state: str = Field(default=PENDING, max_length=16)
    rule: str = Field(default="", max_length=64)  # the rule that applied (or why none did)
    userid: str = Field(default="", max_length=64)  # the matched employee


@dataclass
class Incoming:
    """One fact as a source reports it, before it is stored."""

    source: str
    external_id: str
    type: str
    person: str
    occurred_at: datetime
    code: str = ""
    status: str = ""
    title: str = ""
    link: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "status": self.status, "title": self.title, "link": self.link,
                "fields": self.fields, **self.extra}


def dedup_key(source: str, external_id: str) -> str:
    return f"{source}:{external_id}"[:255]


async def ingest(db: Database, tenant: str, item: Incoming, now: datetime) -> bool:
    """Store the event and queue it for the rules, in one transaction; False if it was stored before."""
    async with db.transaction() as s:
        return await ingest_in(s, tenant, item, now)


async def ingest_in(s: AsyncSession, tenant: str, item: Incoming, now: datetime) -> bool:
    if not item.source or not item.external_id:
        raise ValueError("an external event needs a source and an id")
    fresh = await try_insert(s, ExternalEvent, dict(
        tenant=tenant, source=item.source[:64], external_id=item.external_id[:255], type=item.type[:64],
        person=item.person[:255], occurred_at=item.occurred_at.astimezone(timezone.utc), payload=item.payload(),
        received_at=now.astimezone(timezone.utc), state=PENDING, rule="", userid=""))
    if not fresh:
        return False
    row_id = (await s.execute(select(ExternalEvent.id).where(
        ExternalEvent.tenant == tenant, ExternalEvent.source == item.source[:64],
        ExternalEvent.external_id == item.external_id[:255]))).scalar_one()
    key = dedup_key(item.source, item.external_id)
    # The inbox orders events by person: an event of someone on the roster queues behind (and ahead
    # of) their own chat messages, so a contract's tracking row and a payment they type stay in order.
    who = await inbox_person(s, tenant, item.person)
    ev = Event(tenant=tenant, platform=INBOX_PLATFORM, userid=who, kind="external",
               dedup_key=key, values={"event_id": row_id})
    await try_insert(s, InboxEvent, dict(tenant=tenant, platform=INBOX_PLATFORM, dedup_key=key,
                                         userid=ev.userid, payload=ev.to_dict(), status=InboxStatus.PENDING, received_at=now))
    return True


async def inbox_person(s: AsyncSession, tenant: str, person: str) -> str:
    """The roster's userid of a source's person (its id in any case, or a name only one person has);
    the source's own string when the roster does not know them (the rules keep it unmatched)."""
    ref = person.strip()
    if not ref:
        return ""
    found = (await s.execute(select(Employee.userid).where(
        Employee.tenant == tenant, func.lower(Employee.userid) == ref.lower()).limit(1))).scalar_one_or_none()
    if found is None:
        named = list((await s.execute(select(Employee.userid).where(
            Employee.tenant == tenant, Employee.active.is_(True), Employee.name == ref).limit(2))).scalars())
        found = named[0] if len(named) == 1 else None
    return str(found if found is not None else ref)[:255]


async def get(s: AsyncSession, tenant: str, event_id: int) -> ExternalEvent | None:
    return (await s.execute(select(ExternalEvent).where(
        ExternalEvent.tenant == tenant, ExternalEvent.id == event_id))).scalar_one_or_none()


async def mark(s: AsyncSession, row: ExternalEvent, state: str, rule: str = "", userid: str = "") -> None:
    await s.execute(update(ExternalEvent).where(ExternalEvent.id == row.id).values(
        state=state, rule=rule[:64], userid=userid[:64]))


async def unmatched(db: Database, tenant: str, limit: int = 200) -> list[ExternalEvent]:
    """Events whose person nobody in the roster is: kept, not dropped, until the roster knows them."""
    async with db.session() as s:
        return list((await s.execute(select(ExternalEvent).where(
            ExternalEvent.tenant == tenant, ExternalEvent.state == UNMATCHED)
            .order_by(ExternalEvent.occurred_at, ExternalEvent.id).limit(limit))).scalars())


async def count(db: Database, tenant: str, source: str | None = None) -> int:
    async with db.session() as s:
        q = select(func.count()).select_from(ExternalEvent).where(ExternalEvent.tenant == tenant)
        if source is not None:
            q = q.where(ExternalEvent.source == source)
        return int((await s.execute(q)).scalar_one())


async def by_ids(s: AsyncSession, tenant: str, ids: list[int]) -> list[ExternalEvent]:
    if not ids:
        return []
    return list((await s.execute(select(ExternalEvent).where(
        ExternalEvent.tenant == tenant, ExternalEvent.id.in_(ids)).order_by(ExternalEvent.id))).scalars())


async def ids_like(db: Database, tenant: str, source: str, prefix: str) -> list[str]:
    """The stored ids of one source that start with `prefix` (one approval's status changes)."""
    async with db.session() as s:
        return [str(x) for x in (await s.execute(select(ExternalEvent.external_id).where(
            ExternalEvent.tenant == tenant, ExternalEvent.source == source,
            ExternalEvent.external_id.startswith(prefix, autoescape=True)))).scalars()]
