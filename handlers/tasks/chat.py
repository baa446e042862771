"""The 任务 and 进度 commands: create, change, show and list tasks, and report progress."""
from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from bot.core.calendar import WorkCalendar
from bot.core.timeutil import aware, utc
from handlers import tasks_texts  # noqa: F401  (the feature's texts join the catalogue)
from handlers.context import Context
from handlers.deliverables import view as deliverable_view
from handlers.people import Directory, tenant_directory
from handlers.router import Router
from handlers.tasks.cards import send_owner_card, show_task
from handlers.tasks.formatting import fmt_time, local, names, status_label
from handlers.tasks.grammar import TRIM, TaskLine, parse_progress, parse_task_line
from handlers.tasks.lookups import project_of
from handlers.tasks.permissions import CREATOR_ROLES, has_any, may_edit, may_report, may_view
from handlers.tasks.updates import apply_status, change_due, notify_assignment
from store.models import Project, Task, TaskUpdate
from store.statuses import TaskField, TaskOrigin, TaskStatus, TaskUpdateKind, join_userids
from store.tasks import OPEN_STATUSES, find_project, find_task, normalize_task_code

router = Router("tasks")


async def _directory(ctx: Context) -> Directory:
    return await tenant_directory(ctx.session, ctx.tenant.key)


async def _resolve_people(ctx: Context, tokens: list[str], problems: list[str]) -> list[str]:
    """Userids for @-tokens (platform-resolved mentions are userids already)."""
    if ctx.event.mentions:
        return list(dict.fromkeys(ctx.event.mentions))
    people = await _directory(ctx)
    out: list[str] = []
    for token in tokens:
        m = people.resolve(token)
        if m.status == "one" and m.person is not None:
            if m.person.userid not in out:
                out.append(m.person.userid)
        elif m.status == "choose":
            problems.append(ctx.t("task.person.many", token=token, options=ctx.people_labels(m.candidates)))
        else:
            problems.append(ctx.t("task.person.none", token=token))
    return out


@router.command("task", words=("任务", "task"), args=True,
                access=("view_task", "create_task", "edit_task"))
async def on_task(ctx: Context) -> None:
    rest = ctx.args
    if not rest:
        await list_my_tasks(ctx)
        return
    today = local(ctx, ctx.now).date()
    line = parse_task_line(rest, today, ctx.tenant.work_hours_end, WorkCalendar(ctx.tenant), locale=ctx.locale)
    if not line.words:
        ctx.reply(ctx.t("task.usage"))
        return
    existing = await find_task(ctx.session, ctx.tenant.key, line.words[0])
    if existing is not None:
        if len(line.words) == 1 and not line.mentions and line.due is None and not line.due_error \
                and line.deliverable is None:
            if not await may_view(ctx, existing):
                ctx.reply(ctx.t("task.no_right.view", code=existing.code))
                return
            await show_task(ctx, existing)
            return
        await _edit_task(ctx, existing, line, title_words=line.words[1:])
        return
    if len(line.words) < 2 or normalize_task_code(line.words[1]) is None:
        if len(line.words) == 1 and normalize_task_code(line.words[0]):
            ctx.reply(ctx.t("task.unknown", code=normalize_task_code(line.words[0])))
        else:
            ctx.reply(ctx.t("task.need_code") + "\n" + ctx.t("task.usage"))
        return
    code = normalize_task_code(line.words[1]) or ""
    project = await find_project(ctx.session, ctx.tenant.key, line.words[0])
    task = await find_task(ctx.session, ctx.tenant.key, code)
    if task is not None:
        if project is None or task.project_id != project.id:
            other = await project_of(ctx, task)
            ctx.reply(ctx.t("task.code_taken", code=code, project=other.name if other else "—"))
            return
        await _edit_task(ctx, task, line, title_words=line.words[2:])
        return
    await _create_task(ctx, line, project_token=line.words[0], project=project, code=code)


async def _create_task(ctx: Context, line: TaskLine, *, project_token: str, project: Project | None, code: str) -> None:
    me = ctx.me
    assert me is not None
    if not (has_any(me, CREATOR_ROLES) or (project is not None and project.pmo_userid == me.userid)):
        ctx.reply(ctx.t("task.no_right.create"))
        return
    problems: list[str] = []
    title = " ".join(line.words[2:]).strip(TRIM)
    if not title:
        problems.append(ctx.t("task.need_title"))
    people = await _resolve_people(ctx, line.mentions, problems)
    if not line.mentions and not ctx.event.mentions:
        problems.append(ctx.t("task.need_owner"))
    if line.due_error:
        problems.append(line.due_error)
    elif line.due is None:
        problems.append(ctx.t("task.need_due"))
    due = line.due.replace(tzinfo=ctx.tenant.tz) if line.due is not None else None
    if due is not None and due <= ctx.now:
        problems.append(ctx.t("task.due_past", due=fmt_time(ctx, due)))
    if len(title) > 100:
        problems.append(ctx.t("task.title_long", n=len(title)))
    if problems:
        ctx.reply("\n".join(problems) + "\n" + ctx.t("task.usage"))
        return
    assert due is not None and people
    new_project = project is None
    if project is None:
        if len(project_token) > 40:
            ctx.reply(ctx.t("task.project_long"))
            return
        project = Project(tenant=ctx.tenant.key, code=project_token, name=project_token, pmo_userid=me.userid,
                          created_at=utc(ctx.now))
        ctx.session.add(project)
        await ctx.session.flush()
    owner, collaborators = people[0], [u for u in people[1:] if u != people[0]]
    task = Task(tenant=ctx.tenant.key, project_id=project.id or 0, code=code, title=title, owner_userid=owner,
                collaborators=join_userids(collaborators), due_at=utc(due), deliverable_template=line.deliverable or "",
                status=TaskStatus.TODO, created_at=utc(ctx.now), status_updated_at=utc(ctx.now))
    ctx.session.add(task)
    await ctx.session.flush()
    ctx.session.add(TaskUpdate(tenant=ctx.tenant.key, task_id=task.id or 0, by_userid=me.userid, at=utc(ctx.now),
                               kind=TaskUpdateKind.CREATED, new_value=TaskStatus.TODO, note=TaskOrigin.CHAT))
    await notify_assignment(ctx, task, by=me.name)
    for uid in collaborators:
        ctx.send(uid, ctx.t("task.collab.added", who=me.name, code=code, title=title,
                            owner=await ctx.name_of(owner)))
    reply = ctx.t("task.created", code=code, title=title, project=project.name, owner=await ctx.name_of(owner),
                  due=fmt_time(ctx, task.due_at))
    if new_project:
        reply += "\n" + ctx.t("task.project_new", project=project.code)
    ctx.reply(reply)


async def _edit_task(ctx: Context, task: Task, line: TaskLine, *, title_words: list[str]) -> None:
    project = await project_of(ctx, task)
    if not await may_edit(ctx, task, project):
        ctx.reply(ctx.t("task.no_right.edit", code=task.code))
        return
    problems: list[str] = []
    people = await _resolve_people(ctx, line.mentions, problems) if (line.mentions or ctx.event.mentions) else []
    if line.due_error:
        problems.append(line.due_error)
    due = line.due.replace(tzinfo=ctx.tenant.tz) if line.due is not None else None
    if due is not None and due <= ctx.now:
        problems.append(ctx.t("task.due_past", due=fmt_time(ctx, due)))
    if problems:
        ctx.reply("\n".join(problems))
        return
    changes: list[str] = []
    by = ctx.event.userid
    now = utc(ctx.now)

    def log(label: str, old: str, new: str) -> None:
        ctx.session.add(TaskUpdate(tenant=ctx.tenant.key, task_id=task.id or 0, by_userid=by, at=now, kind=TaskUpdateKind.EDIT,
                                   old_value=old, new_value=new, note=label))

    title = " ".join(title_words).strip(TRIM)
    if title and title != task.title:
        log(TaskField.TITLE, task.title, title)
        changes.append(f"{ctx.t('task.field.title')} {task.title} → {title}")
        task.title = title
    old_owner = task.owner_userid
    if people:
        if people[0] != task.owner_userid:
            log(TaskField.OWNER, task.owner_userid, people[0])
            changes.append(f"{ctx.t('task.field.owner')} {await ctx.name_of(task.owner_userid)} → {await ctx.name_of(people[0])}")
            task.owner_userid = people[0]
        collab = [u for u in people[1:] if u != people[0]]
        if len(people) > 1 and collab != task.collaborator_ids:
            log(TaskField.COLLABORATORS, task.collaborators, join_userids(collab))
            changes.append(f"{ctx.t('task.field.collaborators')} {await names(ctx, collab)}")
            task.set_collaborators(collab)
    if line.deliverable is not None and line.deliverable != task.deliverable_template:
        log(TaskField.DELIVERABLE, task.deliverable_template, line.deliverable)
        changes.append(f"{ctx.t('task.field.deliverable')} {line.deliverable or '—'}")
        task.deliverable_template = line.deliverable
    if due is not None and utc(due) != utc(task.due_at):
        old = fmt_time(ctx, task.due_at)
        await change_due(ctx, task, utc(due), line.reason or ctx.t("task.due.edit_reason"))
        changes.append(f"{ctx.t('task.field.due')} {old} → {fmt_time(ctx, task.due_at)}")
    if not changes:
        ctx.reply(ctx.t("task.edit.nothing"))
        return
    ctx.session.add(task)
    summary = ctx.t("list.semi").join(changes)
    if task.owner_userid != old_owner:
        ctx.send(old_owner, ctx.t("task.owner.moved", code=task.code, title=task.title,
                                  owner=await ctx.name_of(task.owner_userid)))
        await notify_assignment(ctx, task, by=await ctx.name_of(by))
    elif by != task.owner_userid:
        ctx.send(task.owner_userid, ctx.t("task.edited.owner", who=await ctx.name_of(by), code=task.code,
                                          changes=summary))
    ctx.reply(ctx.t("task.edited", code=task.code, changes=summary))


async def list_my_tasks(ctx: Context) -> None:
    """The sender's open tasks, and for a PMO the open tasks of the projects they run."""
    me = ctx.event.userid
    rows = list((await ctx.session.execute(select(Task).where(
        col(Task.tenant) == ctx.tenant.key, col(Task.status).in_(OPEN_STATUSES)).order_by(col(Task.due_at), col(Task.code)))).scalars())
    mine = [t for t in rows if t.owner_userid == me or me in t.collaborator_ids]
    run = {p.id: p for p in (await ctx.session.execute(select(Project).where(
        col(Project.tenant) == ctx.tenant.key, col(Project.pmo_userid) == me))).scalars()}
    theirs = [t for t in rows if t.project_id in run and t not in mine]
    if not mine and not theirs:
        ctx.reply(ctx.t("task.list.none"))
        return
    lines: list[str] = []
    if mine:
        lines.append(ctx.t("task.list.head", n=len(mine)))
        for t in mine:
            lines.append(await _list_line(ctx, t, remark="" if t.owner_userid == me else ctx.t("task.list.collab")))
    if theirs:
        projects = ctx.t("list.sep").join(sorted(p.name for p in run.values()))
        lines.append(ctx.t("task.list.pmo", n=len(theirs), projects=projects))
        for t in theirs:
            owner = ctx.t("task.list.owner", owner=await ctx.name_of(t.owner_userid))
            lines.append(await _list_line(ctx, t, owner, await deliverable_view.list_mark(ctx, t)))
    lines.append(ctx.t("task.list.hint", code=(mine or theirs)[0].code))
    ctx.reply("\n".join(lines))


async def _list_line(ctx: Context, t: Task, *columns: str, remark: str = "") -> str:
    """`· T12 直播系统压测｜发布会｜截止 12-01 12:00｜进行中（协作）`: `remark` right after the status,
    then more `columns` (the owner, the deliverable's light), each after the locale's separator."""
    project = await project_of(ctx, t)
    late = ctx.t("task.list.late") if aware(t.due_at) < ctx.now else ""
    sep = ctx.t("task.list.sep")
    return ctx.t("task.list.line", code=t.code, title=t.title, project=project.name if project else "—",
                 due=fmt_time(ctx, t.due_at), late=late, status=status_label(t, ctx.locale) + remark,
                 ) + "".join(sep + c for c in columns if c)


# -- 进度 -----------------------------------------------------------------------------------------
@router.command("progress", words=("进度", "progress"), args=True, access="report_task")
async def on_progress(ctx: Context) -> None:
    rest = ctx.args
    if not rest:
        await list_my_tasks(ctx)
        return
    code, status, note = parse_progress(rest)
    if code is not None:
        task = await find_task(ctx.session, ctx.tenant.key, code)
        if task is None:
            ctx.reply(ctx.t("task.unknown", code=code))
            return
    else:
        mine = list((await ctx.session.execute(select(Task).where(
            col(Task.tenant) == ctx.tenant.key, col(Task.owner_userid) == ctx.event.userid,
            col(Task.status).in_(OPEN_STATUSES)))).scalars())
        if len(mine) != 1:
            ctx.reply(ctx.t("task.progress.which") if mine else ctx.t("task.list.none"))
            return
        task = mine[0]
    if not await may_report(ctx, task):
        ctx.reply(ctx.t("task.no_right.report", code=task.code))
        return
    if status is None:
        if note:
            ctx.reply(ctx.t("task.progress.usage"))
            return
        await send_owner_card(ctx, task, title_key="task.card.plain", body=ctx.t("task.card.plain.body"))
        return
    await apply_status(ctx, task, status, note)
