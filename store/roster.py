"""Roster import (CSV/XLSX → Employee, Department) and the tenant row from config.

The file is checked as a whole before anything is written: one bad row and the
database stays as it was, with every problem reported by line number (the
header is line 1, as in Excel).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from store.import_report import ImportReport
from pathlib import Path
from typing import Any, Iterable

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, text, update

from bot.core.config import TenantConfig
from store.live import mark_live
from store.db import Database, try_insert
from store.models import Department, Employee, Tenant
from store.pinyin import name_keys
from store.statuses import Role, join_roles

ROSTER_COLUMNS = ("userid", "name", "department", "manager_userid", "roles")
# Canonical order; `employee` is implied and never stored.
ROLES = tuple(Role)
_MAX_USERID = 64
_LIST_IN_SUMMARY = 20
_ANALYZE_AFTER = 1000


class TableError(Exception):
    """The file as a whole cannot be read (format, encoding, header)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def read_table(path: Path, columns: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, {column: stripped text}) for each non-blank row of a CSV or XLSX file.

    The header must name exactly `columns`, in any order. Raises TableError.
    """
    wanted = tuple(columns)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise TableError([f"不支持的文件类型 {path.suffix or '（无扩展名）'}：请使用 .csv 或 .xlsx"])
    if not path.is_file():
        raise TableError([f"找不到文件：{path}"])
    raw_rows = _xlsx_rows(path) if suffix == ".xlsx" else _csv_rows(path)
    if not raw_rows or not any(c for c in raw_rows[0][1]):
        raise TableError(["第 1 行：缺少表头，应为 " + ",".join(wanted)])

    header = [c.strip().lower() for c in raw_rows[0][1]]
    while header and header[-1] == "":
        header.pop()  # spreadsheets often carry empty trailing columns
    errors = []
    for name in sorted({h for h in header if header.count(h) > 1}):
        errors.append(f"第 1 行：列 {name or '（空）'} 重复")
    unknown = [h for h in header if h not in wanted]
    if unknown:
        errors.append(f"第 1 行：未知的列 {'、'.join(h or '（空）' for h in unknown)}；表头应为 {','.join(wanted)}")
    missing = [c for c in wanted if c not in header]
    if missing:
        errors.append(f"第 1 行：缺少列 {'、'.join(missing)}；表头应为 {','.join(wanted)}")
    if errors:
        raise TableError(errors)

    rows: list[tuple[int, dict[str, str]]] = []
    width = len(header)
    for line, cells in raw_rows[1:]:
        if not any(cells):
            continue
        extra = [c for c in cells[width:] if c]
        if extra:
            errors.append(f"第 {line} 行：有 {len(cells)} 列，多于表头的 {width} 列")
            continue
        if len(cells) < width and suffix == ".csv":
            errors.append(f"第 {line} 行：只有 {len(cells)} 列，应为 {width} 列（空值也要保留逗号）")
            continue
        cells = cells + [""] * (width - len(cells))
        rows.append((line, dict(zip(header, cells[:width]))))
    if errors:
        raise TableError(errors)
    return rows


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        # utf-8-sig drops the BOM Excel writes with "CSV UTF-8" and reads plain UTF-8 too.
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TableError(["文件不是 UTF-8 编码：请在 Excel 中另存为“CSV UTF-8（逗号分隔）”"]) from None
    except OSError as exc:
        raise TableError([f"无法读取文件 {path}：{exc.strerror}"]) from None
    try:
        # Rows are numbered as Excel numbers them, so a quoted line break stays one row.
        return [(i, [c.strip() for c in row]) for i, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1)]
    except csv.Error as exc:
        raise TableError([f"CSV 格式错误：{exc}"]) from None


def _xlsx_rows(path: Path) -> list[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken or non-XLSX file
        raise TableError([f"无法读取 XLSX 文件 {path.name}：{exc.__class__.__name__}"]) from None
    try:
        ws = wb.worksheets[0]
        out = []
        for i, values in enumerate(ws.iter_rows(min_row=1, values_only=True), 1):
            out.append((i, [_cell_text(v) for v in values]))
        return out
    finally:
        wb.close()


def _cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a numeric userid typed in Excel comes back as 10023.0
    return str(v).strip()


def department_path(text: str) -> str | None:
    """'总部 / 研发中心/注册部' → '总部/研发中心/注册部'; None when a segment is empty."""
    parts = [p.strip() for p in text.split("/")]
    if not text.strip() or any(not p for p in parts):
        return None
    return "/".join(parts)


def path_prefixes(path: str) -> list[str]:
    """'a/b/c' → ['a', 'a/b', 'a/b/c']."""
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass
class RosterReport(ImportReport):
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """What the import did (or, in a dry run, would do), in Chinese."""
        if self.errors:
            return self.refused("名单")
        prefix, verb = self.prefix, self.verb
        parts = []
        groups = (("新增", self.added), ("更新", self.updated), ("停用", self.deactivated), ("恢复", self.reactivated))
        for label, ids in groups:
            if ids:
                parts.append(f"{verb}{label} {len(ids)} 人：{_id_list(ids)}")
        if not parts:
            return prefix + "名单与现有数据一致，没有变化"
        return prefix + "\n".join(parts)


def _id_list(ids: list[str]) -> str:
    shown = "、".join(ids[:_LIST_IN_SUMMARY])
    return shown if len(ids) <= _LIST_IN_SUMMARY else f"{shown} 等 {len(ids)} 人"


@dataclass
class _Person:
    line: int
    userid: str
    name: str
    department: str
    manager_userid: str | None
    roles: str


# What this process keeps in memory about a tenant's people (the @name directory in
# handlers/people.py) is rebuilt as soon as the roster was written here: import and directory
# sync bump the tenant's number. Another process notices through the roster's fingerprint.
_roster_versions: dict[str, int] = {}


def roster_changed(tenant: str) -> None:
    """The tenant's people were written (import, directory sync): in-memory copies are stale."""
    _roster_versions[tenant] = _roster_versions.get(tenant, 0) + 1


def roster_version(tenant: str) -> int:
    return _roster_versions.get(tenant, 0)


async def ensure_tenant(db: Database, cfg: TenantConfig) -> None:
    """Create or refresh the Tenant row from its configuration."""
    values: dict[str, Any] = {
        "key": cfg.key, "name": cfg.name, "timezone": cfg.timezone, "locale": cfg.locale, "platform": cfg.platform,
    }
    if cfg.live_from is not None:
        # A configured go-live date overrides the one the first import recorded.
        values["live_from"] = cfg.live_from
    async with db.transaction() as s:
        # Insert-or-ignore first, so two processes starting together do not collide.
        if not await try_insert(s, Tenant, values):
            await s.execute(update(Tenant).where(Tenant.key == cfg.key).values(**values))


async def import_roster(db: Database, tenant_key: str, path: Path, *, dry_run: bool = False,
                        now: datetime | None = None) -> RosterReport:
    """Upsert the roster from a CSV/XLSX file; all or nothing.

    `now` is the moment of the import: the first import given one sets the tenant's
    go-live date to that day (store.live). Without it the go-live date is left alone,
    which is what tests replaying a past quarter want; the CLI always passes it.
    """
    async with db.session() as s:
        tenant = await s.get(Tenant, tenant_key)
        if tenant is None:
            raise ValueError(f"租户 {tenant_key!r} 不存在：请先在配置文件中添加该租户并初始化")
    today = now.astimezone(ZoneInfo(tenant.timezone)).date() if now is not None else None
    report = RosterReport(dry_run=dry_run)
    try:
        rows = read_table(path, ROSTER_COLUMNS)
    except TableError as exc:
        report.errors = exc.errors
        return report
    people, report.errors = _validate(rows)
    if report.errors:
        return report
    if dry_run:
        async with db.session() as s:
            await _apply(s, tenant_key, people, report, write=False)
    else:
        async with db.transaction() as s:
            await _apply(s, tenant_key, people, report, write=True)
            if today is not None:
                await mark_live(s, tenant_key, today)
        roster_changed(tenant_key)
    return report


def _validate(rows: list[tuple[int, dict[str, str]]]) -> tuple[list[_Person], list[str]]:
    errors: list[str] = []
    people: list[_Person] = []
    first_line: dict[str, int] = {}
    for line, r in rows:
        bad = False
        userid, name = r["userid"], r["name"]
        if not userid:
            errors.append(f"第 {line} 行：userid 为空")
            bad = True
        elif len(userid) > _MAX_USERID:
            errors.append(f"第 {line} 行：userid \"{userid[:20]}…\" 超过 {_MAX_USERID} 个字符")
            bad = True
        elif userid in first_line:
            errors.append(f"第 {line} 行：userid \"{userid}\" 与第 {first_line[userid]} 行重复")
            bad = True
        else:
            first_line[userid] = line
        if not name:
            errors.append(f"第 {line} 行：姓名（name）为空")
            bad = True
        dept = department_path(r["department"])
        if dept is None:
            if r["department"].strip():
                errors.append(f"第 {line} 行：部门路径 \"{r['department']}\" 有空的层级，应写成 总部/研发中心/注册部")
            else:
                errors.append(f"第 {line} 行：部门（department）为空")
            bad = True
        roles, role_errors = _parse_roles(r["roles"])
        for role in role_errors:
            errors.append(f"第 {line} 行：角色 \"{role}\" 无效，可选：{'、'.join(ROLES)}")
            bad = True
        manager = r["manager_userid"] or None
        if manager is not None and manager == userid:
            errors.append(f"第 {line} 行：manager_userid 不能是本人（{userid}）")
            bad = True
        if not bad:
            people.append(_Person(line, userid, name, dept or "", manager, roles))

    known = set(first_line)
    for p in people:
        if p.manager_userid is not None and p.manager_userid not in known:
            errors.append(f"第 {p.line} 行：manager_userid \"{p.manager_userid}\" 不在名单中")
    errors.extend(_cycles(people))
    errors.sort(key=_line_of)
    return people, errors


def _line_of(message: str) -> int:
    try:
        return int(message.split(" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def _parse_roles(text: str) -> tuple[str, list[str]]:
    """('manager;hr', []) from ' HR ; manager '; unknown names in the second item."""
    names = [r.strip().lower() for r in text.replace("；", ";").split(";")]
    names = [n for n in names if n]
    bad = [n for n in names if n not in ROLES]
    return join_roles(names), bad


def _cycles(people: list[_Person]) -> list[str]:
    manager = {p.userid: p.manager_userid for p in people}
    line = {p.userid: p.line for p in people}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = settled
    errors = []
    for start in manager:
        path: list[str] = []
        u: str | None = start
        while u is not None and u in manager and state.get(u) is None:
            state[u] = 1
            path.append(u)
            u = manager[u]
        if u is not None and state.get(u) == 1:
            loop = path[path.index(u):]
            first = min(loop, key=lambda x: line[x])
            i = loop.index(first)
            loop = loop[i:] + loop[:i]
            chain = " → ".join(loop + [first])
            errors.append(f"第 {line[first]} 行：上级关系成环：{chain}")
        for x in path:
            state[x] = 2
    return errors


async def _apply(s: Any, tenant: str, people: list[_Person], report: RosterReport, *, write: bool) -> None:
    existing = {
        e.userid: e
        for e in (await s.execute(select(Employee).where(Employee.tenant == tenant))).scalars()
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for p in people:
        full, initials = name_keys(p.name)
        values = {
            "name": p.name, "department": p.department, "manager_userid": p.manager_userid,
            "roles": p.roles, "active": True, "pinyin": full, "initials": initials,
        }
        old = existing.get(p.userid)
        if old is None:
            report.added.append(p.userid)
            inserts.append({"tenant": tenant, "userid": p.userid, **values})
            continue
        changed = any(getattr(old, k) != v for k, v in values.items())
        if not old.active:
            report.reactivated.append(p.userid)
        elif changed:
            report.updated.append(p.userid)
        if changed:
            updates.append({"id": old.id, **values})
    in_file = {p.userid for p in people}
    for userid, old in existing.items():
        if old.active and userid not in in_file:
            report.deactivated.append(userid)
            updates.append({"id": old.id, "active": False})
    if not write:
        return

    if inserts:
        await s.execute(insert(Employee), inserts)
    # ORM bulk UPDATE by primary key, grouped by the set of columns each row changes.
    by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for u in updates:
        by_keys.setdefault(tuple(sorted(u)), []).append(u)
    for batch in by_keys.values():
        await s.execute(update(Employee), batch)
    if s.bind.dialect.name == "postgresql" and len(inserts) + len(updates) >= _ANALYZE_AFTER:
        # Fresh statistics, or the planner (still guessing a few dozen employees) picks
        # nested loops for the weekly figures until autovacuum gets round to it.
        await s.execute(text("ANALYZE employee"))

    have = set((await s.execute(select(Department.path).where(Department.tenant == tenant))).scalars())
    wanted = sorted({prefix for p in people for prefix in path_prefixes(p.department)})
    for path in wanted:
        if path not in have:
            await try_insert(s, Department, {"tenant": tenant, "path": path, "name": path.rsplit("/", 1)[-1]})
