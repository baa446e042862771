"""Competency library, focus and course imports: CSV and XLSX, refused whole with line numbers."""
from __future__ import annotations

from pathlib import Path

import openpyxl

from bot.demo import DATA
from store import competencies as comp
from store.db import Database
from store.roster import ensure_tenant, import_roster
from tests.harness import demo_test_config

HEADER = "code,name,category,L1,L2,L3\n"


async def _company(db: Database, tmp_path: Path) -> None:
    await ensure_tenant(db, demo_test_config(db.url, tmp_path).tenant("demo"))
    assert (await import_roster(db, "demo", DATA / "roster.csv")).ok


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def _library(db: Database) -> dict[str, comp.Competency]:
    async with db.session() as s:
        return await comp.library(s, "demo")


async def test_a_library_with_bad_rows_is_refused_whole(db: Database, tmp_path: Path) -> None:
    await _company(db, tmp_path)
    bad = _csv(tmp_path, "lib.csv", HEADER + "C01,目标拆解,业务,能复述,能拆解,能设计\n"
               "C02,执行推进,业务,能按时完成,,能建立机制\n"
               "c01,重复,业务,a,b,c\n")
    report = await comp.import_library(db, "demo", bad)
    assert report.errors == ["第 3 行：C02 缺少 L2 的行为描述（每级都要写可观察的行为）",
                             "第 4 行：能力编码 C01 与第 2 行重复"]
    assert "未做任何修改" in report.summary()
    assert await _library(db) == {}  # the good first row was not written either
    # The same library as XLSX imports, and a second import updates by code.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["code", "name", "category", "L1", "L2", "L3"])
    ws.append(["C03", "客户需求洞察", "客户", "能复述客户原话", "能归纳 3 个隐性需求", "能设计需求验证话术"])
    wb.save(tmp_path / "lib.xlsx")
    assert (await comp.import_library(db, "demo", tmp_path / "lib.xlsx")).added == ["C03"]
    again = await comp.import_library(db, "demo", DATA / "competencies.csv")
    assert again.ok and "C03" in again.updated and len(again.added) == 11
    assert (await _library(db))["C03"].l3 == "能设计需求验证话术"


async def test_focus_and_courses_are_checked_against_the_roster_and_library(db: Database, tmp_path: Path) -> None:
    await _company(db, tmp_path)
    assert (await comp.import_library(db, "demo", DATA / "competencies.csv")).ok
    bad = _csv(tmp_path, "focus.csv", "department,codes\n康骨医疗,C01;C02;C10\n康骨医疗/火星部,C01;C02;C03\n"
               "康骨医疗/研发中心,C01;C99;C03\n康骨医疗/质量部,C01;C02\n康骨医疗,C04;C05;C06\n")
    report = await comp.import_focus(db, "demo", bad)
    assert report.errors == ["第 3 行：没有部门 康骨医疗/火星部", "第 4 行：能力库里没有 C99",
                             "第 5 行：每个部门选 3–5 项重点能力，这里是 2 项", "第 6 行：部门 康骨医疗 与第 2 行重复"]
    assert (await comp.import_focus(db, "demo", DATA / "competency_focus.csv")).ok
    async with db.session() as s:
        # The longest department path wins: 注册部 is under 研发中心, which is under 康骨医疗.
        assert await comp.focus_codes(s, "demo", "康骨医疗/研发中心/注册部") == ["C03", "C06", "C07", "C11"]
        assert await comp.focus_codes(s, "demo", "康骨医疗/采购部") == ["C01", "C02", "C10"]
    courses = _csv(tmp_path, "learning.csv", "competency,level,title,url\nC03,L2,好课,https://x.example/1\n"
                   "C42,L1,没有这项能力,https://x.example/2\nC03,L4,级别不对,https://x.example/3\n"
                   "C03,L1,没有链接,ftp://x\n")
    report = await comp.import_learning(db, "demo", courses)
    assert [e.split("：")[0] for e in report.errors] == ["第 3 行", "第 4 行", "第 5 行"]
    async with db.session() as s:
        assert await comp.courses_for(s, "demo", "wangqiang", "C03", 3) == []
    # A wrong header is refused before any row is read.
    report = await comp.import_learning(db, "demo", _csv(tmp_path, "h.csv", "code,title\nC03,x\n"))
    assert report.errors and report.errors[0].startswith("第 1 行")


def test_levels_are_read_the_way_people_type_them() -> None:
    assert [comp.level_of(t) for t in ("L2", "l2", "Ｌ２", "2", "二级", "3级", "L4", "好", "")] == [
        2, 2, 2, 2, 2, 3, None, None, None]


async def test_the_demo_company_has_a_library_and_one_finished_round(tmp_path: Path) -> None:
    from bot.demo import demo_config, seed_demo

    config = demo_config(str(tmp_path))
    db = Database(config.database.url)
    try:
        await seed_demo(db, config)
        async with db.session() as s:
            assert len(await comp.library(s, "demo")) == 12
            periods = {a.period for a in (await s.execute(comp.select(comp.Assessment))).scalars()}
            assert len(periods) == 1
            rows = await comp.period_rows(s, "demo", periods.pop())
        assert {r.userid for r in rows} == {"wangqiang", "li_na", "zhaolei", "sunli"}
        c03 = next(r for r in rows if (r.userid, r.code) == ("wangqiang", "C03"))
        assert (c03.self_level, c03.manager_level, c03.agreed_level, c03.calibration) == (3, 1, 2, "已对齐")
    finally:
        await db.close()


async def test_hr_sees_rating_spreads_of_five_or_more_and_lenient_managers_flagged(db: Database, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    now = datetime(2026, 12, 20, tzinfo=timezone.utc)
    teams = {"boss_a": ("a", 5, 3), "boss_b": ("b", 6, 1), "boss_c": ("c", 2, 3)}  # prefix, people, level
    async with db.transaction() as s:
        for boss, (prefix, n, level) in teams.items():
            for i in range(n):
                a = comp.Assessment(tenant="demo", period="2026Q4", subject_userid=f"{prefix}{i}", assessor_userid=boss,
                                    side=comp.MANAGER, state=comp.SUBMITTED, codes="C01", created_at=now)
                s.add(a)
                await s.flush()
                assert a.id is not None
                s.add(comp.Rating(tenant="demo", assessment_id=a.id, code="C01", level=level, evidence=[], at=now))
    async with db.session() as s:
        assert await comp.latest_period(s, "demo") == "2026Q4"
        company, spread = await comp.rating_spread(s, "demo", "2026Q4")
        assert company is not None and round(company, 2) == round((5 * 3 + 6 * 1 + 2 * 3) / 13, 2)
        # boss_c rated 2 people: left out; boss_a is ≥ 0.5 above the company; nobody is ranked.
        assert [(m.manager, m.people, m.counts, m.lenient) for m in spread] == [
            ("boss_a", 5, {1: 0, 2: 0, 3: 5}, True), ("boss_b", 6, {1: 6, 2: 0, 3: 0}, False)]
        assert await comp.rating_spread(s, "demo", "2026Q3") == (None, [])
        # HR's Friday card carries the same figures.
        from handlers.context import Outgoing
        from schedules.pulse import competency_lines

        lines = await competency_lines(Outgoing(session=s, tenant=demo_test_config(db.url, tmp_path).tenant("demo"),
                                                now=now))
        assert lines.splitlines()[1:] == ["boss_a（5 人）：L1 0 · L2 0 · L3 5，均值 3.0 ⚠ 高于全公司 0.5 级以上",
                                          "boss_b（6 人）：L1 6 · L2 0 · L3 0，均值 1.0"]
