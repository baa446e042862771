"""Weekly export: action rows, department figures and definitions, as XLSX or CSV."""
from __future__ import annotations

import csv
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased

from bot.core.files import create_private, private_dir, private_file
from bot.core.clock import utcnow
from bot.core.calendar import normalize_week, week_days
from store.db import Database
from store.models import ActionEdit, Employee, Goal, Tenant, WeeklyAction
from store.pulse import DEFINITIONS, DeptFigures, action_status, department_figures
from bot.core.timeutil import aware

ROW_HEADER = ["周", "工号", "姓名", "部门", "目标编号", "目标名称", "关键动作", "见证人", "状态", "完成时间", "确认时间", "修改次数"]
DEPT_HEADER = [
    "周", "部门", "人数", "请假跳过", "已填写", "关键动作数", "已完成", "关联目标", "见证确认",
    "填写率", "完成率", "目标关联度", "同事见证频次",
]
COMPANY = "全公司"
_TIME_FORMAT = "%Y-%m-%d %H:%M"
# A cell starting with one of these is run as a formula by Excel; user text must never be.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


async def export_weekly(
    db: Database, tenant_key: str, weeks: list[str], out: Path, *, now: datetime | None = None
) -> Path:
    """Write the weeks' actions and figures to `out` (.xlsx, or .csv plus `<stem>-departments.csv`).

    `now` decides which weeks are over (for 待见证 / 未完成); callers pass their clock's time.
    """
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".xlsx", ".csv"):
        raise ValueError(f"不支持的导出格式 {out.suffix or '（无扩展名）'}：请用 .xlsx 或 .csv")
    if not weeks:
        raise ValueError("请至少指定一周，例如 2026-W49")
    weeks = sorted({normalize_week(w) for w in weeks})
    async with db.session() as s:
        tenant = await s.get(Tenant, tenant_key)
    if tenant is None:
        raise ValueError(f"租户 {tenant_key!r} 不存在")
    tz = ZoneInfo(tenant.timezone)
    today = (now or utcnow()).astimezone(tz).date()
    over = {w: week_days(w)[-1] < today for w in weeks}

    private_dir(out.parent)
    tmp = out.with_name(out.name + ".part")
    try:
        if kind == ".xlsx":
            create_private(tmp)  # people's actions and figures: owner only, whatever the umask
            await _write_xlsx(db, tenant_key, weeks, over, tz, tmp, as_of=now or utcnow())
            private_file(tmp)
            os.replace(tmp, out)
        else:
            dept_path = out.with_name(f"{out.stem}-departments.csv")
            dept_tmp = dept_path.with_name(dept_path.name + ".part")
            try:
                create_private(tmp)
                create_private(dept_tmp)
                await _write_csv(db, tenant_key, weeks, over, tz, tmp, dept_tmp)
                os.replace(dept_tmp, dept_path)
            finally:
                dept_tmp.unlink(missing_ok=True)
            os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _safe(text: str | None) -> str:
    t = text or ""
    return "'" + t if t.startswith(_FORMULA_START) else t


def _local(dt: datetime | None, tz: ZoneInfo) -> datetime | None:
    if dt is None:
        return None
    return aware(dt).astimezone(tz).replace(tzinfo=None)


async def _action_rows(
    db: Database, tenant: str, weeks: list[str], over: dict[str, bool], tz: ZoneInfo
) -> AsyncIterator[list[Any]]:
    """One list per action, in ROW_HEADER order; times are naive tenant-local datetimes."""
    a = WeeklyAction
    owner = aliased(Employee)
    witness = aliased(Employee)
    edits = (
        select(ActionEdit.action_id, func.count(ActionEdit.id).label("n"))
        .where(ActionEdit.tenant == tenant)
        .group_by(ActionEdit.action_id)
        .subquery()
    )
    # Columns, not ORM objects: a hundred thousand rows of identity-mapped objects cost seconds.
    stmt = (
        select(a.week, a.userid, a.goal_code, a.thing, a.witness_userid, a.status, a.done_at, a.confirmed_at,
               owner.name, owner.department, Goal.title, witness.name, edits.c.n)
        .outerjoin(owner, and_(owner.tenant == a.tenant, owner.userid == a.userid))
        .outerjoin(witness, and_(witness.tenant == a.tenant, witness.userid == a.witness_userid))
        .outerjoin(Goal, and_(Goal.tenant == a.tenant, Goal.code == a.goal_code))
        .outerjoin(edits, edits.c.action_id == a.id)
        .where(a.tenant == tenant, a.week.in_(weeks))
        .order_by(a.week, owner.department, a.userid)
        .execution_options(yield_per=1000)
    )
    async with db.session() as s:
        result = await s.stream(stmt)
        async for (week, userid, goal_code, thing, witness_userid, status, done_at, confirmed_at,
                   name, dept, goal_title, witness_name, n_edits) in result:
            yield [
                week, userid, name or userid, dept or "", goal_code or "", goal_title or "",
                thing, witness_name or witness_userid, action_status(_Status(status), over[week]),
                _local(done_at, tz), _local(confirmed_at, tz), int(n_edits or 0),
            ]


class _Status:
    """What action_status reads of an action."""

    __slots__ = ("status",)

    def __init__(self, status: str) -> None:
        self.status = status


async def _dept_rows(db: Database, tenant: str, weeks: list[str]) -> AsyncIterator[tuple[str, DeptFigures]]:
    async with db.session() as s:
        for week in weeks:
            depts = await department_figures(s, tenant, week)
            total = DeptFigures(COMPANY)
            for d in depts:
                total.add(d)
                yield week, d
            yield week, total


def _dept_values(week: str, f: DeptFigures) -> list[Any]:
    return [
        week, f.dept, f.population, f.skipped, f.filled, f.actions, f.done, f.linked, f.confirmed,
        f.fill_rate, f.completion_rate, f.linkage_rate, f.witness_rate,
    ]


_TEXT_COLUMNS = {1, 2, 3, 4, 5, 6, 7}  # 工号 … 见证人: typed by people, so never formulas


async def _write_xlsx(
    db: Database, tenant: str, weeks: list[str], over: dict[str, bool], tz: ZoneInfo, path: Path,
    *, as_of: datetime,
) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    bold = Font(bold=True)

    def header(ws: Any, names: list[str]) -> None:
        cells = []
        for n in names:
            c = WriteOnlyCell(ws, value=n)
            c.font = bold
            cells.append(c)
        ws.append(cells)

    def text_cell(ws: Any, value: str) -> Any:
        c = WriteOnlyCell(ws, value=value)
        c.data_type = "s"  # openpyxl would otherwise store "=…" as a formula
        return c

    rows_ws = wb.create_sheet("明细")
    header(rows_ws, ROW_HEADER)
    async for row in _action_rows(db, tenant, weeks, over, tz):
        cells: list[Any] = []
        for i, v in enumerate(row):
            if i in _TEXT_COLUMNS:
                # openpyxl turns only a text starting with "=" into a formula; the rest go in as
                # plain values, sparing a cell object each (most of the export's time at 100k rows).
                cells.append(text_cell(rows_ws, v) if v.startswith("=") else v)
            elif isinstance(v, datetime):
                c = WriteOnlyCell(rows_ws, value=v)
                c.number_format = "yyyy-mm-dd hh:mm"
                cells.append(c)
            else:
                cells.append(v)
        rows_ws.append(cells)

    dept_ws = wb.create_sheet("部门指标")
    header(dept_ws, DEPT_HEADER)
    async for week, f in _dept_rows(db, tenant, weeks):
        values = _dept_values(week, f)
        cells = [text_cell(dept_ws, v) if i == 1 else v for i, v in enumerate(values[:9])]
        for rate in values[9:]:
            c = WriteOnlyCell(dept_ws, value=rate)
            c.number_format = "0.0%"
            cells.append(c)
        dept_ws.append(cells)

    fb_ws = wb.create_sheet("反馈标签")
    header(fb_ws, ["部门", "标签", "条数"])
    for dept, tag, n in await _feedback_rows(db, tenant, weeks, tz):
        fb_ws.append([text_cell(fb_ws, dept), text_cell(fb_ws, tag), n])

    from store.task_figures import DEFINITIONS as TASK_DEFINITIONS, HEADER as TASK_HEADER
    task_ws = wb.create_sheet("任务交付")
    header(task_ws, TASK_HEADER)
    for row in (await _task_figures(db, tenant, weeks, as_of)).rows():
        task_ws.append([text_cell(task_ws, v) if isinstance(v, str) else v for v in row])

    def_ws = wb.create_sheet("指标定义")
    header(def_ws, ["指标", "定义"])
    for name, text in [*DEFINITIONS, *TASK_DEFINITIONS]:
        def_ws.append([name, text])
    def_ws.append(["反馈标签", "按接收人当前部门统计所选周内记录的微反馈条数，按标签分组。"])
    def_ws.append(["时间", f"完成时间、确认时间均为租户时区（{tz.key}）的当地时间。"])
    def_ws.append(["修改次数", "关键动作在见证人确认前被修改（目标、内容、见证人）的次数。"])
    wb.save(path)


async def _feedback_rows(db: Database, tenant: str, weeks: list[str], tz: ZoneInfo) -> list[tuple[str, str, int]]:
    from store.feedback import feedback_counts

    async with db.session() as s:
        return await feedback_counts(s, tenant, weeks, tz)


async def _task_figures(db: Database, tenant: str, weeks: list[str], now: datetime) -> Any:
    from store.task_figures import task_figures_for_weeks

    return await task_figures_for_weeks(db, tenant, weeks, now=now)


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


async def _write_csv(
    db: Database, tenant: str, weeks: list[str], over: dict[str, bool], tz: ZoneInfo,
    rows_path: Path, dept_path: Path,
) -> None:
    def cell(i: int, v: Any) -> Any:
        if isinstance(v, datetime):
            return v.strftime(_TIME_FORMAT)
        return _safe(v) if i in _TEXT_COLUMNS else v

    # utf-8-sig: the BOM is what makes Excel read the file as UTF-8 instead of GBK.
    with rows_path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(ROW_HEADER)
        async for row in _action_rows(db, tenant, weeks, over, tz):
            w.writerow([cell(i, v) for i, v in enumerate(row)])

    fmt: list[Callable[[Any], Any]] = [str, _safe] + [int] * 7 + [_pct] * 4
    with dept_path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(DEPT_HEADER)
        async for week, f in _dept_rows(db, tenant, weeks):
            w.writerow([conv(v) for conv, v in zip(fmt, _dept_values(week, f))])
