"""Projects and atomic tasks: import from CSV/XLSX, lookups, stale episodes and escalation chains.

Task file columns (header in any order, all present; UTF-8 CSV with or without
BOM, or the first sheet of an XLSX):

    project        project code, no spaces (发布会, LAUNCH26); a new code creates the project
    project_name   the project's display name; blank = keep the stored one (or the code)
    pmo            the project's PMO (userid or unique name); required for a new project,
                   blank = keep; all rows of one project must agree
    code           task code, a letter then letters/digits/-/_ (T12); unique in the tenant
    title          what has to be done
    owner          the one person responsible (userid or unique name)
    collaborators  more people, separated by ; (may be blank)
    due            due time in the tenant's time zone: 2026-12-01 12:00
    deliverable    what must be handed in to complete it (may be blank)

The file is checked as a whole: one bad row and nothing is written, with every
problem reported by line number (the header is line 1). Re-importing updates
tasks in place (status is never touched); due changes are logged as TaskUpdate
kind "due", other field changes as kind "edit".
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from store.import_report import ImportReport
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.models import Employee, Escalation, Project, Task, TaskUpdate, Tenant
from store.roster import TableError, read_table
from store.statuses import OPEN_TASK_STATUSES, TaskField, TaskOrigin, TaskStatus, TaskUpdateKind, join_userids
from bot.core.timeutil import utc

TASK_COLUMNS = ("project", "project_name", "pmo", "code", "title", "owner", "collaborators", "due", "deliverable")
STATUSES = tuple(TaskStatus)
OPEN_STATUSES = OPEN_TASK_STATUSES
DONE = TaskStatus.DONE
BLOCKED = TaskStatus.BLOCKED

MAX_TITLE = 100
MAX_DELIVERABLE = 500
_CODE = re.compile(r"^[A-Z][A-Z0-9_\-]{0,31}$")
_PROJECT = re.compile(r"^\S{1,40}$")
_DUE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$")
_LIST_SPLIT = re.compile(r"[;；,，、\s]+")
_LIST_IN_SUMMARY = 20


def normalize_task_code(text: str) -> str | None:
    """'t12', 'Ｔ１２' → 'T12'; None when not a letter followed by letters, digits, - or _."""
    t = unicodedata.normalize("NFKC", text or "").strip().upper()
    return t if _CODE.match(t) else None


def parse_due(text: str, tz: ZoneInfo) -> datetime | None:
    """'2026-12-01 12:00' (tenant-local) → aware UTC; None when malformed or not a real time."""
    m = _DUE.match(unicodedata.normalize("NFKC", text or "").strip())
    if not m:
        return None
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    s = int(m.group(6) or 0)
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=tz).astimezone(timezone.utc)
    except ValueError:
        return None


def split_people(text: str) -> list[str]:
    return [p for p in _LIST_SPLIT.split(text or "") if p]



# -- stale episodes ------------------------------------------------------------------
def stale_anchor(task: Task) -> datetime:
    """Since when a task has been both past due and without a status update.

    A status update or a new due time moves the anchor, which starts a new episode.
    """
    return max(utc(task.due_at), utc(task.status_updated_at))


def episode_of(task: Task) -> int:
    """The stale episode as epoch seconds of its anchor (the Escalation.episode key)."""
    return int(stale_anchor(task).timestamp())


async def resolve_escalations(session: AsyncSession, tenant: str, task_id: int, at: datetime) -> int:
    """Close every open escalation of a task (a status update or a new due time ends the episode)."""
    result = await session.execute(
        update(Escalation)
        .where(Escalation.tenant == tenant, Escalation.task_id == task_id, Escalation.resolved_at.is_(None))
        .values(resolved_at=utc(at)))
    return int(result.rowcount or 0)


async def management_chain(session: AsyncSession, tenant: str, userid: str, limit: int = 30) -> list[Employee]:
    """Active managers above `userid`, nearest first; people who left are passed through."""
    chain: list[Employee] = []
    seen = {userid}
    boss_id = (await session.execute(select(Employee.manager_userid).where(
        Employee.tenant == tenant, Employee.userid == userid))).scalar_one_or_none()
    while boss_id and boss_id not in seen and len(seen) < limit:  # a cycle in the roster ends the walk
        seen.add(boss_id)
        boss = (await session.execute(select(Employee).where(
            Employee.tenant == tenant, Employee.userid == boss_id))).scalar_one_or_none()
        if boss is None:
            break
        if boss.active:
            chain.append(boss)
        boss_id = boss.manager_userid
    return chain


# -- lookups ------------------------------------------------------------------------------
async def find_task(session: AsyncSession, tenant: str, code: str) -> Task | None:
    norm = normalize_task_code(code)
    if norm is None:
        return None
    return (await session.execute(select(Task).where(Task.tenant == tenant, Task.code == norm))).scalar_one_or_none()


async def find_project(session: AsyncSession, tenant: str, token: str) -> Project | None:
    """A project by code (case-insensitive) or exact name."""
    token = unicodedata.normalize("NFKC", token).strip()
    rows = list((await session.execute(select(Project).where(Project.tenant == tenant))).scalars())
    for p in rows:
        if p.code.casefold() == token.casefold():
            return p
    named = [p for p in rows if p.name == token]
    return named[0] if len(named) == 1 else None


# -- import ---------------------------------------------------------------------------------
@dataclass
class TaskReport(ImportReport):
    projects_added: list[str] = field(default_factory=list)
    projects_updated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """What the import did (or, in a dry run, would do), in Chinese."""
        if self.errors:
            return self.refused("任务文件")
        prefix, verb = self.prefix, self.verb
        parts = []
        for label, unit, codes in (("新增", "个项目", self.projects_added), ("更新", "个项目", self.projects_updated),
                                   ("新增", "个任务", self.added), ("更新", "个任务", self.updated)):
            if codes:
                parts.append(f"{verb}{label} {len(codes)} {unit}：{_codes(codes)}")
        if not parts:
            return prefix + "任务与现有数据一致，没有变化"
        return prefix + "\n".join(parts)


def _codes(codes: list[str]) -> str:
    shown = "、".join(codes[:_LIST_IN_SUMMARY])
    return shown if len(codes) <= _LIST_IN_SUMMARY else f"{shown} 等 {len(codes)} 个"


@dataclass
class _Row:
    line: int
    project: str
    project_name: str
    pmo: str | None
    code: str
    title: str
    owner: str
    collaborators: list[str]
    due: datetime
    deliverable: str


class _People:
    """Who a userid or a name in the file means: active people only."""

    def __init__(self, staff: list[Employee]) -> None:
        self.by_id = {e.userid: e for e in staff}
        self.by_folded_id: dict[str, list[Employee]] = {}
        self.by_name: dict[str, list[Employee]] = {}
        for e in staff:
            self.by_folded_id.setdefault(e.userid.casefold(), []).append(e)
            self.by_name.setdefault(e.name, []).append(e)

    def resolve(self, token: str) -> tuple[str | None, str]:
        """(userid, '') or (None, why)."""
        token = unicodedata.normalize("NFKC", token).strip().lstrip("@")
        if token in self.by_id:
            return token, ""
        folded = self.by_folded_id.get(token.casefold(), [])
        if len(folded) == 1:
            return folded[0].userid, ""
        named = self.by_name.get(token, [])
        if len(named) == 1:
            return named[0].userid, ""
        if len(named) > 1:
            ids = "、".join(e.userid for e in named)
            return None, f"“{token}”有 {len(named)} 位同名同事（{ids}），请填写账号"
        return None, f"“{token}”不在名单中或已停用"


async def import_tasks(db: Database, tenant_key: str, path: Path, *, now: datetime,
                       dry_run: bool = False, by_userid: str = "") -> TaskReport:
    """Create or update projects and tasks from a CSV/XLSX file; all or nothing."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    async with db.session() as s:
        tenant = await s.get(Tenant, tenant_key)
    if tenant is None:
        raise ValueError(f"租户 {tenant_key!r} 不存在：请先在配置文件中添加该租户并初始化")
    tz = ZoneInfo(tenant.timezone)
    report = TaskReport(dry_run=dry_run)
    try:
        table = read_table(path, TASK_COLUMNS)
    except TableError as exc:
        report.errors = exc.errors
        return report

    async with (db.session() if dry_run else db.transaction()) as s:
        staff = list((await s.execute(select(Employee).where(
            Employee.tenant == tenant_key, Employee.active.is_(True)))).scalars())
        rows, errors = _parse_rows(table, _People(staff), tz)
        projects = {p.code: p for p in (await s.execute(select(Project).where(Project.tenant == tenant_key))).scalars()}
        tasks = {t.code: t for t in (await s.execute(select(Task).where(Task.tenant == tenant_key))).scalars()}
        errors += _check_against_store(rows, projects, tasks)
        if errors:
            report.errors = sorted(errors, key=_line_of)
            return report
        await _apply(s, tenant_key, rows, projects, tasks, report, now=utc(now), tz=tz, by_userid=by_userid,
                     write=not dry_run)
    return report


def _line_of(error: str) -> int:
    m = re.match(r"第 (\d+) 行", error)
    return int(m.group(1)) if m else 0


def _parse_rows(table: list[tuple[int, dict[str, str]]], people: _People, tz: ZoneInfo) -> tuple[list[_Row], list[str]]:
    errors: list[str] = []
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    project_pmo: dict[str, tuple[str, int]] = {}
    project_name: dict[str, tuple[str, int]] = {}
    for line, r in table:
        bad = False

        def err(msg: str) -> None:
            nonlocal bad
            errors.append(f"第 {line} 行：{msg}")
            bad = True

        project = unicodedata.normalize("NFKC", r["project"]).strip()
        if not project:
            err("项目编号（project）为空")
        elif not _PROJECT.match(project):
            err(f"项目编号 “{r['project']}” 不能含空格，且不超过 40 个字符")
        code = normalize_task_code(r["code"])
        if not r["code"]:
            err("任务编号（code）为空")
        elif code is None:
            err(f"任务编号 “{r['code']}” 格式不对，应以字母开头，如 T12")
        elif code in seen:
            err(f"任务编号 {code} 与第 {seen[code]} 行重复")
        else:
            seen[code] = line
        title = r["title"].strip()
        if not title:
            err("任务名称（title）为空")
        elif len(title) > MAX_TITLE:
            err(f"任务名称有 {len(title)} 字，最多 {MAX_TITLE} 字")
        owner: str | None = None
        if not r["owner"]:
            err("负责人（owner）为空")
        else:
            owner, why = people.resolve(r["owner"])
            if owner is None:
                err(f"负责人{why}")
        pmo: str | None = None
        if r["pmo"]:
            pmo, why = people.resolve(r["pmo"])
            if pmo is None:
                err(f"PMO {why}")
        collaborators: list[str] = []
        for token in split_people(r["collaborators"]):
            uid, why = people.resolve(token)
            if uid is None:
                err(f"协作人{why}")
            elif uid != owner and uid not in collaborators:
                collaborators.append(uid)
        due = parse_due(r["due"], tz) if r["due"] else None
        if not r["due"]:
            err("截止时间（due）为空，应写成 2026-12-01 12:00")
        elif due is None:
            err(f"截止时间 “{r['due']}” 无效，应写成 2026-12-01 12:00")
        deliverable = r["deliverable"].strip()
        if len(deliverable) > MAX_DELIVERABLE:
            err(f"交付物要求有 {len(deliverable)} 字，最多 {MAX_DELIVERABLE} 字")
        if project and pmo:
            first = project_pmo.setdefault(project, (pmo, line))
            if first[0] != pmo:
                err(f"项目 {project} 的 PMO 与第 {first[1]} 行不一致")
        name = r["project_name"].strip()
        if project and name:
            first_name = project_name.setdefault(project, (name, line))
            if first_name[0] != name:
                err(f"项目 {project} 的名称与第 {first_name[1]} 行不一致")
        if not bad:
            assert code is not None and owner is not None and due is not None
            rows.append(_Row(line, project, name, pmo, code, title, owner, collaborators, due, deliverable))
    # A PMO given on any row of a project counts for all its rows.
    for row in rows:
        if row.pmo is None and row.project in project_pmo:
            row.pmo = project_pmo[row.project][0]
        if not row.project_name and row.project in project_name:
            row.project_name = project_name[row.project][0]
    return rows, errors


def _check_against_store(rows: list[_Row], projects: dict[str, Project], tasks: dict[str, Task]) -> list[str]:
    errors = []
    by_id = {p.id: p for p in projects.values()}
    reported_pmo: set[str] = set()
    for row in rows:
        project = projects.get(row.project)
        if project is None and row.pmo is None and row.project not in reported_pmo:
            errors.append(f"第 {row.line} 行：新项目 {row.project} 需要填写 PMO")
            reported_pmo.add(row.project)
        task = tasks.get(row.code)
        if task is not None and (project is None or task.project_id != project.id):
            owner_project = by_id.get(task.project_id)
            errors.append(f"第 {row.line} 行：任务编号 {row.code} 已属于项目 "
                          f"{owner_project.code if owner_project else task.project_id}，不能移到 {row.project}")
    return errors


def _fmt(dt: datetime | None, tz: ZoneInfo) -> str:
    return "" if dt is None else utc(dt).astimezone(tz).strftime("%Y-%m-%d %H:%M")


async def _apply(s: AsyncSession, tenant: str, rows: list[_Row], projects: dict[str, Project],
                 tasks: dict[str, Task], report: TaskReport, *, now: datetime, tz: ZoneInfo, by_userid: str,
                 write: bool) -> None:
    for row in rows:
        project = projects.get(row.project)
        if project is None:
            project = Project(tenant=tenant, code=row.project, name=row.project_name or row.project,
                              pmo_userid=row.pmo or "", created_at=now)
            projects[row.project] = project
            report.projects_added.append(row.project)
            if write:
                s.add(project)
                await s.flush()
        else:
            changed = False
            if row.pmo and row.pmo != project.pmo_userid:
                project.pmo_userid, changed = row.pmo, True
            if row.project_name and row.project_name != project.name:
                project.name, changed = row.project_name, True
            if changed and row.project not in report.projects_updated and row.project not in report.projects_added:
                report.projects_updated.append(row.project)
                if write:
                    s.add(project)

        task = tasks.get(row.code)
        collab = join_userids(row.collaborators)
        if task is None:
            report.added.append(row.code)
            if not write:
                continue
            task = Task(tenant=tenant, project_id=project.id or 0, code=row.code, title=row.title,
                        owner_userid=row.owner, collaborators=collab, due_at=row.due,
                        deliverable_template=row.deliverable, status=TaskStatus.TODO, created_at=now,
                        status_updated_at=now)
            s.add(task)
            await s.flush()
            s.add(TaskUpdate(tenant=tenant, task_id=task.id or 0, by_userid=by_userid, at=now,
                             kind=TaskUpdateKind.CREATED, new_value=TaskStatus.TODO, note=TaskOrigin.IMPORT))
            continue
        edits: list[tuple[TaskField, str, str]] = []
        for label, old, new in ((TaskField.TITLE, task.title, row.title), (TaskField.OWNER, task.owner_userid, row.owner),
                                (TaskField.COLLABORATORS, task.collaborators, collab),
                                (TaskField.DELIVERABLE, task.deliverable_template, row.deliverable)):
            if old != new:
                edits.append((label, old, new))
        due_changed = utc(task.due_at) != row.due
        if not edits and not due_changed:
            report.unchanged.append(row.code)
            continue
        report.updated.append(row.code)
        if not write:
            continue
        if due_changed:
            s.add(TaskUpdate(tenant=tenant, task_id=task.id or 0, by_userid=by_userid, at=now, kind=TaskUpdateKind.DUE,
                             old_value=_fmt(task.due_at, tz), new_value=_fmt(row.due, tz), note=TaskOrigin.IMPORT))
            task.due_at = row.due
            # The episode under way is over: the task has a new due time.
            await resolve_escalations(s, tenant, task.id or 0, now)
        for label, old, new in edits:
            s.add(TaskUpdate(tenant=tenant, task_id=task.id or 0, by_userid=by_userid, at=now, kind=TaskUpdateKind.EDIT,
                             old_value=old, new_value=new, note=label))
        task.title, task.owner_userid = row.title, row.owner
        task.collaborators, task.deliverable_template = collab, row.deliverable
        s.add(task)
