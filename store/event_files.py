"""File drops: a CSV or XLSX of events from any system, one row an event, re-importable.

Columns: `id` (required, the source's own id: what makes a re-import add nothing), and
optionally type, person, occurred_at, code, status, title, link; every other column is a form
field (合同金额, 客户名称, 回款日期 …) the mapping rules read.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from store import external_events as ext
from store.db import Database

KNOWN = ("id", "type", "person", "occurred_at", "code", "status", "title", "link")
MAX_ROWS = 50_000


@dataclass
class FileReport:
    added: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.errors:
            return "未导入（文件有误，什么都没写入）/ nothing imported:\n" + "\n".join(self.errors[:20])
        return f"新增 {self.added} 条事件，已有 {self.unchanged} 条未变 / {self.added} added, {self.unchanged} already there"


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).active
        values = [list(r) for r in sheet.iter_rows(values_only=True)] if sheet is not None else []
        if not values:
            return []
        head = [str(h or "").strip() for h in values[0]]
        return [{h: v for h, v in zip(head, r) if h} for r in values[1:] if any(c not in (None, "") for c in r)]
    text = path.read_bytes().decode("utf-8-sig")
    return [dict(r) for r in csv.DictReader(io.StringIO(text)) if any((v or "").strip() for v in r.values())]


def _when(v: Any, tz: ZoneInfo, now: datetime) -> datetime:
    if v in (None, ""):
        return now
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=tz)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=tz)
    dt = datetime.fromisoformat(str(v).strip().replace("/", "-"))
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


async def import_events(db: Database, tenant: str, path: Path, source: str, *, tz: ZoneInfo,
                        now: datetime) -> FileReport:
    """All rows or none: a file with a bad row writes nothing and says which line."""
    report = FileReport()
    try:
        rows = _rows(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        report.errors.append(f"{path.name}: cannot read ({type(exc).__name__})")
        return report
    if rows and "id" not in rows[0]:
        report.errors.append("第1行：缺少 id 列 / the header has no id column")
        return report
    if len(rows) > MAX_ROWS:
        report.errors.append(f"more than {MAX_ROWS} rows")
        return report
    items: list[ext.Incoming] = []
    for n, r in enumerate(rows, start=2):
        eid = str(r.get("id") or "").strip()
        if not eid:
            report.errors.append(f"第{n}行：id 为空 / line {n}: empty id")
            continue
        try:
            when = _when(r.get("occurred_at"), tz, now)
        except ValueError:
            report.errors.append(f"第{n}行：occurred_at 不是日期时间 / line {n}: occurred_at is not a date-time")
            continue
        fields = {k: ("" if v is None else v if isinstance(v, (int, float)) else str(v))
                  for k, v in r.items() if k not in KNOWN and k}
        items.append(ext.Incoming(source=source, external_id=eid, type=str(r.get("type") or "event"),
                                  person=str(r.get("person") or "").strip(), occurred_at=when,
                                  code=str(r.get("code") or ""), status=str(r.get("status") or ""),
                                  title=str(r.get("title") or ""), link=str(r.get("link") or ""), fields=fields))
    if report.errors:
        return report
    async with db.transaction() as s:
        for item in items:
            if await ext.ingest_in(s, tenant, item, now):
                report.added += 1
            else:
                report.unchanged += 1
    return report
