"""Who may create, report on, look at and change a task."""
from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from handlers.context import Context
from handlers.tasks.lookups import project_of
from store.models import Employee, Project, Task, TaskUpdate
from store.pulse import reporting_line
from store.statuses import Role, TaskUpdateKind

# Roles that may start tasks (and, for a new project code, become its PMO).
CREATOR_ROLES = (Role.PMO, Role.ADMIN, Role.MANAGER)
# Roles that may change any task, besides the project's PMO and the task's creator.
EDITOR_ROLES = (Role.PMO, Role.ADMIN)
# Roles that may look at any task: those who may change any, and HR (tasks are facts of reviews).
VIEWER_ROLES = (Role.PMO, Role.ADMIN, Role.HR)


def has_any(emp: Employee | None, roles: tuple[Role, ...]) -> bool:
    return emp is not None and any(emp.has_role(r) for r in roles)


async def creator_of(ctx: Context, task: Task) -> str | None:
    """The person its `created` update names (the importer's id, or empty, for an imported task)."""
    return (await ctx.session.execute(select(col(TaskUpdate.by_userid)).where(
        col(TaskUpdate.tenant) == ctx.tenant.key, col(TaskUpdate.task_id) == task.id,
        col(TaskUpdate.kind) == TaskUpdateKind.CREATED))).scalars().first()


async def may_report(ctx: Context, task: Task) -> bool:
    """Owner, collaborators and the project's PMO may report progress."""
    me = ctx.event.userid
    if me == task.owner_userid or me in task.collaborator_ids:
        return True
    project = await project_of(ctx, task)
    return project is not None and project.pmo_userid == me


async def may_view(ctx: Context, task: Task) -> bool:
    """People on the task, the project's PMO, the task's creator, managers of its people, and pmo/admin/hr."""
    if has_any(ctx.me, VIEWER_ROLES) or await may_report(ctx, task):
        return True
    line = await reporting_line(ctx.session, ctx.tenant.key, ctx.event.userid)
    if line & {task.owner_userid, *task.collaborator_ids}:
        return True
    return await creator_of(ctx, task) == ctx.event.userid


async def may_edit(ctx: Context, task: Task, project: Project | None) -> bool:
    if has_any(ctx.me, EDITOR_ROLES) or (project is not None and project.pmo_userid == ctx.event.userid):
        return True
    return await creator_of(ctx, task) == ctx.event.userid
