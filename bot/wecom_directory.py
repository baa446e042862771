"""Directory sync from WeCom: departments, people and their managers into the roster.

Names come from user/simplelist (a self-built app still gets them after the 2022
privacy change), department paths from department/list, and a person's manager
is the nearest department leader above them. Like the roster import it is an
upsert: people no longer visible are deactivated, never deleted, and roles given
by hand (hr, pmo, admin) are kept.
"""
from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from bot.core.config import TenantConfig
from bot.wecom_api import WeComAPI, standalone_api
from datetime import datetime

from store.db import Database
from store.live import mark_live
from store.models import Department, Employee
from store.pinyin import name_keys
from store.statuses import Role, join_roles
from store.roster import roster_changed

log = logging.getLogger(__name__)


@dataclass
class DirectorySyncReport:
    departments: int = 0
    people: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        head = "（预演，未写入）" if self.dry_run else ""
        lines = [f"企业微信通讯录同步{head}：部门 {self.departments} 个，成员 {self.people} 人；"
                 f"新增 {len(self.created)}，更新 {len(self.updated)}，停用 {len(self.deactivated)}，"
                 f"未变 {self.unchanged}。"]
        lines += [f"注意：{w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass
class _Person:
    userid: str
    name: str
    department: str
    manager: str | None
    leader: bool


def _paths(depts: dict[int, dict[str, Any]]) -> dict[int, str]:
    paths: dict[int, str] = {}
    for dept_id in depts:
        names, seen, cur = [], set(), dept_id
        while cur in depts and cur not in seen:  # a parent outside the app's scope ends the path
            seen.add(cur)
            names.append(str(depts[cur].get("name", "")).strip().replace("/", "／") or str(cur))
            cur = int(depts[cur].get("parentid", 0) or 0)
        paths[dept_id] = "/".join(reversed(names))
    return paths


def plan_people(depts_raw: list[dict[str, Any]], users_raw: list[dict[str, Any]]) -> tuple[dict[int, str], list[_Person], list[str]]:
    """Work out each person's department path and manager from the API answers."""
    warnings: list[str] = []
    depts = {int(d["id"]): d for d in depts_raw if "id" in d}
    paths = _paths(depts)
    users: dict[str, dict[str, Any]] = {}
    for u in users_raw:
        uid = str(u.get("userid", "")).strip()
        if uid and uid not in users:
            users[uid] = u
    leaders = {d: [str(x) for x in (info.get("department_leader") or []) if str(x) in users]
               for d, info in depts.items()}

    def parent(d: int) -> int | None:
        p = int(depts[d].get("parentid", 0) or 0)
        return p if p in depts and p != d else None

    people: list[_Person] = []
    for uid, u in users.items():
        dept_ids = [int(x) for x in (u.get("department") or []) if int(x) in depts]
        main = dept_ids[0] if dept_ids else None
        if main is None:
            warnings.append(f"{uid} 不在应用可见的任何部门中")
        is_leader = any(uid in leaders.get(d, []) for d in dept_ids)
        manager = None
        cur = main
        if cur is not None and uid in leaders.get(cur, []):
            cur = parent(cur)  # a department's leader reports to the leader above
        seen: set[int] = set()
        while cur is not None and cur not in seen:
            seen.add(cur)
            others = [x for x in leaders.get(cur, []) if x != uid]
            if others:
                manager = others[0]
                break
            cur = parent(cur)
        name = str(u.get("name", "")).strip() or uid
        people.append(_Person(uid, name, paths.get(main, "") if main is not None else "", manager, is_leader))
    return paths, people, warnings


async def fetch_directory(api: WeComAPI) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """department/list plus user/simplelist of each top department in the app's scope."""
    depts = await api.department_list()
    ids = {int(d["id"]) for d in depts if "id" in d}
    roots = [int(d["id"]) for d in depts if int(d.get("parentid", 0) or 0) not in ids]
    users: list[dict[str, Any]] = []
    for root in roots:
        users += await api.user_simplelist(root, fetch_child=True)
    return depts, users


async def sync_wecom_directory(runtime_or_db: Any, tenant_cfg: TenantConfig, *, api: WeComAPI | None = None,
                               dry_run: bool = False, now: datetime | None = None) -> DirectorySyncReport:
    """Fetch the app-visible directory and upsert it into the tenant's roster.

    `now`, when given, is the moment of the sync: the first sync or import sets the go-live date.
    """
    if tenant_cfg.wecom is None:
        raise ValueError(f"tenant {tenant_cfg.key!r} has no [tenants.wecom] section")
    db: Database = runtime_or_db.db if hasattr(runtime_or_db, "db") else runtime_or_db
    async with AsyncExitStack() as stack:
        if api is None:
            adapter = getattr(runtime_or_db, "adapters", {}).get("wecom")
            if adapter is not None:
                api = adapter.api(tenant_cfg)
            else:
                api = await stack.enter_async_context(standalone_api(tenant_cfg.wecom))
        depts_raw, users_raw = await fetch_directory(api)

    paths, people, warnings = plan_people(depts_raw, users_raw)
    report = DirectorySyncReport(departments=len(paths), people=len(people), warnings=warnings, dry_run=dry_run)
    if not people:
        report.warnings.append("应用可见范围内没有成员，未做任何修改（请检查应用的可见范围）")
        return report
    managers = {p.manager for p in people if p.manager}
    tenant = tenant_cfg.key
    async with db.transaction() as s:
        existing = {e.userid: e for e in (await s.execute(select(Employee).where(Employee.tenant == tenant))).scalars()}
        known_depts = {d.path: d for d in (await s.execute(select(Department).where(Department.tenant == tenant))).scalars()}
        for dept_id, path in paths.items():
            if not path:
                continue
            row = known_depts.get(path)
            if row is None:
                if not dry_run:
                    s.add(Department(tenant=tenant, path=path, name=path.rsplit("/", 1)[-1], platform_id=str(dept_id)))
            elif row.platform_id != str(dept_id) and not dry_run:
                row.platform_id = str(dept_id)
        seen: set[str] = set()
        for p in people:
            seen.add(p.userid)
            full, initials = name_keys(p.name)
            row = existing.get(p.userid)
            roles: list[str] = list(row.role_list if row else [])
            if p.leader or p.userid in managers:
                roles.append(Role.MANAGER)
            values = dict(name=p.name, department=p.department, manager_userid=p.manager,
                          roles=join_roles(roles), active=True, pinyin=full, initials=initials)
            if row is None:
                report.created.append(p.userid)
                if not dry_run:
                    s.add(Employee(tenant=tenant, userid=p.userid, **values))
                continue
            changed = {k: v for k, v in values.items() if getattr(row, k) != v}
            if not changed:
                report.unchanged += 1
                continue
            report.updated.append(p.userid)
            if not dry_run:
                for k, v in changed.items():
                    setattr(row, k, v)
        for uid, row in existing.items():
            if uid not in seen and row.active:
                report.deactivated.append(uid)
                if not dry_run:
                    row.active = False
        if not dry_run and now is not None:
            await mark_live(s, tenant, now.astimezone(tenant_cfg.tz).date())
    if not dry_run:
        roster_changed(tenant)
    log.info("WeCom directory sync for %s: %s", tenant, report.summary().splitlines()[0])
    return report
