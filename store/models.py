"""Tables. Every business row carries `tenant` and every query filters on it.

Timestamps are stored as timezone-aware UTC; calendar days and ISO weeks are
stored as strings in the tenant's own time zone (`2026-12-04`, `2026-W49`)
because that is how people and reports refer to them.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterable, Optional

from datetime import timezone

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, Text, UniqueConstraint, Index, or_
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from store.statuses import (ActionStatus, CardState, FeedbackRef, GoalStatus, Impact, LeaveKind, Polarity, Role, Stored,
                            TaskStatus, TaskUpdateKind, WitnessEventKind, WitnessState, join_roles, join_userids,
                            split_roles, split_userids)

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every database.

    SQLite has no time zone type: without this, 09:30+08:00 would be stored as
    "09:30" and read back as 09:30 UTC — eight hours off.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timestamp column; pass an aware one")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _enum(enum: type[Any], default: Any = ..., *, length: int | None = None, nullable: bool = False) -> Any:
    """A status/kind column: the enum's value in a VARCHAR, read back as the enum (store/statuses.py)."""
    return Field(default=default, sa_column=Column(Stored(enum, length), nullable=nullable))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Tenant(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=40)
    name: str
    timezone: str = "Asia/Shanghai"
    locale: str = "zh"
    platform: str = "console"
    # The go-live date: weeks ending before it count nowhere (brief, trend, pulse, export).
    # Set by the first roster import or directory sync unless configured (`live_from`).
    live_from: Optional[date] = None


class Department(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant", "path"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    path: str  # 总部/研发中心/注册部
    name: str
    platform_id: Optional[str] = None


class Employee(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant", "userid"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    userid: str = Field(max_length=64)
    name: str
    department: str = ""  # department path
    manager_userid: Optional[str] = None
    roles: str = ""  # stored as manager;hr;pmo;admin (employee is implied); read and written as Roles below
    active: bool = True
    pinyin: str = ""  # full pinyin without tones, e.g. "lina"
    initials: str = ""  # "ln"

    def has_role(self, role: Role) -> bool:
        return role == Role.EMPLOYEE or role in self.role_list

    @property
    def role_list(self) -> list[Role]:
        return split_roles(self.roles)

    def set_roles(self, roles: Iterable[str]) -> None:
        self.roles = join_roles(roles)


def holds_role(role: Role) -> Any:
    """SQL: the person's stored role list names `role` itself (not a longer role that contains it)."""
    roles = Employee.__table__.c.roles  # type: ignore[attr-defined]
    return or_(roles == role.value, roles.startswith(f"{role.value};"), roles.endswith(f";{role.value}"),
               roles.contains(f";{role.value};"))


class Goal(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant", "code"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    code: str  # O1, O1-KR2
    title: str
    parent_code: Optional[str] = None
    department: str = ""
    weight: float = 0.0
    period: str = ""  # 2026Q4
    level: int = 1
    status: GoalStatus = _enum(GoalStatus, GoalStatus.ACTIVE)
    due: Optional[date] = None  # 截止; none when the period's end is meant


class GoalAdjustment(SQLModel, table=True):
    """One change to a goal, proposed and decided: the log the calibration rate is counted from.

    The goal's current row (Goal) and its dated versions (GoalVersion) change only when a
    change is approved; a change by a goals-file import is approved by the importer itself."""

    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    goal_code: str
    by_userid: str = ""
    at: datetime = _ts(nullable=False)  # proposed (or imported) at
    field_name: str  # weight | title | due | parent_code | department | period | new | cancelled | status
    old_value: str = ""
    new_value: str = ""
    reason: str = "其他"  # the cause: 市场 | 技术 | 政策 | 其他
    note: str = ""
    # The triggering event's day (the market, technology or policy change); the rate's lead time starts here.
    event_date: Optional[date] = None
    status: str = "approved"  # proposed | approved | rejected
    approver_userid: str = ""  # who was asked to decide
    decided_by: str = ""
    decided_at: Optional[datetime] = _ts()
    decision_note: str = ""  # the reason given with 驳回
    effective_from: Optional[date] = None  # the day the approved change takes effect
    # A new goal's fields ({"title", "parent_code", "weight", "department", "period"}).
    detail: dict[str, Any] = _json()


class GoalVersion(SQLModel, table=True):
    """A goal as it stood over [valid_from, valid_to): closed weeks keep the version they were made under."""

    __table_args__ = (Index("ix_goalversion_goal", "tenant", "goal_code", "valid_from"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    goal_code: str
    valid_from: Optional[date] = None  # none: since the goal was first set up
    valid_to: Optional[date] = None  # exclusive; none: still current
    title: str
    parent_code: Optional[str] = None
    department: str = ""
    weight: float = 0.0
    due: Optional[date] = None
    level: int = 1
    status: str = "active"
    change_id: Optional[int] = None  # the GoalAdjustment that started this version


class WeeklyAction(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant", "userid", "week"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    userid: str
    week: str = Field(index=True)  # 2026-W49
    goal_code: Optional[str] = None
    thing: str
    witness_userid: str
    status: ActionStatus = _enum(ActionStatus, ActionStatus.OPEN)
    witness_state: WitnessState = _enum(WitnessState, WitnessState.INVITED)
    created_at: datetime = _ts(nullable=False)
    done_at: Optional[datetime] = _ts()
    confirmed_at: Optional[datetime] = _ts()
    nudged_at: Optional[datetime] = _ts()


class ActionEdit(SQLModel, table=True):
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    action_id: int = Field(index=True)
    by_userid: str
    at: datetime = _ts(nullable=False)
    field_name: str  # goal | thing | witness
    old_value: str = ""
    new_value: str = ""


class WitnessEvent(SQLModel, table=True):
    """Every step a witness takes (or is asked to take) on an action."""

    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    action_id: int = Field(index=True)
    witness_userid: str
    kind: WitnessEventKind = _enum(WitnessEventKind)
    at: datetime = _ts(nullable=False)


class Leave(SQLModel, table=True):
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    userid: str = Field(index=True)
    start_day: date
    end_day: date
    reason: str = ""
    kind: LeaveKind = _enum(LeaveKind, LeaveKind.LEAVE, length=8)
    created_at: datetime = _ts(nullable=False)


class Conversation(SQLModel, table=True):
    """A half-finished exchange (a draft, a pending choice), kept across restarts."""

    __table_args__ = (UniqueConstraint("tenant", "userid"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    userid: str
    kind: str
    data: dict[str, Any] = _json()
    expires_at: datetime = _ts(nullable=False)


class IssuedCard(SQLModel, table=True):
    """A card sent to one person; presses are checked against it (owner, state, expiry)."""

    __tablename__ = "issued_card"
    id: str = Field(primary_key=True, max_length=40)
    tenant: str = Field(index=True, max_length=40)
    userid: str  # the only person whose presses count
    kind: str  # which handler answers its presses
    ref_id: Optional[int] = None  # e.g. the weekly action
    data: dict[str, Any] = _json()
    card: dict[str, Any] = _json()  # the card as sent, to re-render on update
    state: CardState = _enum(CardState, CardState.OPEN)
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False)
    used_at: Optional[datetime] = _ts()
    # WeCom: the response code message/send returned for the latest copy, and that copy's task_id.
    # It lets the card be greyed out without a press (store/issued_cards.py); "" once spent.
    response_code: str = ""
    response_task_id: str = ""


class InboxEvent(SQLModel, table=True):
    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("tenant", "platform", "dedup_key"),
        Index("ix_inbox_pending", "status", "id"),
    )
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    platform: str = Field(max_length=16)
    dedup_key: str = Field(max_length=255)
    userid: str = ""
    payload: dict[str, Any] = _json()
    status: str = "pending"  # pending | processing | done | failed (a dead letter)
    received_at: datetime = _ts(nullable=False)
    claimed_until: Optional[datetime] = _ts()
    processed_at: Optional[datetime] = _ts()
    error: str = ""
    # Handler failures that were not the database's fault: after INBOX_MAX_FAILURES the event is a dead letter.
    failures: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # A pending event waits until then after a failure (backoff); NULL: due at once.
    not_before: Optional[datetime] = _ts()


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    platform: str = Field(max_length=16)
    userid: str
    payload: dict[str, Any] = _json()
    status: str = "pending"  # pending | sending | sent | dead
    attempts: int = 0
    created_at: datetime = _ts(nullable=False)
    next_attempt_at: datetime = _ts(nullable=False)
    claimed_until: Optional[datetime] = _ts()
    sent_at: Optional[datetime] = _ts()
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    platform_ref: str = ""  # what the platform returned (msgid, processQueryKey)


class JobRun(SQLModel, table=True):
    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("tenant", "job", "slot"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    job: str
    slot: str  # 2026-12-04 for daily jobs, 2026-W49 for weekly ones
    started_at: datetime = _ts(nullable=False)
    finished_at: Optional[datetime] = _ts()
    sent: int = 0


class ScheduledSend(SQLModel, table=True):
    """One row per bot-initiated send; its unique keys make each send happen once.

    (tenant, userid, kind, day) makes a reminder exactly-once across restarts and
    processes; (tenant, userid, budget_day) enforces "at most one bot-initiated
    reminder per person per day" — reports and escalations leave it NULL.
    """

    __tablename__ = "scheduled_send"
    __table_args__ = (
        UniqueConstraint("tenant", "userid", "kind", "day"),
        UniqueConstraint("tenant", "userid", "budget_day"),
    )
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    userid: str
    kind: str
    day: str
    budget_day: Optional[str] = None
    at: datetime = _ts(nullable=False)


class ConsoleMessage(SQLModel, table=True):
    """What the bot sent to a person on the local console (the console's 'platform')."""

    __tablename__ = "console_message"
    __table_args__ = (Index("ix_console_user_seq", "tenant", "userid", "seq"),)
    seq: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    userid: str
    kind: str  # text | markdown | card | file
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    card_id: str = ""
    body: dict[str, Any] = _json()
    at: datetime = _ts(nullable=False)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    actor_userid: str
    action: str  # e.g. view_pulse, export, view_brief
    subject: str = ""
    at: datetime = _ts(nullable=False)


class Feedback(SQLModel, table=True):
    """One piece of micro-feedback: who, to whom, which behaviour, what impact, what happened."""

    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    giver_userid: str
    receiver_userid: str = Field(index=True)
    tag: str  # 主动补位 …
    polarity: Polarity = _enum(Polarity)
    impact: Impact = _enum(Impact)
    event: str = Field(sa_column=Column(Text, nullable=False))
    ref_kind: Optional[FeedbackRef] = _enum(FeedbackRef, None, nullable=True)
    ref_id: Optional[int] = None
    created_at: datetime = _ts(nullable=False)


class Project(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant", "code"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    code: str
    name: str
    pmo_userid: str = ""
    created_at: datetime = _ts(nullable=False)


class Task(SQLModel, table=True):
    """An atomic cross-functional task with one owner, a due time and a deliverable."""

    __table_args__ = (UniqueConstraint("tenant", "code"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    project_id: int = Field(index=True)
    code: str  # T12
    title: str
    owner_userid: str = Field(index=True)
    collaborators: str = ""  # stored ';'-joined (join_userids); read as `collaborator_ids`
    due_at: datetime = _ts(nullable=False)
    deliverable_template: str = ""
    status: TaskStatus = _enum(TaskStatus, TaskStatus.TODO)
    block_reason: str = ""
    deliverable: str = ""
    created_at: datetime = _ts(nullable=False)
    status_updated_at: datetime = _ts(nullable=False)  # the last status update (staleness clock)
    completed_at: Optional[datetime] = _ts()

    @property
    def collaborator_ids(self) -> list[str]:
        return split_userids(self.collaborators)

    def set_collaborators(self, userids: Iterable[str]) -> None:
        self.collaborators = join_userids(userids)


class TaskUpdate(SQLModel, table=True):
    """Every status change, due-time adjustment and nudge on a task."""

    __tablename__ = "task_update"
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    task_id: int = Field(index=True)
    by_userid: str
    at: datetime = _ts(nullable=False)
    kind: TaskUpdateKind = _enum(TaskUpdateKind)
    old_value: str = ""
    new_value: str = ""
    note: str = ""


class Escalation(SQLModel, table=True):
    """One escalation step of one stale episode; unique so it is sent once across processes."""

    __table_args__ = (UniqueConstraint("tenant", "task_id", "episode", "level"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    task_id: int = Field(index=True)
    # The stale episode: epoch seconds of max(due_at, status_updated_at) when it went stale.
    episode: int = Field(sa_column=Column(BigInteger, nullable=False))
    level: int  # 1 = owner's manager + PMO, 2 = one level up, …
    to_userids: str = ""  # stored ';'-joined (join_userids); read as `recipients`
    created_at: datetime = _ts(nullable=False)
    resolved_at: Optional[datetime] = _ts()

    @property
    def recipients(self) -> list[str]:
        return split_userids(self.to_userids)


class Heartbeat(SQLModel, table=True):
    """One row per running instance, rewritten by /readyz: proof that the database takes writes."""
    instance: str = Field(primary_key=True, max_length=255)
    beat_at: datetime = _ts(nullable=False)


class MemberSend(SQLModel, table=True):
    """One message delivered to one person, for per-member limits shared by every instance (WeCom: 30/min, 1000/h)."""
    __tablename__ = "member_send"
    __table_args__ = (Index("ix_member_send_who", "tenant", "platform", "userid", "sent_at"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    platform: str = Field(max_length=16)
    userid: str = Field(max_length=255)
    sent_at: datetime = _ts(nullable=False)


class SentBody(SQLModel, table=True):
    """The digest of a message body handed to the platform, for its duplicate check, shared by every instance.

    `item` is the outbox item (row id, or a fan-out recipient's stable negative id) and `step`
    which of its calls (main, caption, fallback): a retry of the same item and step finds its own
    digest and sends the same bytes; another item with an equal body sees a foreign digest.
    """
    __tablename__ = "sent_body"
    __table_args__ = (Index("ix_sent_body_digest", "tenant", "digest"), Index("ix_sent_body_at", "at"))
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    item: int = Field(sa_column=Column(BigInteger, nullable=False))
    step: str = Field(max_length=16)
    digest: str = Field(max_length=64)
    at: datetime = _ts(nullable=False)


class DeliverableCheck(SQLModel, table=True):
    """One reading of a task's deliverable file against its template's field rules, and its light."""

    __tablename__ = "deliverable_check"
    __table_args__ = (Index("ix_deliverable_check_task", "tenant", "task_id", "created_at"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    task_id: int
    by_userid: str = ""  # who sent the file
    created_at: datetime = _ts(nullable=False)
    source: str = ""  # chat_image | chat_file | upload
    filename: str = ""
    template: str = ""  # the template whose rules it was read against
    method: str = ""  # how the figures were read: locust, jmeter, k6, xlsx, pdf, docx, ocr …
    problem: str = ""  # too_big | too_many_pages | too_many_pixels | unreadable | unsupported | timeout
    light: str = ""  # green | yellow | red
    reason: str = ""  # 缺项 | 待确认 | 无法读取 | the threshold missed
    fields: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    override_by: str = ""  # the PMO who let a red task close
    override_at: Optional[datetime] = _ts()
    override_reason: str = ""  # what the PMO gave as the reason (放行 T3 客户已书面确认)


class DeliverableIntake(SQLModel, table=True):
    """An image or file a person sent in chat, on its way to a deliverable check.

    Stored by the handler of the chat message (in the inbox's transaction), then fetched from the
    platform and read outside it by the intake worker; the person's message event is kept so the
    answer goes back to the same conversation. status: choose (waiting for the person to say which
    task) · pending · reading · read (its outcome
    waits in the inbox, behind the person's earlier messages) · done · failed.
    """

    __tablename__ = "deliverable_intake"
    __table_args__ = (Index("ix_deliverable_intake_status", "status", "claimed_until"),
                      Index("ix_deliverable_intake_person", "tenant", "userid", "created_at"))
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    userid: str = Field(max_length=255)
    platform: str = Field(max_length=20)
    task_id: Optional[int] = None
    file_type: str = ""  # image | file
    filename: str = ""
    event: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    created_at: datetime = _ts(nullable=False)
    claimed_until: Optional[datetime] = _ts()
    check_id: Optional[int] = None
    error: str = ""
