"""The task line, due times and progress words people type (full-width punctuation and spaces are fine)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

from cards import texts
from handlers.dates import Calendar, DateError, as_datetime, find_due
from handlers.reply_grammar import fold_width
from store.statuses import TaskStatus
from store.tasks import normalize_task_code

# Longest first: in `完成了 报告` the deliverable is `报告`, not `了 报告`.
_STATUS_WORDS: tuple[tuple[str, TaskStatus], ...] = tuple(sorted((
    ("待开始", TaskStatus.TODO), ("未开始", TaskStatus.TODO),
    ("进行中", TaskStatus.DOING), ("开始", TaskStatus.DOING), ("在做", TaskStatus.DOING), ("处理中", TaskStatus.DOING), ("推进中", TaskStatus.DOING),
    ("阻塞", TaskStatus.BLOCKED), ("受阻", TaskStatus.BLOCKED), ("卡住", TaskStatus.BLOCKED), ("卡住了", TaskStatus.BLOCKED),
    ("已完成", TaskStatus.DONE), ("完成", TaskStatus.DONE), ("完成了", TaskStatus.DONE), ("已交付", TaskStatus.DONE),
    ("doing", TaskStatus.DOING), ("blocked", TaskStatus.BLOCKED), ("done", TaskStatus.DONE),
), key=lambda p: -len(p[0])))
# A deliverable has to say something: these say only that it is done.
VAGUE_DELIVERABLES = frozenset({"完成", "已完成", "好了", "好", "ok", "done", "已交付", "交付", "提交", "已提交",
                                 "见附件", "无", "-", "—", "搞定", "已搞定"})

_MENTION = re.compile(r"@\s*([^\s@,;:、，；：]+)")
# `交付:压测报告` / `deliverable: test report`, `原因:客户改期` / `reason: …` (after width folding).
_SEGMENT = re.compile(r"(交付物要求|交付物|交付|deliverable|原因|reason)\s*:", re.I)
_REASON_WORDS = frozenset({"原因", "reason"})
# What is trimmed off a title or a note people typed: spaces and the punctuation around them.
TRIM = "，,；; "
NOTE_TRIM = TRIM + ":："  # a note may also follow a colon: `进度 T12 阻塞：等采购`
# `原因：等供应商` / `because the supplier…`: the word in front of a reason is not part of it.
REASON_HEAD = re.compile(r"^(原因|因为|reason|because)\s*[:：]?\s*", re.I)
_CODE_HEAD = re.compile(r"\s*([A-Za-z][A-Za-z0-9_\-]*)\s*[:,]?\s*")


@dataclass
class TaskLine:
    """A `任务 …` line taken apart; nothing is looked up yet."""

    words: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    due: datetime | None = None  # naive tenant-local
    due_error: str = ""
    deliverable: str | None = None
    reason: str | None = None


def parse_due_text(text: str, today: date, default_time: time, calendar: Calendar | None = None, *,
                   locale: str = "zh") -> tuple[datetime | None, str, tuple[int, int] | None]:
    """Find a due time in free text: (naive local datetime, error, (start, end) of the match).

    `12-01 12:00`, `明天 18:00`, `周五`, `下周一下午3点`, `5号`, `月底` (the month's last working
    day on `calendar`). A day that is already past is an error asking whether next year (or
    month, or week) was meant: a due is never moved there in silence. Errors are in `locale`.
    """
    try:
        found = find_due(text, today, default_time, calendar)
    except DateError as exc:
        key = "task.due.invalid_time" if exc.code == "invalid_time" else "task.due.invalid_date"
        return None, texts.t(locale, key, token=exc.token), exc.at
    if found is None:
        return None, "", None
    if found.past and found.suggested is not None:
        suggested = f"{found.suggested[1].isoformat()} {(found.time or default_time):%H:%M}"
        return None, texts.t(locale, "date.past", token=found.token, suggested=suggested), found.at
    return as_datetime(found), "", found.at


def parse_task_line(text: str, today: date, default_time: time, calendar: Calendar | None = None, *,
                    locale: str = "zh") -> TaskLine:
    line = TaskLine()
    folded = fold_width(text)
    segs = list(_SEGMENT.finditer(folded))
    head_end = segs[0].start() if segs else len(text)
    for i, m in enumerate(segs):
        end = segs[i + 1].start() if i + 1 < len(segs) else len(text)
        value = " ".join(text[m.end():end].split()).strip(TRIM)
        if m.group(1).casefold() in _REASON_WORDS:
            line.reason = value
        else:
            line.deliverable = value
    head = list(text[:head_end])
    for m in _MENTION.finditer(folded[:head_end]):
        line.mentions.append(text[m.start(1):m.end(1)])
        head[m.start():m.end()] = [" "] * (m.end() - m.start())
    rest = "".join(head)
    due, error, span = parse_due_text(rest, today, default_time, calendar, locale=locale)
    if span is not None:
        line.due, line.due_error = due, error
        rest = rest[:span[0]] + " " + rest[span[1]:]
    line.words = rest.split()
    return line


def parse_progress(text: str) -> tuple[str | None, TaskStatus | None, str]:
    """'T12 阻塞 等采购确认' → ('T12', '阻塞', '等采购确认'); the code and the status may be missing."""
    folded = fold_width(text).strip()
    original = text.strip()
    code = None
    pos = 0
    m = _CODE_HEAD.match(folded)
    if m and m.group(1).casefold() not in {w for w, _ in _STATUS_WORDS}:
        code = normalize_task_code(m.group(1))
        pos = m.end()
    status = None
    low = folded[pos:].casefold()
    for word, value in _STATUS_WORDS:
        if low.startswith(word):
            status = value
            pos += len(word)
            break
    note = " ".join(original[pos:].split()).strip(NOTE_TRIM)
    return code, status, note
