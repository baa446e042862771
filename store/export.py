"""Weekly export: action rows, department figures and definitions, as XLSX or CSV."""
from __future__ import annotations

import csv
import os
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from bot.core.files import create_private, private_dir, private_file
from bot.core.clock import utcnow
from bot.core.calendar import normalize_week, week_days
from store.deliverables import deliverable_sheet_into
from store.trace import RECEIVABLE_HEADER, RECEIVABLE_MONEY, receivable_sheet, write_response_sheet
from store import competencies
from store import usage
from store.contributions import write_contribution_sheet
from store.db import Database
from store.live import counted_weeks
from store.models import ActionEdit, Employee, Goal, Leave, Tenant, WeeklyAction
from store.feedback import feedback_counts
from store.goal_changes import (
    CHANGE_HEADER, RATE_HEADER, WEIGHT_HEADER, CalibrationSheet, calibration_sheet, quarter_of,
)
from store.task_figures import DEFINITIONS as TASK_DEFINITIONS, HEADER as TASK_HEADER, task_figures_for_weeks
from store.pulse import DEFINITIONS, DeptFigures, action_status, department_figures
from bot.core.timeutil import aware

# One row per active person per week (and per action of someone who has left since),
# so HR can chase whoever is missing straight from the sheet.
ROW_HEADER = ["周", "周一", "工号", "姓名", "部门", "填写状态", "请假/跳过说明", "目标编号", "目标名称", "关键动作",
              "见证人", "见证人接受", "见证人确认", "动作状态", "完成时间", "确认时间", "修改次数"]
DEPT_HEADER = [
    "周", "部门", "人数", "请假/跳过", "已填写", "关键动作数", "已完成", "关联目标", "见证确认",
    "填写率", "完成率", "目标关联度", "见证确认率",
]
FILLED, MISSING, SKIPPED, ON_LEAVE = "已填写", "未填写", "跳过", "请假"
WITNESS_STATE = {"accepted": "已接受", "declined": "已拒绝", "invited": "未回应"}
# Column widths in characters (a CJK character is about two): wide enough for a full
# department path and a timestamp, so nothing shows as #### or is cut off.
_ROW_WIDTHS = [10, 12, 14, 10, 30, 10, 22, 11, 30, 44, 10, 11, 11, 10, 17, 17, 9]
_DEPT_WIDTHS = [10, 30, 7, 10, 8, 11, 8, 10, 10, 9, 9, 11, 11]
_TASK_WIDTHS = [8, 24, 24, 10, 10, 10, 11, 12, 10, 8, 11, 24]
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
    counted = counted_weeks(weeks, tenant.live_from)
    if not counted:
        raise ValueError(f"{weeks[-1]} 在上线日期 {tenant.live_from} 之前，没有可导出的周")
    weeks = counted
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
    """One list per person and week, in ROW_HEADER order; times are naive tenant-local datetimes.

    Everyone active is listed, filled in or not; someone who has left appears only
    for the weeks they filled in (their record stays, but they are chased no more).
    """
    a = WeeklyAction
    witness = aliased(Employee)
    edits = (
        select(ActionEdit.action_id, func.count(ActionEdit.id).label("n"))
        .where(ActionEdit.tenant == tenant)
        .group_by(ActionEdit.action_id)
        .subquery()
    )
    first, last = week_days(weeks[0])[0], week_days(weeks[-1])[-1]
    async with db.session() as s:
        leaves: dict[str, list[tuple[Any, Any, str, str]]] = {}
        for userid, start, end, kind, reason in (await s.execute(
                select(Leave.userid, Leave.start_day, Leave.end_day, Leave.kind, Leave.reason)
                .where(Leave.tenant == tenant, Leave.start_day <= last, Leave.end_day >= first)
                .order_by(Leave.start_day, Leave.id))).all():
            leaves.setdefault(userid, []).append((start, end, kind, reason))
        for week in weeks:
            days = week_days(week)
            # Columns, not ORM objects: a hundred thousand rows of identity-mapped objects cost seconds.
            stmt = (
                select(Employee.userid, Employee.name, Employee.department,
                       a.id, a.goal_code, a.thing, a.witness_userid, a.witness_state, a.status, a.done_at,
                       a.confirmed_at, Goal.title, witness.name, edits.c.n)
                .select_from(Employee)
                .outerjoin(a, and_(a.tenant == Employee.tenant, a.userid == Employee.userid, a.week == week))
                .outerjoin(witness, and_(witness.tenant == a.tenant, witness.userid == a.witness_userid))
                .outerjoin(Goal, and_(Goal.tenant == a.tenant, Goal.code == a.goal_code))
                .outerjoin(edits, edits.c.action_id == a.id)
                .where(Employee.tenant == tenant, or_(Employee.active.is_(True), a.id.is_not(None)))
                .order_by(Employee.department, Employee.userid)
                .execution_options(yield_per=1000)
            )
            result = await s.stream(stmt)
            async for (userid, name, dept, action_id, goal_code, thing, witness_userid, witness_state, status,
                       done_at, confirmed_at, goal_title, witness_name, n_edits) in result:
                away = [lv for lv in leaves.get(userid, ()) if lv[0] <= days[-1] and lv[1] >= days[0]]
                note = "；".join(_leave_note(lv) for lv in away)
                if action_id is None:
                    fill = (SKIPPED if all(lv[2] == "skip" for lv in away) else ON_LEAVE) if away else MISSING
                    yield [week, days[0], userid, name, dept or "", fill, note,
                           "", "", "", "", "", "", "", None, None, None]
                    continue
                yield [
                    week, days[0], userid, name, dept or "", FILLED, note, goal_code or "", goal_title or "",
                    thing, witness_name or witness_userid, WITNESS_STATE.get(witness_state, witness_state),
                    "是" if status == "confirmed" else "否", action_status(_Status(status), over[week]),
                    _local(done_at, tz), _local(confirmed_at, tz), int(n_edits or 0),
                ]


def _leave_note(leave: tuple[Any, Any, str, str]) -> str:
    start, end, kind, reason = leave
    if kind == "skip":
        return f"本周跳过{'：' + reason if reason else ''}"
    return f"请假 {start:%m-%d}~{end:%m-%d}{' ' + reason if reason else ''}"


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


_TEXT_COLUMNS = {2, 3, 4, 6, 7, 8, 9, 10}  # 工号 … 见证人: typed by people, so never formulas
_DATE_COLUMNS = {1}
_PERCENT = "0.0%"
_DATE = "yyyy-mm-dd"
_DATETIME = "yyyy-mm-dd hh:mm"
_DURATION = "[h]:mm"  # hours may pass 24: a day and a half shows as 36:00


def _layout(ws: Any, widths: list[float]) -> None:
    """Widths, a frozen header row and a printable page; a write-only sheet takes them before its first row."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties

    for i, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "A2"
    # Printed (or saved as PDF): landscape, all columns on one page width, the header on every page.
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = "9"  # A4
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.print_title_rows = "1:1"


async def _write_xlsx(
    db: Database, tenant: str, weeks: list[str], over: dict[str, bool], tz: ZoneInfo, path: Path,
    *, as_of: datetime,
) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")

    right = Alignment(horizontal="right")

    def header(ws: Any, names: list[str], numeric_from: int | None = None) -> None:
        """Bold names; over number columns right-aligned, so each sits above its figures."""
        cells = []
        for i, n in enumerate(names):
            c = WriteOnlyCell(ws, value=n)
            c.font = bold
            if numeric_from is not None and i >= numeric_from:
                c.alignment = right
            cells.append(c)
        ws.append(cells)

    def text_cell(ws: Any, value: str) -> Any:
        c = WriteOnlyCell(ws, value=value)
        c.data_type = "s"  # openpyxl would otherwise store "=…" as a formula
        return c

    def formatted(ws: Any, value: Any, number_format: str) -> Any:
        c = WriteOnlyCell(ws, value=value)
        c.number_format = number_format
        return c

    rows_ws = wb.create_sheet("明细")
    _layout(rows_ws, _ROW_WIDTHS)
    n_rows = 0
    header(rows_ws, ROW_HEADER)
    async for row in _action_rows(db, tenant, weeks, over, tz):
        cells: list[Any] = []
        for i, v in enumerate(row):
            if i in _TEXT_COLUMNS:
                # openpyxl turns only a text starting with "=" into a formula; the rest go in as
                # plain values, sparing a cell object each (most of the export's time at 100k rows).
                cells.append(text_cell(rows_ws, v) if v.startswith("=") else v)
            elif i in _DATE_COLUMNS:
                cells.append(formatted(rows_ws, v, _DATE))
            elif isinstance(v, datetime):
                cells.append(formatted(rows_ws, v, _DATETIME))
            else:
                cells.append(v)
        rows_ws.append(cells)
        n_rows += 1
    # A filter on every column: HR's first move is to pick 未填写 and chase.
    rows_ws.auto_filter.ref = f"A1:{get_column_letter(len(ROW_HEADER))}{n_rows + 1}"

    dept_ws = wb.create_sheet("部门指标")
    _layout(dept_ws, _DEPT_WIDTHS)
    header(dept_ws, DEPT_HEADER, numeric_from=2)
    async for week, f in _dept_rows(db, tenant, weeks):
        values = _dept_values(week, f)
        cells = [text_cell(dept_ws, v) if i == 1 else v for i, v in enumerate(values[:9])]
        cells += [formatted(dept_ws, rate, _PERCENT) for rate in values[9:]]
        dept_ws.append(cells)

    fb_ws = wb.create_sheet("反馈标签")
    _layout(fb_ws, [30, 16, 7])
    header(fb_ws, ["部门", "标签", "条数"], numeric_from=2)
    for dept, tag, n in await _feedback_rows(db, tenant, weeks, tz):
        fb_ws.append([text_cell(fb_ws, dept), text_cell(fb_ws, tag), n])

    task_ws = wb.create_sheet("任务交付")
    _layout(task_ws, _TASK_WIDTHS)
    header(task_ws, TASK_HEADER, numeric_from=3)
    rate_at, duration_at = TASK_HEADER.index("按时交付率"), len(TASK_HEADER) - 1
    for row in (await _task_figures(db, tenant, weeks, as_of)).rows():
        cells = []
        for i, v in enumerate(row):
            if i == rate_at:
                cells.append(formatted(task_ws, v, _PERCENT))
            elif i == duration_at:
                # Minutes as a fraction of a day: what Excel means by a duration.
                cells.append(formatted(task_ws, None if v is None else v / 1440, _DURATION))
            else:
                cells.append(text_cell(task_ws, v) if isinstance(v, str) else v)
        task_ws.append(cells)

    await deliverable_sheet_into(wb.create_sheet("交付物检查"), db, tenant, tz, header, text_cell, _layout)

    money_ws = wb.create_sheet("回款跟踪")
    _layout(money_ws, [10, 28, 30, 24, 14, 12, 10, 10, 30, 16, 14, 14])
    header(money_ws, RECEIVABLE_HEADER)
    async with db.session() as s:
        money = await receivable_sheet(s, tenant, as_of.astimezone(tz).date())
    for row in money:
        money_ws.append([formatted(money_ws, v, "#,##0.00") if i in RECEIVABLE_MONEY else formatted(money_ws, v, _DATE) if i == 5
                         else text_cell(money_ws, v) if isinstance(v, str) else v for i, v in enumerate(row)])
    await write_response_sheet(wb, db, tenant, weeks, tz)
    await write_contribution_sheet(wb, db, tenant, weeks, tz)
    comp_ws = wb.create_sheet("能力评估")
    _layout(comp_ws, [9, 14, 10, 30, 9, 16, 6, 6, 6, 9, 10])
    header(comp_ws, competencies.ASSESSMENT_HEADER, numeric_from=6)
    async with db.session() as s:
        periods = sorted({f"{d.year}Q{(d.month - 1) // 3 + 1}" for d in (week_days(w)[3] for w in weeks)})
        for row in await competencies.assessment_sheet(s, tenant, periods):
            comp_ws.append([text_cell(comp_ws, v) if isinstance(v, str) else v for v in row])
    cal_ws = wb.create_sheet("目标校准")
    _layout(cal_ws, [10, 28, 8, 14, 14, 7, 11, 24, 9, 16, 9, 8, 16, 11, 16, 10])
    header(cal_ws, CHANGE_HEADER)
    sheet = await _calibration(db, tenant, weeks, tz)
    for row in sheet.changes:
        cells = []
        for i, v in enumerate(row):
            if isinstance(v, datetime):
                cells.append(formatted(cal_ws, v, _DATETIME))
            elif isinstance(v, date):
                cells.append(formatted(cal_ws, v, _DATE))
            else:
                cells.append(text_cell(cal_ws, v) if isinstance(v, str) else v)
        cal_ws.append(cells)
    cal_ws.append([])
    header(cal_ws, RATE_HEADER, numeric_from=2)
    for row in sheet.rates:
        cal_ws.append([text_cell(cal_ws, v) if isinstance(v, str) else v for v in row[:4]]
                      + [formatted(cal_ws, row[4], _PERCENT)] + row[5:])
    cal_ws.append([])
    header(cal_ws, WEIGHT_HEADER, numeric_from=3)
    for row in sheet.weights:
        cal_ws.append([text_cell(cal_ws, v) if isinstance(v, str) else v for v in row])

    await usage.write_usage_sheet(wb, db, tenant, weeks, header=header, text_cell=text_cell, formatted=formatted)

    def_ws = wb.create_sheet("指标定义")
    _layout(def_ws, [22, 90])
    header(def_ws, ["指标", "定义"])
    definitions = [*ROW_DEFINITIONS, *DEFINITIONS, *TASK_DEFINITIONS,
                   ("回款跟踪", "审批通过的合同（企业微信审批、钉钉审批、Webhook、文件导入）各一行：金额、客户、回款日、"
                                "关联目标与来源事件；状态按导出日计算（未到期 / 已逾期 / 已回款）。"),
                   ("反馈标签", "按接收人当前部门统计所选周内记录的微反馈条数，按标签分组。"),
                   ("时间", f"完成时间、确认时间均为租户时区（{tz.key}）的当地时间。"),
                   ("修改次数", "关键动作在见证人确认前被修改（目标、内容、见证人）的次数。"),
                   ("能力评估", "所选周所在季度里自评与主管评估都已提交的人，每人每项重点能力一行：自评、主管评估、"
                                "对齐会确定的等级（L1–L3）、双方所附证据条数、对齐状态（待对齐 / 已对齐）。"),
                   *CALIBRATION_DEFINITIONS, *usage.DEFINITIONS]
    for name, text in definitions:
        c = WriteOnlyCell(def_ws, value=text)
        c.alignment = wrap
        def_ws.append([name, c])
    wb.save(path)


ROW_DEFINITIONS: list[tuple[str, str]] = [
    ("明细", "每周每位在职员工一行（已离职的人只在其填写过的周出现）；周一列为该周周一的日期。"),
    ("填写状态", "已填写：本周有关键动作；请假：没有关键动作且有请假与本周重叠；跳过：没有关键动作且本周选择了"
                 "“本周跳过”；未填写：其余在职的人。请假和跳过都不计入填写率的分母。"),
    ("请假/跳过说明", "与本周重叠的请假或跳过记录及其原因（填写了关键动作的人也照录）。"),
    ("见证人接受", "见证人对见证邀请的回应：已接受、已拒绝或未回应。"),
    ("见证人确认", "见证人是否已确认该关键动作完成（是 / 否）。"),
]


CALIBRATION_DEFINITIONS: list[tuple[str, str]] = [
    ("目标校准率", "本季度任一时间有效的二、三级目标（关键任务）中，至少有一项已批准、原因为市场、技术或政策的调整"
                   "（只改标题的不算，原因为其他的不算）的目标所占比例。健康线 15%，前 20% 企业为 22.7%。"
                   "按导出的最后一周结束时已批准的调整计算。"),
    ("事件→批准中位天数", "计入校准率的调整，从触发事件日期到批准日期的天数的中位数。"),
    ("周动作调整", "本季度关键动作在见证人确认前被修改的个数，单独统计，不计入目标校准率。"),
    ("时间加权权重", "目标在季度内各版本的权重按生效天数加权平均；期末权重为导出截止日有效的权重。"),
]


async def _calibration(db: Database, tenant: str, weeks: list[str], tz: ZoneInfo) -> CalibrationSheet:
    """The quarters the weeks fall in, as known at the end of the last week exported."""
    last_day = week_days(weeks[-1])[-1]
    quarters = sorted({quarter_of(d) for w in weeks for d in (week_days(w)[0], week_days(w)[-1])})
    upto = datetime.combine(last_day + timedelta(days=1), time(0), tz)
    async with db.session() as s:
        return await calibration_sheet(s, tenant, quarters, tz, upto)


async def _feedback_rows(db: Database, tenant: str, weeks: list[str], tz: ZoneInfo) -> list[tuple[str, str, int]]:

    async with db.session() as s:
        return await feedback_counts(s, tenant, weeks, tz)


async def _task_figures(db: Database, tenant: str, weeks: list[str], now: datetime) -> Any:

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
        if isinstance(v, date):
            return v.isoformat()
        if v is None:
            return ""
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
