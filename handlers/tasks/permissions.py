"""Who may create, report on, look at and change a task."""
from __future__ import annotations

from sqlalchemy import select

from handlers.context import Context
from handlers.tasks.lookups import project_of
from store.models import Employee, Project, Task, TaskUpdate
from store.pulse import reporting_line
from store.tasks import collaborator_list

# Roles that may start tasks (and, for a new project code, become its PMO).
CREATOR_ROLES = ("pmo", "admin", "manager")
# Roles that may change any task, besides the project's PMO and the task's creator.
EDITOR_ROLES = ("pmo", "admin")
# Roles that may look at any task: those who may change any, and HR (tasks are facts of reviews).
VIEWER_ROLES = ("pmo", "admin", "hr")


def has_any(emp: Employee | None, roles: tuple[str, ...]) -> bool:
    return emp is not None and any(emp.has_role(r) for r in roles)


async def may_report(ctx: Context, task: Task) -> bool:
    """Owner, collaborators and the project's PMO may report progress."""
    me = ctx.event.userid
    if me == task.owner_userid or me in collaborator_list(task):
        return True
    project = await project_of(ctx, task)
    return project is not None and project.pmo_userid == me


async def may_view(ctx: Context, task: Task) -> bool:
    """People on the task, the project's PMO, the task's creator, managers of its people, and pmo/admin/hr."""
    if has_any(ctx.me, VIEWER_ROLES) or await may_report(ctx, task):
        return True
    line = await reporting_line(ctx.session, ctx.tenant.key, ctx.event.userid)
    if line & {task.owner_userid, *collaborator_list(task)}:
        return True
    creator = (await ctx.session.execute(select(TaskUpdate.by_userid).where(
        TaskUpdate.tenant == ctx.tenant.key, TaskUpdate.task_id == task.id, TaskUpdate.kind == "created"))).scalars().first()
    return creator == ctx.event.userid


async def may_edit(ctx: Context, task: Task, project: Project | None) -> bool:
    if has_any(ctx.me, EDITOR_ROLES) or (project is not None and project.pmo_userid == ctx.event.userid):
        return True
    creator = (await ctx.session.execute(select(TaskUpdate.by_userid).where(
        TaskUpdate.tenant == ctx.tenant.key, TaskUpdate.task_id == task.id, TaskUpdate.kind == "created"))).scalars().first()
    return creator == ctx.event.userid
