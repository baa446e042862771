"""Goal import with adjustment history, code normalisation and goal lookup."""
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from bot.core.config import TenantConfig
from store.db import Database
from store.goals import find_goal, import_goals, normalize_goal_code
from store.models import Goal, GoalAdjustment, GoalVersion
from store.roster import ensure_tenant

NOW = datetime(2026, 10, 9, 2, 0, tzinfo=timezone.utc)
HEADER = "code,title,parent_code,department,weight,period\n"
GOALS = HEADER + (
    "O1,新产品上市成功率,,,60,2026Q4\n"
    "o1-kr2,NMPA二类证平均获批周期≤82天,o1,总部/研发中心/注册部,30,2026q4\n"
    "O1KR3,临床评价报告一次通过率,O1,总部/研发中心/临床部,30%,2026Q4\n"
    "O2,客户满意度提升,,,40,2026Q4\n"
)


def write(tmp_path: Path, text: str, name: str = "goals.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
async def tenant_db(db: Database) -> Database:
    await ensure_tenant(db, TenantConfig(key="acme", name="Acme"))
    return db


async def goals(db: Database) -> dict[str, Goal]:
    async with db.session() as s:
        return {g.code: g for g in (await s.execute(select(Goal).where(Goal.tenant == "acme"))).scalars()}


async def adjustments(db: Database) -> list[GoalAdjustment]:
    async with db.session() as s:
        return list((await s.execute(select(GoalAdjustment).order_by(GoalAdjustment.id))).scalars())


@pytest.mark.parametrize(
    "text,code",
    [
        ("o1kr2", "O1-KR2"), ("O1KR2", "O1-KR2"), ("#O1-KR2", "O1-KR2"), ("o1-kr2", "O1-KR2"),
        ("#O1", "O1"), ("o1", "O1"), ("Ｏ１－ＫＲ２", "O1-KR2"), (" O12_kr3 ", "O12-KR3"),
    ],
)
def test_goal_codes_are_normalised(text: str, code: str) -> None:
    assert normalize_goal_code(text) == code


@pytest.mark.parametrize("text", ["", "完成报告", "O", "12", "kr", "O1 完成", "O1--KR2", "#"])
def test_text_that_is_not_a_code(text: str) -> None:
    assert normalize_goal_code(text) is None


async def test_import_sets_levels_and_records_new_goals(tenant_db: Database, tmp_path: Path) -> None:
    report = await import_goals(tenant_db, "acme", write(tmp_path, GOALS), now=NOW, by_userid="hr1")
    assert report.errors == []
    assert report.added == ["O1", "O1-KR2", "O1-KR3", "O2"]
    g = await goals(tenant_db)
    kr2 = g["O1-KR2"]
    assert (kr2.parent_code, kr2.level, kr2.weight, kr2.period, kr2.department) == (
        "O1", 2, 30.0, "2026Q4", "总部/研发中心/注册部")
    assert g["O1"].level == 1 and g["O1-KR3"].weight == 30.0
    # Setting the goals up is planning: nothing is logged as an adjustment, and each goal has
    # one version that holds from the start.
    assert await adjustments(tenant_db) == []
    async with tenant_db.session() as s:
        vs = list((await s.execute(select(GoalVersion).order_by(GoalVersion.goal_code))).scalars())
    assert [(v.goal_code, v.valid_from, v.valid_to, v.weight) for v in vs] == [
        ("O1", None, None, 60.0), ("O1-KR2", None, None, 30.0), ("O1-KR3", None, None, 30.0), ("O2", None, None, 40.0)]


async def test_reimport_records_each_change_and_cancels_missing_goals(tenant_db: Database, tmp_path: Path) -> None:
    await import_goals(tenant_db, "acme", write(tmp_path, GOALS), now=NOW)
    later = NOW + timedelta(days=20)
    second = HEADER + (
        "O1,新产品上市成功率,,,60,2026Q4\n"
        "O1-KR2,NMPA二类证平均获批周期≤75天,O1,总部/研发中心/注册部,45,2026Q4\n"
        "O2,客户满意度提升,,,40,2026Q4\n"
    )
    report = await import_goals(
        tenant_db, "acme", write(tmp_path, second, "g2.csv"), now=later, by_userid="pmo1", reason="政策")
    assert report.errors == []
    assert (report.added, report.updated, report.cancelled) == ([], ["O1-KR2"], ["O1-KR3"])
    logged = await adjustments(tenant_db)
    # The importer's changes go through the change log, approved by the importer, effective that day;
    # the goals' creation by the first import is not among them.
    assert {(a.status, a.decided_by, a.effective_from) for a in logged} == {("approved", "pmo1", date(2026, 10, 29))}
    changes = [(a.goal_code, a.field_name, a.old_value, a.new_value, a.reason, a.by_userid) for a in logged]
    assert changes == [
        ("O1-KR2", "title", "NMPA二类证平均获批周期≤82天", "NMPA二类证平均获批周期≤75天", "政策", "pmo1"),
        ("O1-KR2", "weight", "30", "45", "政策", "pmo1"),
        ("O1-KR3", "cancelled", "active", "cancelled", "政策", "pmo1"),
    ]
    g = await goals(tenant_db)
    assert g["O1-KR3"].status == "cancelled" and g["O1-KR2"].weight == 45.0
    # The weeks before keep the version they were made under.
    async with tenant_db.session() as s:
        kr2 = [(v.valid_from, v.valid_to, v.weight) for v in (await s.execute(select(GoalVersion).where(
            GoalVersion.goal_code == "O1-KR2").order_by(GoalVersion.id))).scalars()]
    assert kr2 == [(None, date(2026, 10, 29), 30.0), (date(2026, 10, 29), None, 45.0)]

    # The same file again changes nothing and records nothing.
    n = len(await adjustments(tenant_db))
    again = await import_goals(tenant_db, "acme", write(tmp_path, second, "g3.csv"), now=later)
    assert again.adjustments == [] and "没有变化" in again.summary()
    assert len(await adjustments(tenant_db)) == n


async def test_bad_rows_are_refused_with_line_numbers(tenant_db: Database, tmp_path: Path) -> None:
    text = HEADER + (
        "O1,新产品上市成功率,,,60,2026Q4\n"        # 2 fine
        "O1-KR2,获批周期,O9,,30,2026Q4\n"          # 3 unknown parent
        "O1-KR3,通过率,O1,,120,2026Q4\n"           # 4 weight out of range
        "O1-KR4,周期格式,O1,,10,2026-4\n"          # 5 bad period
        "完成报告,标题,,,10,2026Q4\n"              # 6 bad code
        "o1,重复,,,10,2026Q4\n"                    # 7 duplicate of O1
        "O1-KR5,,O1,,10,2026Q4\n"                  # 8 empty title
    )
    report = await import_goals(tenant_db, "acme", write(tmp_path, text), now=NOW)
    lines = [e.split("：", 1)[0] for e in report.errors]
    assert lines == sorted(lines, key=lambda x: int(x.split()[1]))
    assert sorted(set(lines)) == ["第 3 行", "第 4 行", "第 5 行", "第 6 行", "第 7 行", "第 8 行"]
    assert any(e.startswith("第 3 行") and "O9" in e for e in report.errors)
    assert any(e.startswith("第 4 行") and "120" in e for e in report.errors)
    assert any(e.startswith("第 5 行") and "2026-4" in e for e in report.errors)
    assert any(e.startswith("第 6 行") and "完成报告" in e for e in report.errors)
    assert any(e.startswith("第 7 行") and "第 2 行重复" in e for e in report.errors)
    assert any(e.startswith("第 8 行") for e in report.errors)
    assert await goals(tenant_db) == {} and await adjustments(tenant_db) == []


async def test_levels_stop_at_two_and_cycles_are_refused(tenant_db: Database, tmp_path: Path) -> None:
    deep = HEADER + "O1,甲,,,1,2026Q4\nO1-KR1,乙,O1,,1,2026Q4\nO1-KR1-A1,丙,O1-KR1,,1,2026Q4\n"
    report = await import_goals(tenant_db, "acme", write(tmp_path, deep), now=NOW)
    assert len(report.errors) == 1 and report.errors[0].startswith("第 4 行") and "两级" in report.errors[0]
    loop = HEADER + "O1,甲,O2,,1,2026Q4\nO2,乙,O1,,1,2026Q4\n"
    report = await import_goals(tenant_db, "acme", write(tmp_path, loop, "g2.csv"), now=NOW)
    assert report.errors == ["第 2 行：上级关系成环：O1 → O2 → O1"]
    assert await goals(tenant_db) == {}


async def test_parent_may_come_from_the_database(tenant_db: Database, tmp_path: Path) -> None:
    await import_goals(tenant_db, "acme", write(tmp_path, HEADER + "O1,年度目标,,,100,2026Q4\n"), now=NOW)
    report = await import_goals(
        tenant_db, "acme", write(tmp_path, HEADER + "O1-KR1,一季度任务,O1,,50,2027Q1\n", "g2.csv"), now=NOW)
    assert report.errors == []
    assert (await goals(tenant_db))["O1-KR1"].level == 2


async def test_bad_reason_and_dry_run_write_nothing(tenant_db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, GOALS)
    bad = await import_goals(tenant_db, "acme", path, now=NOW, reason="老板说的")
    assert bad.errors and "市场" in bad.errors[0]
    dry = await import_goals(tenant_db, "acme", path, now=NOW, dry_run=True)
    assert dry.errors == [] and len(dry.added) == 4 and dry.summary().startswith("（试运行，未写入）")
    assert await goals(tenant_db) == {} and await adjustments(tenant_db) == []


async def test_xlsx_goals(tenant_db: Database, tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["period", "code", "title", "parent_code", "department", "weight"])
    ws.append(["2026Q4", "O1", "新产品上市成功率", None, None, 60])
    ws.append(["2026Q4", "o1kr2", "获批周期≤82天", "o1", "总部/研发中心/注册部", 12.5])
    path = tmp_path / "goals.xlsx"
    wb.save(path)
    report = await import_goals(tenant_db, "acme", path, now=NOW)
    assert report.errors == []
    assert (await goals(tenant_db))["O1-KR2"].weight == 12.5


async def test_find_goal_by_code_then_by_title(tenant_db: Database, tmp_path: Path) -> None:
    text = GOALS + "O3,临床评价报告数量,,,10,2026Q4\n"
    await import_goals(tenant_db, "acme", write(tmp_path, text), now=NOW)
    async with tenant_db.session() as s:
        assert (await find_goal(s, "acme", "o1kr2")).code == "O1-KR2"  # type: ignore[union-attr]
        assert (await find_goal(s, "acme", "#O1")).code == "O1"  # type: ignore[union-attr]
        assert (await find_goal(s, "acme", "获批周期")).code == "O1-KR2"  # type: ignore[union-attr]
        assert (await find_goal(s, "acme", "客户满意度")).code == "O2"  # type: ignore[union-attr]
        assert await find_goal(s, "acme", "O7") is None
        assert await find_goal(s, "acme", "天气预报") is None
        # Both 临床评价报告 titles match equally: no clear best, so no guess.
        assert await find_goal(s, "acme", "临床评价报告") is None
        assert await find_goal(s, "other", "o1kr2") is None
