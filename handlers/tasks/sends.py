"""What makes a task card go once: the claim kinds of the scheduled sends, and the due-card day."""
from __future__ import annotations

from datetime import date

from handlers.context import Outgoing
from handlers.tasks.formatting import local
from store.models import Task


def assign_send_kind(task_id: int) -> str:
    """ScheduledSend kind that makes the assignment card go once per owner."""
    return f"task_assign:{task_id}"


def due_send_kind(task_id: int) -> str:
    """ScheduledSend kind (day = the due day) that makes the due-day card go once."""
    return f"task_due:{task_id}"


def due_card_day(ctx: Outgoing, task: Task, today: date, next_working: date) -> bool:
    """Whether `today` is the day to remind of the due time: the last working day on or before it."""
    due_day = local(ctx, task.due_at).date()
    return today <= due_day < next_working
