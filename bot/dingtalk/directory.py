"""Directory sync from DingTalk: departments, people and their managers.

Departments come from `topapi/v2/department/listsub` walked from the root (id 1),
people from `topapi/v2/user/list` per department, and each person's direct
manager from the `manager_userid` of `topapi/v2/user/get` (the list API does not
return it). Everything is read first; the database is written in one transaction
only if every call succeeded, so a failed sync changes nothing.

Roles other than `manager` (hr, pmo, admin) are not in DingTalk and are kept as they
are; `manager` is added to whoever is someone's manager. People no longer in the
directory are deactivated, never deleted.
"""
from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import insert, select, update

from bot.core.config import TenantConfig
from datetime import datetime

from bot.dingtalk.api import DingTalkApi, DingTalkApiError
from store.db import Database, try_insert
from store.live import mark_live
from store.models import Department, Employee
from store.pinyin import name_keys
from store.roster import RosterReport, path_prefixes, roster_changed
from store.statuses import Role, join_roles

ROOT_DEPT = 1
_DETAIL_CONCURRENCY = 10


async def _read(api: DingTalkApi) -> tuple[dict[int, str], dict[str, dict[str, Any]]]:
    """(department id → path, userid → person with `manager_userid`) as DingTalk has them."""
    root = await api.department(ROOT_DEPT)
    names: dict[int, str] = {ROOT_DEPT: str(root.get("name") or "总部").replace("/", "／")}
    parents: dict[int, int] = {}
    queue = [ROOT_DEPT]
    while queue:
        dept = queue.pop(0)
        for sub in await api.sub_departments(dept):
            sub_id = sub.get("dept_id")
            if not isinstance(sub_id, int) or sub_id in names:
                continue
            # A '/' inside a name would split the path: keep it as a full-width slash.
            names[sub_id] = str(sub.get("name") or sub_id).strip().replace("/", "／")
            parents[sub_id] = dept
            queue.append(sub_id)

    def path(dept_id: int) -> str:
        parts = []
        d: int | None = dept_id
        while d is not None:
            parts.append(names[d])
            d = parents.get(d)
        return "/".join(reversed(parts))

    paths = {d: path(d) for d in names}
    people: dict[str, dict[str, Any]] = {}
    for dept in names:
        for u in await api.department_users(dept):
            uid = u.get("userid")
            if isinstance(uid, str) and uid and uid not in people:
                people[uid] = u
    gate = asyncio.Semaphore(_DETAIL_CONCURRENCY)

    async def detail(uid: str) -> None:
        async with gate:
            people[uid] = {**people[uid], **await api.user(uid)}
    await asyncio.gather(*(detail(uid) for uid in list(people)))
    return paths, people


async def sync_dingtalk_directory(db: Database, tenant_cfg: TenantConfig, *,
                                  api: DingTalkApi | None = None, now: datetime | None = None) -> RosterReport:
    """Make the tenant's people and departments match the DingTalk directory.

    `now`, when given, is the moment of the sync: the first sync or import sets the go-live date.
    """
    if tenant_cfg.dingtalk is None:
        raise ValueError(f"tenant {tenant_cfg.key!r} has no [tenants.dingtalk] section")
    own = api is None
    client = api or DingTalkApi(tenant_cfg.dingtalk)
    report = RosterReport()
    try:
        paths, people = await _read(client)
    except DingTalkApiError as exc:
        report.errors.append(f"读取钉钉通讯录失败，未做任何修改：{exc}")
        return report
    finally:
        if own:
            await client.close()

    managers = {p.get("manager_userid") for p in people.values()}
    tenant = tenant_cfg.key
    async with db.transaction() as s:
        existing = {e.userid: e for e in (await s.execute(select(Employee).where(Employee.tenant == tenant))).scalars()}
        inserts: list[dict[str, Any]] = []
        for uid, p in sorted(people.items()):
            name = str(p.get("name") or uid).strip()
            depts = [d for d in p.get("dept_id_list") or [] if d in paths]
            department = paths[depts[0]] if depts else paths[ROOT_DEPT]
            manager = p.get("manager_userid")
            manager = manager if isinstance(manager, str) and manager in people and manager != uid else None
            old = existing.get(uid)
            roles: set[str] = set(old.role_list) if old is not None else set()
            if uid in managers:
                roles.add(Role.MANAGER)
            full, initials = name_keys(name)
            values = {"name": name, "department": department, "manager_userid": manager,
                      "roles": join_roles(roles), "active": True,
                      "pinyin": full, "initials": initials}
            if old is None:
                report.added.append(uid)
                inserts.append({"tenant": tenant, "userid": uid, **values})
                continue
            changed = any(getattr(old, k) != v for k, v in values.items())
            if not old.active:
                report.reactivated.append(uid)
            elif changed:
                report.updated.append(uid)
            if changed:
                await s.execute(update(Employee).where(Employee.id == old.id).values(**values))
        if inserts:
            await s.execute(insert(Employee), inserts)
        for uid, old in existing.items():
            if old.active and uid not in people:
                report.deactivated.append(uid)
                await s.execute(update(Employee).where(Employee.id == old.id).values(active=False))
        have = set((await s.execute(select(Department.path).where(Department.tenant == tenant))).scalars())
        ids = {path: str(d) for d, path in paths.items()}
        for path in sorted({prefix for p in paths.values() for prefix in path_prefixes(p)}):
            if path not in have:
                await try_insert(s, Department, {"tenant": tenant, "path": path, "name": path.rsplit("/", 1)[-1],
                                                 "platform_id": ids.get(path)})
        if people and now is not None:
            await mark_live(s, tenant, now.astimezone(tenant_cfg.tz).date())
    roster_changed(tenant)
    return report
