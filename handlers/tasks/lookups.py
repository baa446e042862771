"""A task's project, and a task by the id a card or a question carries."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from handlers.context import Outgoing
from store.models import Project, Task


async def project_of(ctx: Outgoing, task: Task) -> Project | None:
    return (await ctx.session.execute(select(Project).where(
        col(Project.tenant) == ctx.tenant.key, col(Project.id) == task.project_id))).scalar_one_or_none()


async def task_by_id(ctx: Outgoing, task_id: Any) -> Task | None:
    if not isinstance(task_id, int):
        return None
    return (await ctx.session.execute(select(Task).where(
        col(Task.tenant) == ctx.tenant.key, col(Task.id) == task_id))).scalar_one_or_none()
