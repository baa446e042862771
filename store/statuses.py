"""The statuses and kinds the tables store: stable English values, labels in the texts.

A value is what the database holds and what code compares; a label is what a person reads,
in the tenant's locale (`TaskStatus.DONE.label("zh")` → 已完成). Words people *type* for a
status (完成, 卡住了, done) are understood by the feature that parses them and mapped to a value
here; they are never stored.

`Stored(Enum)` is the column type: it refuses a value outside the enum on write (a label
written by mistake fails loudly instead of becoming a status nobody matches) and reads values
back as enum members. On the database it is a plain VARCHAR, as before.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Any, Generic, Iterable, Self, TypeVar

from sqlalchemy.types import TypeDecorator
from sqlmodel import AutoString

from cards.texts import register, t

E = TypeVar("E", bound=StrEnum)


class Stored(TypeDecorator[E], Generic[E]):
    """A StrEnum kept in a VARCHAR column."""

    impl = AutoString
    cache_ok = True

    def __init__(self, enum: type[E], length: int | None = None) -> None:
        super().__init__(length=length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return str(self.enum(value))  # ValueError for anything that is not one of its values

    def process_result_value(self, value: Any, dialect: Any) -> E | None:
        return None if value is None else self.enum(value)


class Labelled(StrEnum):
    """A stored value with a label per locale under the text key `<prefix>.<value>`."""

    @classmethod
    def text_prefix(cls) -> str:
        raise NotImplementedError

    def label(self, locale: str) -> str:
        return t(locale, f"{self.text_prefix()}.{self.value}")

    @classmethod
    def from_label(cls, word: str) -> Self | None:
        """The member whose value or label (in any locale) `word` is; None when there is none.

        For values that arrive as labels: a tenant's configuration file, a button of a card
        issued before the values were stored in English."""
        w = word.strip().casefold()
        for member in cls:
            if w == member.value or w in {member.label(loc).casefold() for loc in ("zh", "en")}:
                return member
        return None


class TaskStatus(Labelled):
    TODO = "todo"
    DOING = "doing"
    BLOCKED = "blocked"
    DONE = "done"

    @classmethod
    def text_prefix(cls) -> str:
        return "task.status"

    @property
    def is_open(self) -> bool:
        return self is not TaskStatus.DONE


OPEN_TASK_STATUSES = (TaskStatus.TODO, TaskStatus.DOING, TaskStatus.BLOCKED)


class TaskUpdateKind(StrEnum):
    CREATED = "created"
    STATUS = "status"  # old_value/new_value hold TaskStatus values
    DUE = "due"
    NUDGE = "nudge"
    EDIT = "edit"  # note holds the TaskField edited


class TaskOrigin(StrEnum):
    """Where a task or a change of it came from: the note of its `created` update (never shown: the
    history tells it by who created it) and of a due change an import made (shown in its words).
    Rows written before these values hold 对话创建 / 导入 / 导入调整."""

    CHAT = "chat"
    IMPORT = "import"


class TaskField(Labelled):
    """Which field of a task an `edit` update changed (the update's note)."""

    TITLE = "title"
    OWNER = "owner"
    COLLABORATORS = "collaborators"
    DELIVERABLE = "deliverable"

    @classmethod
    def text_prefix(cls) -> str:
        return "task.field"


class ActionStatus(StrEnum):
    """A weekly action: open → done → confirmed; open → not_done (the person says so)."""

    OPEN = "open"
    DONE = "done"
    CONFIRMED = "confirmed"
    NOT_DONE = "not_done"


class WitnessState(StrEnum):
    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class WitnessEventKind(StrEnum):
    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ASKED = "asked"
    CONFIRMED = "confirmed"
    DENIED = "denied"
    NUDGED = "nudged"


class LeaveKind(StrEnum):
    LEAVE = "leave"  # 请假
    SKIP = "skip"  # 本周跳过


class CardState(StrEnum):
    OPEN = "open"
    USED = "used"
    EXPIRED = "expired"


class GoalStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class FeedbackRef(StrEnum):
    """What a piece of feedback is about, when it came from a card's 反馈 button."""

    ACTION = "action"
    TASK = "task"


class Polarity(Labelled):
    """Whether a piece of feedback (and its tag) recognises or asks for improvement."""

    PRAISE = "praise"
    IMPROVE = "improve"

    @classmethod
    def text_prefix(cls) -> str:
        return "fb.polarity"


class Impact(Labelled):
    """How far a piece of feedback's event reached."""

    CUSTOMER = "customer"
    TEAM = "team"
    PROCESS = "process"

    @classmethod
    def text_prefix(cls) -> str:
        return "fb.impact"


class TaskOutcome(Labelled):
    """How a task came out by a moment: delivered on time, delivered late, late and not delivered, not due."""

    ON_TIME = "on_time"
    LATE = "late"
    OVERDUE = "overdue"
    NOT_DUE = "not_due"

    @classmethod
    def text_prefix(cls) -> str:
        return "task.outcome"


class Role(StrEnum):
    """What a person may do beyond their own records. Everyone is an employee; that role is never stored."""

    EMPLOYEE = "employee"
    MANAGER = "manager"
    HR = "hr"
    PMO = "pmo"
    ADMIN = "admin"


GRANTED_ROLES = (Role.MANAGER, Role.HR, Role.PMO, Role.ADMIN)  # in the order a role list is stored


def join_roles(roles: Iterable[str]) -> str:
    """The stored form of a set of roles (manager;hr): known roles only, in one order, employee left out."""
    have = set(roles)
    return ";".join(r for r in GRANTED_ROLES if r in have)


def split_roles(stored: str) -> list[Role]:
    """The roles a stored role list names; anything else in it is ignored."""
    have = set(stored.split(";"))
    return [r for r in GRANTED_ROLES if r in have]


def join_userids(userids: Iterable[str]) -> str:
    """The stored form of a list of people (a task's collaborators, an escalation's recipients): user ids
    joined by ';', in their order, empty ones left out. `split_userids` reads it back."""
    return ";".join(u for u in userids if u)


def split_userids(stored: str) -> list[str]:
    return [u for u in stored.split(";") if u]


class InboxStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"  # a dead letter


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


TEXTS = register({
    "task.status.todo": {"zh": "待开始", "en": "To do"},
    "task.status.doing": {"zh": "进行中", "en": "In progress"},
    "task.status.blocked": {"zh": "阻塞", "en": "Blocked"},
    "task.status.done": {"zh": "已完成", "en": "Done"},
    "fb.polarity.praise": {"zh": "认可", "en": "Recognition"},
    "fb.polarity.improve": {"zh": "改进", "en": "Improvement"},
    "fb.impact.customer": {"zh": "客户级", "en": "Customer"},
    "fb.impact.team": {"zh": "团队级", "en": "Team"},
    "fb.impact.process": {"zh": "流程级", "en": "Process"},
    "task.outcome.on_time": {"zh": "按时交付", "en": "On time"},
    "task.outcome.late": {"zh": "逾期交付", "en": "Delivered late"},
    "task.outcome.overdue": {"zh": "逾期未交付", "en": "Overdue"},
    "task.outcome.not_due": {"zh": "未到期", "en": "Not due"},
})
