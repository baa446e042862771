"""Goals (三级动线, levels 1–2): import with adjustment history, code normalisation, lookup.

A re-import's changes go through the same log as changes made in chat (store/goal_changes.py),
approved by the importer; setting a goal up is not an adjustment and is not logged."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from store.import_report import ImportReport
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.goal_changes import CAUSES, record_version
from store.models import Goal, GoalAdjustment, Tenant
from store.roster import TableError, department_path, read_table

GOAL_COLUMNS = ("code", "title", "parent_code", "department", "weight", "period")
REASONS = CAUSES
# Level 3 is the personal weekly action, which is never imported as a goal.
MAX_GOAL_LEVEL = 2
FUZZY_THRESHOLD = 80
# The best title must beat the runner-up by this much, or the match is ambiguous.
FUZZY_MARGIN = 10

_GROUP = r"[A-Z]{1,3}\d{1,3}"
_CODE = re.compile(rf"^#?({_GROUP})(?:[-_.–—]?({_GROUP})){{0,3}}$")
_GROUPS = re.compile(_GROUP)
_PERIOD = re.compile(r"^(\d{4})Q([1-4])$")


def normalize_goal_code(s: str) -> str | None:
    """'o1kr2', '#O1-KR2', 'O1_kr2' → 'O1-KR2'; '#o1' → 'O1'; None if not code-shaped."""
    if not isinstance(s, str):
        return None
    # NFKC folds full-width letters, digits, '＃' and '－' typed on Chinese keyboards.
    t = unicodedata.normalize("NFKC", s).strip().upper()
    if not _CODE.match(t):
        return None
    return "-".join(_GROUPS.findall(t))


def _fmt_weight(w: float) -> str:
    return str(int(w)) if float(w).is_integer() else f"{w:g}"


@dataclass
class GoalReport(ImportReport):
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    # (code, field_name, old, new) — the changes; all but "new" are written as GoalAdjustment rows
    adjustments: list[tuple[str, str, str, str]] = field(default_factory=list)

    def summary(self) -> str:
        if self.errors:
            return self.refused("目标文件")
        prefix, verb = self.prefix, self.verb
        parts = []
        groups = (("新增", self.added), ("调整", self.updated), ("取消", self.cancelled), ("恢复", self.reactivated))
        for label, codes in groups:
            if codes:
                parts.append(f"{verb}{label} {len(codes)} 个目标：{'、'.join(codes)}")
        if not parts:
            return prefix + "目标与现有数据一致，没有变化"
        lines = [prefix + parts[0], *parts[1:]]
        labels = {"title": "名称", "weight": "权重", "parent_code": "上级", "department": "部门", "period": "周期"}
        for code, name, old, new in self.adjustments:
            if name in labels:
                lines.append(f"  {code} {labels[name]}：{old or '（空）'} → {new or '（空）'}")
        return "\n".join(lines)


@dataclass
class _Row:
    line: int
    code: str
    title: str
    parent_code: str | None
    department: str
    weight: float
    period: str
    level: int = 0


async def import_goals(
    db: Database,
    tenant_key: str,
    path: Path,
    *,
    now: datetime,
    dry_run: bool = False,
    by_userid: str = "",
    reason: str = "其他",
) -> GoalReport:
    """Upsert goals from a CSV/XLSX file; all or nothing; every change kept as a GoalAdjustment.

    Goals of a period named in the file that the file no longer lists are cancelled.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    async with db.session() as s:
        tenant_row = await s.get(Tenant, tenant_key)
        if tenant_row is None:
            raise ValueError(f"租户 {tenant_key!r} 不存在：请先在配置文件中添加该租户并初始化")
        tz = ZoneInfo(tenant_row.timezone or "Asia/Shanghai")
    report = GoalReport(dry_run=dry_run)
    if reason not in REASONS:
        report.errors.append(f"调整原因 \"{reason}\" 无效，可选：{'、'.join(REASONS)}")
        return report
    try:
        table = read_table(path, GOAL_COLUMNS)
    except TableError as exc:
        report.errors = exc.errors
        return report
    rows, row_errors, named = _parse_rows(table)

    if dry_run:
        async with db.session() as s:
            await _plan(s, tenant_key, rows, named, row_errors, report)
        return report
    async with db.transaction() as s:
        existing = await _plan(s, tenant_key, rows, named, row_errors, report)
        if report.errors:
            return report
        await _write(s, tenant_key, rows, existing, report, now=now, by_userid=by_userid, reason=reason, tz=tz)
    return report


def _parse_rows(table: list[tuple[int, dict[str, str]]]) -> tuple[list[_Row], list[str], set[str]]:
    """Valid rows, errors, and every well-formed code the file names (bad rows included)."""
    errors: list[str] = []
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for line, r in table:
        bad = False
        code = normalize_goal_code(r["code"])
        if not r["code"]:
            errors.append(f"第 {line} 行：目标编号（code）为空")
            bad = True
        elif code is None:
            errors.append(f"第 {line} 行：目标编号 \"{r['code']}\" 格式不对，应如 O1 或 O1-KR2")
            bad = True
        elif code in seen:
            errors.append(f"第 {line} 行：目标编号 {code} 与第 {seen[code]} 行重复")
            bad = True
        else:
            seen[code] = line
        if not r["title"]:
            errors.append(f"第 {line} 行：目标名称（title）为空")
            bad = True
        parent = None
        if r["parent_code"]:
            parent = normalize_goal_code(r["parent_code"])
            if parent is None:
                errors.append(f"第 {line} 行：上级编号 \"{r['parent_code']}\" 格式不对，应如 O1")
                bad = True
            elif parent == code:
                errors.append(f"第 {line} 行：上级编号不能是目标本身（{code}）")
                bad = True
        dept = ""
        if r["department"]:
            dept = department_path(r["department"]) or ""
            if not dept:
                errors.append(f"第 {line} 行：部门路径 \"{r['department']}\" 有空的层级，应写成 总部/研发中心/注册部")
                bad = True
        weight = _parse_weight(r["weight"])
        if weight is None:
            errors.append(f"第 {line} 行：权重 \"{r['weight']}\" 应为 0 到 100 之间的数字")
            bad = True
        period = r["period"].strip().upper()
        if not period:
            errors.append(f"第 {line} 行：周期（period）为空，应如 2026Q4")
            bad = True
        elif not _PERIOD.match(period):
            errors.append(f"第 {line} 行：周期 \"{r['period']}\" 格式不对，应如 2026Q4")
            bad = True
        if not bad:
            rows.append(_Row(line, code or "", r["title"], parent, dept, weight or 0.0, period))
    return rows, errors, set(seen)


def _parse_weight(text: str) -> float | None:
    """'30', '12.5', '30%' → number; blank → 0; None when not a number in 0..100."""
    t = text.strip().rstrip("%％").strip()
    if not t:
        return 0.0
    try:
        w = float(t)
    except ValueError:
        return None
    return w if 0 <= w <= 100 else None


async def _plan(
    s: AsyncSession, tenant: str, rows: list[_Row], named: set[str], row_errors: list[str], report: GoalReport
) -> dict[str, Goal]:
    """Check the file against the stored goals and fill the report; returns the stored goals.

    `named` holds the codes of rows that failed their own checks too, so that their
    children are not also reported as orphans.
    """
    existing = {g.code: g for g in (await s.execute(select(Goal).where(Goal.tenant == tenant))).scalars()}
    in_file = {r.code: r for r in rows}
    periods = {r.period for r in rows}
    # Goals this import cancels: active, of a period the file covers, not in the file.
    to_cancel = {
        code for code, g in existing.items()
        if g.status == "active" and g.period in periods and code not in named
    }
    surviving = {code for code, g in existing.items() if g.status == "active" and code not in to_cancel}

    errors = row_errors + _cycles(rows, in_file)
    if len(errors) > len(row_errors):
        report.errors = sorted(errors, key=_line_of)
        return existing
    for r in rows:
        _assign_level(r, in_file, named, existing, surviving, to_cancel, errors)
    for r in rows:
        if r.level > MAX_GOAL_LEVEL:
            errors.append(
                f"第 {r.line} 行：{r.code} 将成为第 {r.level} 级目标；目标最多两级（公司目标 → 部门关键任务）"
            )
    # Stored goals left untouched must still hang under a valid, live parent.
    for code in sorted(surviving - set(in_file)):
        g = existing[code]
        if g.parent_code in in_file and in_file[g.parent_code].level >= MAX_GOAL_LEVEL:
            errors.append(f"{g.parent_code} 将成为第 {in_file[g.parent_code].level} 级目标，但已有下级目标 {code}")
        if g.parent_code in to_cancel:
            errors.append(f"目标 {g.parent_code} 将被取消，但其下级目标 {code}（{g.period}）仍有效")
    if errors:
        report.errors = sorted(dict.fromkeys(errors), key=_line_of)
        return existing

    for r in rows:
        g = existing.get(r.code)
        if g is None:
            report.added.append(r.code)
            report.adjustments.append((r.code, "new", "", r.title))
            continue
        changes = _changes(g, r)
        if g.status != "active":
            report.reactivated.append(r.code)
            report.adjustments.append((r.code, "status", g.status, "active"))
        elif changes:
            report.updated.append(r.code)
        report.adjustments.extend((r.code, name, old, new) for name, old, new in changes)
    for code in sorted(to_cancel):
        report.cancelled.append(code)
        report.adjustments.append((code, "cancelled", "active", "cancelled"))
    return existing


def _line_of(message: str) -> int:
    m = re.match(r"第 (\d+) 行", message)
    return int(m.group(1)) if m else 0


def _cycles(rows: list[_Row], in_file: dict[str, _Row]) -> list[str]:
    errors = []
    reported: set[str] = set()
    for r in rows:
        chain = [r.code]
        parent = r.parent_code
        while parent in in_file and parent not in chain:
            chain.append(parent)
            parent = in_file[parent].parent_code
        if parent in chain:
            loop = chain[chain.index(parent):]
            if not reported.intersection(loop):
                reported.update(loop)
                first = min(loop, key=lambda c: in_file[c].line)
                i = loop.index(first)
                loop = loop[i:] + loop[:i]
                errors.append(f"第 {in_file[first].line} 行：上级关系成环：{' → '.join(loop + [first])}")
    return sorted(errors, key=_line_of)


def _assign_level(
    r: _Row, in_file: dict[str, _Row], named: set[str], existing: dict[str, Goal], surviving: set[str],
    to_cancel: set[str], errors: list[str],
) -> None:
    """Level from the parent chain (the file has no cycles by now); reports a missing top parent."""
    depth, top = 1, r
    while top.parent_code is not None and top.parent_code in in_file:
        top = in_file[top.parent_code]
        depth += 1
    if top.parent_code is None:
        r.level = depth
        return
    if top.parent_code in named:
        r.level = 0  # hangs under a row that failed its own checks: unknown, already reported
        return
    stored = existing.get(top.parent_code)
    if top is r:  # report a missing parent once, on the row naming it
        if stored is None:
            errors.append(f"第 {r.line} 行：上级目标 {r.parent_code} 不存在（文件和系统中都没有）")
        elif r.parent_code not in surviving:
            why = "本次导入会取消它（同一周期的文件中没有它）" if r.parent_code in to_cancel else "它已取消"
            errors.append(f"第 {r.line} 行：上级目标 {r.parent_code} 不可用：{why}")
    r.level = depth + (stored.level if stored is not None else 1)


def _changes(g: Goal, r: _Row) -> list[tuple[str, str, str]]:
    out = []
    if g.title != r.title:
        out.append(("title", g.title, r.title))
    if float(g.weight) != r.weight:
        out.append(("weight", _fmt_weight(g.weight), _fmt_weight(r.weight)))
    if (g.parent_code or None) != r.parent_code:
        out.append(("parent_code", g.parent_code or "", r.parent_code or ""))
    if g.department != r.department:
        out.append(("department", g.department, r.department))
    if g.period != r.period:
        out.append(("period", g.period, r.period))
    return out


async def _write(
    s: AsyncSession, tenant: str, rows: list[_Row], existing: dict[str, Goal], report: GoalReport,
    *, now: datetime, by_userid: str, reason: str, tz: ZoneInfo,
) -> None:
    today = now.astimezone(tz).date()
    changed = {code for code, *_ in report.adjustments}
    touched: list[Goal] = []
    for r in rows:
        g = existing.get(r.code)
        if g is None:
            g = Goal(tenant=tenant, code=r.code, title=r.title)
            s.add(g)
        g.title, g.parent_code, g.department = r.title, r.parent_code, r.department
        g.weight, g.period, g.level, g.status = r.weight, r.period, r.level, "active"
        if r.code in changed:
            touched.append(g)
    for code in report.cancelled:
        existing[code].status = "cancelled"
        touched.append(existing[code])
    await s.flush()
    for g in touched:
        # A goal set up by the file holds from the start; a changed one from today (closed weeks keep theirs).
        await record_version(s, g, None if g.code in report.added else today)
    for code, name, old, new in report.adjustments:
        if name == "new":
            continue  # setting a goal up is planning, not an adjustment
        s.add(GoalAdjustment(
            tenant=tenant, goal_code=code, by_userid=by_userid, at=now,
            field_name=name, old_value=old, new_value=new, reason=reason,
            status="approved", decided_by=by_userid, decided_at=now, effective_from=today,
        ))


async def goal_by_code(session: AsyncSession, tenant: str, code: str) -> Goal | None:
    """The goal stored under exactly this code, whatever its status."""
    return (await session.execute(select(Goal).where(Goal.tenant == tenant, Goal.code == code))).scalar_one_or_none()


async def active_goals(session: AsyncSession, tenant: str) -> list[Goal]:
    """The tenant's active goals, company goals before department goals, then by code."""
    return list((await session.execute(select(Goal).where(
        Goal.tenant == tenant, Goal.status == "active").order_by(Goal.level.desc(), Goal.code))).scalars())


async def find_goal(session: AsyncSession, tenant: str, text: str) -> Goal | None:
    """The active goal meant by `text`: its code (tolerantly), else one clearly best-matching title."""
    text = (text or "").strip()
    if not text:
        return None
    code = normalize_goal_code(text)
    if code is not None:
        found = (await session.execute(
            select(Goal).where(Goal.tenant == tenant, Goal.code == code, Goal.status == "active")
        )).scalar_one_or_none()
        if found is not None:
            return found
    query = default_process(text.lstrip("#"))
    if len(query.replace(" ", "")) < 2:
        return None  # one character is contained in too many titles to mean anything
    goals = list((await session.execute(
        select(Goal).where(Goal.tenant == tenant, Goal.status == "active")
    )).scalars())
    scored = sorted(
        ((_title_score(query, g.title), g) for g in goals), key=lambda x: x[0], reverse=True
    )
    if not scored or scored[0][0] < FUZZY_THRESHOLD:
        return None
    if len(scored) > 1 and scored[1][0] >= FUZZY_THRESHOLD and scored[0][0] - scored[1][0] < FUZZY_MARGIN:
        return None
    return scored[0][1]


def _title_score(query: str, title: str) -> float:
    t = default_process(title)
    return max(fuzz.partial_ratio(query, t), fuzz.WRatio(query, t))

