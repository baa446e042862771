"""Competencies (能力): the library with its L1–L3 behaviour anchors, who is assessed on which, the
self and manager assessments of a period, calibration (对齐会) and the learning link.

Levels are 1–3 (L1 能复述客户原话 → L2 能归纳隐性需求 → L3 能设计验证话术). An assessment is a draft
until submitted; the other side's ratings are shown to nobody before both sides have submitted
(no anchoring), so every reader of ratings goes through `revealed()`.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from sqlalchemy import JSON, Column, Text, UniqueConstraint, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from store.db import Database
from store.import_report import ImportReport
from store.models import BigId, Department, Employee, _ts
from store.roster import TableError, department_path, path_prefixes, read_table

LEVELS = (1, 2, 3)
SELF, MANAGER = "self", "manager"
DRAFT, SUBMITTED = "draft", "submitted"
MIN_FOCUS, MAX_FOCUS = 3, 5
# With no focus row for a person's department, they are assessed on the library's first codes.
DEFAULT_FOCUS = 3


class Competency(SQLModel, table=True):
    __tablename__ = "competency"
    __table_args__ = (UniqueConstraint("tenant", "code"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    code: str = Field(max_length=20)  # C03
    name: str
    category: str = ""
    l1: str = Field(sa_column=Column(Text, nullable=False))  # the observable behaviour of each level
    l2: str = Field(sa_column=Column(Text, nullable=False))
    l3: str = Field(sa_column=Column(Text, nullable=False))

    def anchor(self, level: int) -> str:
        return {1: self.l1, 2: self.l2, 3: self.l3}[level]


class CompetencyFocus(SQLModel, table=True):
    """The 3–5 competencies the people of a department (and its sub-departments) are assessed on."""

    __tablename__ = "competency_focus"
    __table_args__ = (UniqueConstraint("tenant", "department"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    department: str
    codes: str  # ';'-joined, in the order they are asked


class Assessment(SQLModel, table=True):
    """One side's assessment of one person for one period (self: the person; manager: their reviewer)."""

    __tablename__ = "competency_assessment"
    __table_args__ = (UniqueConstraint("tenant", "period", "subject_userid", "side"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    period: str = Field(max_length=8)  # 2026Q4
    subject_userid: str
    assessor_userid: str
    side: str = Field(max_length=8)  # self | manager
    state: str = DRAFT  # draft | submitted
    codes: str = ""  # ';'-joined: the focus competencies when the assessment was opened
    created_at: datetime = _ts(nullable=False)
    submitted_at: Optional[datetime] = _ts()


class Rating(SQLModel, table=True):
    __tablename__ = "competency_rating"
    __table_args__ = (UniqueConstraint("assessment_id", "code"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    assessment_id: int = Field(index=True)
    code: str
    level: int
    # ["feedback:12", "action:3", "task:7"]: records of the subject's own period
    evidence: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    at: datetime = _ts(nullable=False)


class Calibration(SQLModel, table=True):
    """A calibration meeting (对齐会) of one person and period, and why it was called."""

    __tablename__ = "competency_calibration"
    __table_args__ = (UniqueConstraint("tenant", "period", "subject_userid"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    period: str = Field(max_length=8)
    subject_userid: str
    manager_userid: str
    # [{"code": "C03", "why": "gap2" | "direction" | "l3_untagged"}]
    reasons: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    state: str = "open"  # open | held
    opened_at: datetime = _ts(nullable=False)
    due_on: str = ""  # the local day by which it should be held (working days later)
    reminded_at: Optional[datetime] = _ts()
    hr_told_at: Optional[datetime] = _ts()
    held_at: Optional[datetime] = _ts()


class AgreedLevel(SQLModel, table=True):
    __tablename__ = "competency_agreed"
    __table_args__ = (UniqueConstraint("tenant", "period", "subject_userid", "code"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    calibration_id: int = Field(index=True)
    period: str = Field(max_length=8)
    subject_userid: str
    code: str
    level: int
    note: str = ""
    by_userid: str
    at: datetime = _ts(nullable=False)


class LearningCourse(SQLModel, table=True):
    __tablename__ = "learning_course"
    __table_args__ = (UniqueConstraint("tenant", "competency", "title"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    competency: str
    level: int
    title: str
    url: str


class LearningMark(SQLModel, table=True):
    """已学 / 有用 / 没用 pressed on a course of a learning card."""

    __tablename__ = "learning_mark"
    __table_args__ = (UniqueConstraint("tenant", "userid", "course_id", "mark"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    userid: str
    course_id: int
    mark: str  # done | useful | useless
    at: datetime = _ts(nullable=False)


class CaseConsent(SQLModel, table=True):
    """A person allowing the feedback they received to be shown to colleagues as a success case."""

    __tablename__ = "case_consent"
    __table_args__ = (UniqueConstraint("tenant", "userid"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    userid: str
    allowed: bool = False
    at: datetime = _ts(nullable=False)


def utc(at: datetime) -> datetime:
    return at.astimezone(timezone.utc)


def level_of(text: str) -> int | None:
    """'L2', 'l2', 'Ｌ２', '2', '二级' → 2; None otherwise."""
    t = unicodedata.normalize("NFKC", text or "").strip().casefold().rstrip("。.!！ ")
    t = {"一级": "1", "二级": "2", "三级": "3", "一": "1", "二": "2", "三": "3"}.get(t, t)
    m = re.fullmatch(r"l?\s*([1-3])(?:级)?", t)
    return int(m.group(1)) if m else None


# -- the library -------------------------------------------------------------------------------

async def library(session: AsyncSession, tenant: str) -> dict[str, Competency]:
    rows = (await session.execute(select(Competency).where(Competency.tenant == tenant)
                                  .order_by(Competency.code))).scalars()
    return {c.code: c for c in rows}


async def focus_codes(session: AsyncSession, tenant: str, department: str) -> list[str]:
    """The focus competencies of a department path: the longest configured path above it wins."""
    lib = await library(session, tenant)
    rows = {f.department: f.codes for f in (await session.execute(select(CompetencyFocus).where(
        CompetencyFocus.tenant == tenant))).scalars()}
    for prefix in sorted(path_prefixes(department) if department else [], key=len, reverse=True):
        if prefix in rows:
            return [c for c in rows[prefix].split(";") if c in lib]
    return list(lib)[:DEFAULT_FOCUS]


@dataclass
class LibraryReport(ImportReport):
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    what: str = "能力库文件"
    noun: str = "项能力"

    def summary(self) -> str:
        if self.errors:
            return self.refused(self.what)
        return (f"{self.prefix}{self.verb}导入：新增 {len(self.added)} {self.noun}，"
                f"更新 {len(self.updated)} {self.noun}")


LIBRARY_COLUMNS = ("code", "name", "category", "l1", "l2", "l3")
FOCUS_COLUMNS = ("department", "codes")
LEARNING_COLUMNS = ("competency", "level", "title", "url")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


def _table(path: Path, columns: tuple[str, ...], report: ImportReport) -> list[tuple[int, dict[str, str]]] | None:
    try:
        return read_table(path, columns)
    except TableError as exc:
        report.errors = exc.errors
        return None


async def import_library(db: Database, tenant: str, path: Path, *, dry_run: bool = False) -> LibraryReport:
    """`code,name,category,L1,L2,L3`: added or updated by code; a file with any bad row changes nothing."""
    report = LibraryReport(dry_run=dry_run)
    rows = _table(path, LIBRARY_COLUMNS, report)
    if rows is None:
        return report
    seen: dict[str, int] = {}
    parsed: list[dict[str, str]] = []
    for line, r in rows:
        code = r["code"].upper()
        if not _CODE.match(code):
            report.errors.append(f"第 {line} 行：能力编码 {r['code'] or '（空）'} 不对，应为字母数字，如 C03")
            continue
        if code in seen:
            report.errors.append(f"第 {line} 行：能力编码 {code} 与第 {seen[code]} 行重复")
            continue
        seen[code] = line
        if not r["name"]:
            report.errors.append(f"第 {line} 行：{code} 缺少名称")
        missing = [lv.upper() for lv in ("l1", "l2", "l3") if not r[lv]]
        if missing:
            report.errors.append(f"第 {line} 行：{code} 缺少 {'、'.join(missing)} 的行为描述（每级都要写可观察的行为）")
        parsed.append({**r, "code": code})
    if report.errors or not parsed:
        if not report.errors:
            report.errors.append("文件里没有能力")
        return report
    async with db.transaction() as s:
        have = await library(s, tenant)
        for r in parsed:
            row = have.get(r["code"])
            (report.updated if row else report.added).append(r["code"])
            if dry_run:
                continue
            row = row or Competency(tenant=tenant, code=r["code"], name="", l1="", l2="", l3="")
            row.name, row.category, row.l1, row.l2, row.l3 = r["name"], r["category"], r["l1"], r["l2"], r["l3"]
            s.add(row)
    return report


async def import_focus(db: Database, tenant: str, path: Path, *, dry_run: bool = False) -> LibraryReport:
    """`department,codes`: the whole focus table of the tenant is replaced by the file's."""
    report = LibraryReport(dry_run=dry_run, what="重点能力文件", noun="个部门")
    rows = _table(path, FOCUS_COLUMNS, report)
    if rows is None:
        return report
    async with db.transaction() as s:
        lib = await library(s, tenant)
        depts = set((await s.execute(select(Department.path).where(Department.tenant == tenant))).scalars())
        depts |= {d for d in (await s.execute(select(Employee.department).where(Employee.tenant == tenant))).scalars()}
        seen: dict[str, int] = {}
        parsed: list[tuple[str, list[str]]] = []
        for line, r in rows:
            dept = department_path(r["department"])
            if dept is None or dept not in depts:
                report.errors.append(f"第 {line} 行：没有部门 {r['department'] or '（空）'}")
                continue
            if dept in seen:
                report.errors.append(f"第 {line} 行：部门 {dept} 与第 {seen[dept]} 行重复")
                continue
            seen[dept] = line
            codes = [c.strip().upper() for c in re.split(r"[;；,，、]", r["codes"]) if c.strip()]
            unknown = [c for c in codes if c not in lib]
            if unknown:
                report.errors.append(f"第 {line} 行：能力库里没有 {'、'.join(unknown)}")
                continue
            if len(set(codes)) != len(codes):
                report.errors.append(f"第 {line} 行：同一能力写了两次")
                continue
            if not MIN_FOCUS <= len(codes) <= MAX_FOCUS:
                report.errors.append(f"第 {line} 行：每个部门选 {MIN_FOCUS}–{MAX_FOCUS} 项重点能力，这里是 {len(codes)} 项")
                continue
            parsed.append((dept, codes))
        if not report.errors and not parsed:
            report.errors.append("文件里没有部门")
        if report.errors:
            return report
        old = {f.department for f in (await s.execute(select(CompetencyFocus).where(
            CompetencyFocus.tenant == tenant))).scalars()}
        for dept, _codes in parsed:
            (report.updated if dept in old else report.added).append(dept)
        if not dry_run:
            await s.execute(delete(CompetencyFocus).where(CompetencyFocus.tenant == tenant))
            for dept, codes in parsed:
                s.add(CompetencyFocus(tenant=tenant, department=dept, codes=";".join(codes)))
    return report


async def import_learning(db: Database, tenant: str, path: Path, *, dry_run: bool = False) -> LibraryReport:
    """`competency,level,title,url`: micro-courses, added or updated by (competency, title)."""
    report = LibraryReport(dry_run=dry_run, what="课程文件", noun="门课程")
    rows = _table(path, LEARNING_COLUMNS, report)
    if rows is None:
        return report
    async with db.transaction() as s:
        lib = await library(s, tenant)
        seen: dict[tuple[str, str], int] = {}
        parsed: list[tuple[str, int, str, str]] = []
        for line, r in rows:
            code, level = r["competency"].upper(), level_of(r["level"])
            if code not in lib:
                report.errors.append(f"第 {line} 行：能力库里没有 {r['competency'] or '（空）'}")
            elif level is None:
                report.errors.append(f"第 {line} 行：级别 {r['level'] or '（空）'} 不对，应为 L1、L2 或 L3")
            elif not r["title"]:
                report.errors.append(f"第 {line} 行：缺少课程名")
            elif not re.match(r"^https?://\S+$", r["url"]):
                report.errors.append(f"第 {line} 行：链接 {r['url'] or '（空）'} 不对，应以 http:// 或 https:// 开头")
            elif (code, r["title"]) in seen:
                report.errors.append(f"第 {line} 行：{code} 的课程 {r['title']} 与第 {seen[(code, r['title'])]} 行重复")
            else:
                seen[(code, r["title"])] = line
                parsed.append((code, level, r["title"], r["url"]))
        if not report.errors and not parsed:
            report.errors.append("文件里没有课程")
        if report.errors:
            return report
        have = {(c.competency, c.title): c for c in (await s.execute(select(LearningCourse).where(
            LearningCourse.tenant == tenant))).scalars()}
        for code, level, title, url in parsed:
            row = have.get((code, title))
            (report.updated if row else report.added).append(title)
            if dry_run:
                continue
            row = row or LearningCourse(tenant=tenant, competency=code, level=level, title=title, url=url)
            row.level, row.url = level, url
            s.add(row)
    return report


# -- assessments -------------------------------------------------------------------------------

async def assessment(session: AsyncSession, tenant: str, period: str, subject: str, side: str) -> Assessment | None:
    return (await session.execute(select(Assessment).where(
        Assessment.tenant == tenant, Assessment.period == period, Assessment.subject_userid == subject,
        Assessment.side == side))).scalar_one_or_none()


async def assessment_by_id(session: AsyncSession, tenant: str, assessment_id: int) -> Assessment | None:
    return (await session.execute(select(Assessment).where(
        Assessment.tenant == tenant, Assessment.id == assessment_id))).scalar_one_or_none()


async def open_assessment(session: AsyncSession, tenant: str, period: str, subject: Employee, assessor: str,
                          side: str, now: datetime) -> Assessment:
    """The assessment of (period, subject, side), started now if it does not exist yet."""
    row = await assessment(session, tenant, period, subject.userid, side)
    if row is None:
        codes = await focus_codes(session, tenant, subject.department)
        row = Assessment(tenant=tenant, period=period, subject_userid=subject.userid, assessor_userid=assessor,
                         side=side, codes=";".join(codes), created_at=utc(now))
        session.add(row)
        await session.flush()
    return row


def codes_of(a: Assessment) -> list[str]:
    return [c for c in a.codes.split(";") if c]


async def ratings(session: AsyncSession, tenant: str, assessment_id: int) -> dict[str, Rating]:
    rows = (await session.execute(select(Rating).where(
        Rating.tenant == tenant, Rating.assessment_id == assessment_id))).scalars()
    return {r.code: r for r in rows}


async def set_rating(session: AsyncSession, a: Assessment, code: str, level: int, now: datetime) -> Rating:
    """A level for one competency of a draft; picking a new level keeps the evidence attached."""
    assert a.id is not None
    row = (await ratings(session, a.tenant, a.id)).get(code)
    if row is None:
        row = Rating(tenant=a.tenant, assessment_id=a.id, code=code, level=level, evidence=[], at=utc(now))
    row.level, row.at = level, utc(now)
    session.add(row)
    await session.flush()
    return row


def add_evidence(row: Rating, ref: str) -> None:
    if ref not in row.evidence:
        row.evidence = [*row.evidence, ref]  # a new list, so the JSON column is written


@dataclass
class Pair:
    """Both sides of one person's period, once revealed."""

    self_: Assessment
    manager: Assessment
    self_ratings: dict[str, Rating]
    manager_ratings: dict[str, Rating]

    @property
    def codes(self) -> list[str]:
        seen: list[str] = []
        for c in codes_of(self.manager) + codes_of(self.self_):
            if c not in seen:
                seen.append(c)
        return seen


async def revealed(session: AsyncSession, tenant: str, period: str, subject: str) -> Pair | None:
    """Both sides' ratings, or None while either side has not submitted (blind until then)."""
    mine = await assessment(session, tenant, period, subject, SELF)
    boss = await assessment(session, tenant, period, subject, MANAGER)
    if mine is None or boss is None or mine.state != SUBMITTED or boss.state != SUBMITTED:
        return None
    assert mine.id is not None and boss.id is not None
    return Pair(mine, boss, await ratings(session, tenant, mine.id), await ratings(session, tenant, boss.id))


# -- calibration -------------------------------------------------------------------------------

GAP2, DIRECTION, L3_UNTAGGED = "gap2", "direction", "l3_untagged"
DIRECTION_MIN = 3  # competencies one level apart the same way: systematic over- or under-rating


def calibration_reasons(pair: Pair, tagged: dict[str, set[str]]) -> list[dict[str, str]]:
    """Why the pair needs a calibration meeting (empty: it does not).

    - a competency rated L1 by one side and L3 by the other;
    - 3 or more competencies one level apart in the same direction;
    - an L3 (either side) whose evidence holds no feedback tagged with that competency
      (`tagged[code]`: the evidence refs that are); an L3 needs independent evidence to stand.
    """
    out: list[dict[str, str]] = []
    ups, downs = [], []
    for code in pair.codes:
        s, m = pair.self_ratings.get(code), pair.manager_ratings.get(code)
        if s is None or m is None:
            continue
        if abs(s.level - m.level) >= 2:
            out.append({"code": code, "why": GAP2})
        elif s.level - m.level == 1:
            ups.append(code)
        elif m.level - s.level == 1:
            downs.append(code)
    for group in (ups, downs):
        if len(group) >= DIRECTION_MIN:
            out += [{"code": c, "why": DIRECTION} for c in group]
    for code in pair.codes:
        for r in (pair.self_ratings.get(code), pair.manager_ratings.get(code)):
            if r is not None and r.level == 3 and not set(r.evidence) & tagged.get(code, set()):
                if not any(o["code"] == code for o in out):
                    out.append({"code": code, "why": L3_UNTAGGED})
    return out


async def calibration(session: AsyncSession, tenant: str, period: str, subject: str) -> Calibration | None:
    return (await session.execute(select(Calibration).where(
        Calibration.tenant == tenant, Calibration.period == period,
        Calibration.subject_userid == subject))).scalar_one_or_none()


async def agreed(session: AsyncSession, tenant: str, period: str, subject: str) -> dict[str, AgreedLevel]:
    rows = (await session.execute(select(AgreedLevel).where(
        AgreedLevel.tenant == tenant, AgreedLevel.period == period, AgreedLevel.subject_userid == subject))).scalars()
    return {r.code: r for r in rows}


async def final_levels(session: AsyncSession, tenant: str, period: str, subject: str) -> dict[str, int]:
    """The level that counts per competency: the agreed one, else the manager's (submitted only)."""
    boss = await assessment(session, tenant, period, subject, MANAGER)
    out: dict[str, int] = {}
    if boss is not None and boss.state == SUBMITTED and boss.id is not None:
        out = {c: r.level for c, r in (await ratings(session, tenant, boss.id)).items()}
    for code, row in (await agreed(session, tenant, period, subject)).items():
        out[code] = row.level
    return out


async def open_calibrations(session: AsyncSession, tenant: str) -> list[Calibration]:
    return list((await session.execute(select(Calibration).where(
        Calibration.tenant == tenant, Calibration.state == "open").order_by(Calibration.id))).scalars())


# -- learning ----------------------------------------------------------------------------------

async def consents(session: AsyncSession, tenant: str) -> set[str]:
    return set((await session.execute(select(CaseConsent.userid).where(
        CaseConsent.tenant == tenant, CaseConsent.allowed.is_(True)))).scalars())


async def set_consent(session: AsyncSession, tenant: str, userid: str, allowed: bool, now: datetime) -> None:
    row = (await session.execute(select(CaseConsent).where(
        CaseConsent.tenant == tenant, CaseConsent.userid == userid))).scalar_one_or_none()
    row = row or CaseConsent(tenant=tenant, userid=userid, at=utc(now))
    row.allowed, row.at = allowed, utc(now)
    session.add(row)


async def courses_for(session: AsyncSession, tenant: str, userid: str, code: str, limit: int) -> list[LearningCourse]:
    """Courses of a competency, lowest level first, skipping the ones the person marked done."""
    done = set((await session.execute(select(LearningMark.course_id).where(
        LearningMark.tenant == tenant, LearningMark.userid == userid, LearningMark.mark == "done"))).scalars())
    rows = (await session.execute(select(LearningCourse).where(
        LearningCourse.tenant == tenant, LearningCourse.competency == code)
        .order_by(LearningCourse.level, LearningCourse.id))).scalars()
    return [c for c in rows if c.id not in done][:limit]


async def course(session: AsyncSession, tenant: str, course_id: int) -> LearningCourse | None:
    return (await session.execute(select(LearningCourse).where(
        LearningCourse.tenant == tenant, LearningCourse.id == course_id))).scalar_one_or_none()


async def mark_course(session: AsyncSession, tenant: str, userid: str, course_id: int, mark: str,
                      now: datetime) -> bool:
    """Record a press; False when it was already recorded."""
    found = (await session.execute(select(LearningMark.id).where(
        LearningMark.tenant == tenant, LearningMark.userid == userid, LearningMark.course_id == course_id,
        LearningMark.mark == mark))).first()
    if found is not None:
        return False
    session.add(LearningMark(tenant=tenant, userid=userid, course_id=course_id, mark=mark, at=utc(now)))
    return True


def previous_period(period: str) -> str:
    year, q = int(period[:4]), int(period[-1])
    return f"{year - 1}Q4" if q == 1 else f"{year}Q{q - 1}"


# -- figures -----------------------------------------------------------------------------------

# The calibration state in the export's words (the brief labels the state in its own locale).
_CAL_WORDS = {"pending": "待对齐", "agreed": "已对齐"}


@dataclass
class PersonRow:
    """One person × competency of a period, as the export and the brief show it."""

    userid: str
    code: str
    self_level: int | None
    manager_level: int | None
    agreed_level: int | None
    evidence: list[str]
    calibration: str  # '' | 待对齐 | 已对齐 (the export's words)
    state: str = ""  # '' | pending | agreed: what the brief labels in its locale


async def period_rows(session: AsyncSession, tenant: str, period: str, people: set[str] | None = None
                      ) -> list[PersonRow]:
    """Every revealed person × competency of a period (a one-sided assessment shows nowhere)."""
    subjects = sorted(set((await session.execute(select(Assessment.subject_userid).where(
        Assessment.tenant == tenant, Assessment.period == period, Assessment.state == SUBMITTED))).scalars()))
    out: list[PersonRow] = []
    for subject in subjects:
        if people is not None and subject not in people:
            continue
        pair = await revealed(session, tenant, period, subject)
        if pair is None:
            continue
        cal = await calibration(session, tenant, period, subject)
        agreed_rows = await agreed(session, tenant, period, subject)
        gapped = {r["code"] for r in cal.reasons} if cal else set()
        for code in pair.codes:
            s, m = pair.self_ratings.get(code), pair.manager_ratings.get(code)
            evidence: list[str] = []
            for r in (s, m):
                for ref in (r.evidence if r else []):
                    if ref not in evidence:
                        evidence.append(ref)
            state = ("agreed" if code in agreed_rows else "pending") if code in gapped else ""
            out.append(PersonRow(subject, code, s.level if s else None, m.level if m else None,
                                 agreed_rows[code].level if code in agreed_rows else None, evidence,
                                 _CAL_WORDS.get(state, ""), state))
    return out


def parse_ref(ref: str) -> tuple[str, int] | None:
    kind, _, num = ref.partition(":")
    return (kind, int(num)) if kind in ("action", "feedback", "task") and num.isdigit() else None


ASSESSMENT_HEADER = ["期间", "工号", "姓名", "部门", "能力编码", "能力", "自评", "主管", "对齐", "证据条数", "对齐状态"]


async def assessment_sheet(session: AsyncSession, tenant: str, periods: list[str]) -> list[list[object]]:
    """The export's 能力评估 rows: person × competency of each period, revealed assessments only."""
    lib = await library(session, tenant)
    people = {e.userid: e for e in (await session.execute(select(Employee).where(Employee.tenant == tenant))).scalars()}
    out: list[list[object]] = []
    for period in periods:
        for r in await period_rows(session, tenant, period):
            emp = people.get(r.userid)
            out.append([period, r.userid, emp.name if emp else r.userid, emp.department if emp else "", r.code,
                        lib[r.code].name if r.code in lib else "", r.self_level, r.manager_level, r.agreed_level,
                        len(r.evidence), r.calibration])
    return out


MIN_GROUP = 5  # a group figure over fewer people is not shown (it would point at individuals)
LENIENT_BY = 0.5  # a manager's average this far above the company's is flagged


@dataclass
class ManagerSpread:
    manager: str
    people: int
    counts: dict[int, int]  # level → manager ratings at that level
    average: float
    lenient: bool


async def latest_period(session: AsyncSession, tenant: str) -> str | None:
    found = (await session.execute(select(Assessment.period).where(
        Assessment.tenant == tenant, Assessment.side == MANAGER, Assessment.state == SUBMITTED)
        .order_by(Assessment.period.desc()).limit(1))).scalar_one_or_none()
    return found


async def rating_spread(session: AsyncSession, tenant: str, period: str) -> tuple[float | None, list[ManagerSpread]]:
    """The company's average manager rating and each manager's distribution, for HR.

    Managers who rated fewer than MIN_GROUP people are left out, and so is the company figure over
    fewer people; no ranking and no forced distribution, only a flag on markedly lenient raters."""
    rows = (await session.execute(select(Assessment.assessor_userid, Assessment.subject_userid, Rating.level)
                                  .join(Rating, Rating.assessment_id == Assessment.id).where(
        Assessment.tenant == tenant, Assessment.period == period, Assessment.side == MANAGER,
        Assessment.state == SUBMITTED))).all()
    by_manager: dict[str, tuple[set[str], list[int]]] = {}
    for manager, subject, level in rows:
        people, levels = by_manager.setdefault(manager, (set(), []))
        people.add(subject)
        levels.append(int(level))
    everyone = {s for p, _ in by_manager.values() for s in p}
    all_levels = [lv for _, ls in by_manager.values() for lv in ls]
    if len(everyone) < MIN_GROUP or not all_levels:
        return None, []
    company = sum(all_levels) / len(all_levels)
    out = []
    for manager, (people, levels) in sorted(by_manager.items()):
        if len(people) < MIN_GROUP:
            continue
        avg = sum(levels) / len(levels)
        out.append(ManagerSpread(manager, len(people), {lv: levels.count(lv) for lv in LEVELS}, avg,
                                 avg - company >= LENIENT_BY))
    return company, out
