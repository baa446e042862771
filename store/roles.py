"""Granting roles by hand (`dongxian org roles`): hr, pmo, admin and manager, audited.

A directory sync only ever adds `manager` and keeps what was granted here; a
roster import, being the company's own list, replaces a person's roles.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from store.audit import record
from store.db import Database
from store.models import Employee
from store.roster import ROLES

GRANTABLE = ROLES[1:]  # employee is everyone's and never stored
CHANGE_ROLES = "change_roles"


class RoleError(ValueError):
    """A request that changes nothing, phrased for the operator."""


@dataclass
class RoleChange:
    userid: str
    name: str
    old: list[str]
    new: list[str]

    def summary(self) -> str:
        old, new = "、".join(self.old) or "（无）", "、".join(self.new) or "（无）"
        if self.old == self.new:
            return f"{self.name}（{self.userid}）的角色没有变化：{new}"
        return f"{self.name}（{self.userid}）的角色：{old} → {new}"


def _parse(roles: list[str]) -> list[str]:
    wanted = [r.strip().lower() for r in roles if r.strip()]
    bad = [r for r in wanted if r not in GRANTABLE]
    if bad:
        raise RoleError(f"无效的角色 {'、'.join(bad)}；可选：{'、'.join(GRANTABLE)}（employee 是每个人默认都有的）")
    return wanted


async def change_roles(db: Database, tenant: str, op: str, userid: str, roles: list[str], *, by: str,
                       now: datetime) -> RoleChange:
    """`op` is set (exactly these), add or remove. Raises RoleError and then writes nothing."""
    if op not in ("set", "add", "remove"):
        raise RoleError(f"unknown operation {op!r}")
    wanted = _parse(roles)
    if op != "set" and not wanted:
        raise RoleError("请至少写一个角色，例如：hr")
    async with db.transaction() as s:
        person = (await s.execute(select(Employee).where(
            Employee.tenant == tenant, Employee.userid == userid))).scalar_one_or_none()
        if person is None:
            raise RoleError(f"租户 {tenant!r} 中没有 userid 为 {userid!r} 的人：请先导入名册或同步通讯录")
        old = person.role_list
        if op == "set":
            have = set(wanted)
        elif op == "add":
            have = set(old) | set(wanted)
        else:
            have = set(old) - set(wanted)
        new = [r for r in GRANTABLE if r in have]
        change = RoleChange(userid, person.name, old, new)
        if new != old:
            person.set_roles(new)
            s.add(person)
            # Who granted what to whom, kept with the other audit entries (console: 审计日志).
            record(s, tenant, by, CHANGE_ROLES, f"{userid}: {';'.join(old) or '-'} → {';'.join(new) or '-'}", now)
        return change


async def people_with_roles(db: Database, tenant: str) -> list[tuple[str, str, str, list[str]]]:
    """(userid, name, department, roles) of active people holding any role, by department then userid."""
    async with db.session() as s:
        rows = (await s.execute(select(Employee).where(
            Employee.tenant == tenant, Employee.active.is_(True), Employee.roles != "")
            .order_by(Employee.department, Employee.userid))).scalars()
        return [(e.userid, e.name, e.department, e.role_list) for e in rows]
