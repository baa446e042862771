"""[tenants.tasks]: when stale tasks escalate and when owners are reminded."""
from __future__ import annotations

from pydantic import Field

from bot.core.config import Section


class TaskSettings(Section, name="tasks", legacy={
        "escalate_after_hours": "escalate_after_hours", "escalate_climb_hours": "escalate_climb_hours"}):
    """[tenants.tasks]"""

    escalate_after_hours: float = Field(2.0, gt=0)  # past due and no status update for this long → escalate
    escalate_climb_hours: float = Field(4.0, gt=0)  # still stale this much later → one level up
    # The owner is reminded this many working hours before the due time (0: no early reminder),
    # and again when it comes.
    remind_before_working_hours: float = Field(2.0, ge=0)
    remind_at_due: bool = True
