"""Roster import: all-or-nothing validation with line numbers, upsert, deactivation."""
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from bot.core.config import TenantConfig
from store.db import Database
from store.models import Department, Employee, Tenant
from store.roster import ensure_tenant, import_roster

HEADER = "userid,name,department,manager_userid,roles\n"
GOOD = HEADER + (
    "wangq,王强,总部,,manager;admin\n"
    "lina,李娜,总部/研发中心/注册部,wangq,manager\n"
    "zhangs,张三,总部/研发中心/注册部,lina,\n"
    "lisi,李四,总部/市场部,wangq,hr\n"
)


def write(tmp_path: Path, text: str, name: str = "roster.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding=encoding)
    return p


@pytest.fixture
async def tenant_db(db: Database) -> Database:
    await ensure_tenant(db, TenantConfig(key="acme", name="Acme 医疗"))
    return db


async def employees(db: Database) -> dict[str, Employee]:
    async with db.session() as s:
        rows = (await s.execute(select(Employee).where(Employee.tenant == "acme"))).scalars()
        return {e.userid: e for e in rows}


async def count(db: Database, model: type) -> int:
    async with db.session() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()


async def test_ensure_tenant_upserts_from_config(db: Database) -> None:
    await ensure_tenant(db, TenantConfig(key="acme", name="Acme"))
    await ensure_tenant(db, TenantConfig(key="acme", name="Acme 医疗", timezone="Asia/Urumqi", locale="en"))
    async with db.session() as s:
        t = await s.get(Tenant, "acme")
    assert t is not None and (t.name, t.timezone, t.locale, t.platform) == ("Acme 医疗", "Asia/Urumqi", "en", "console")


async def test_good_file_is_imported(tenant_db: Database, tmp_path: Path) -> None:
    report = await import_roster(tenant_db, "acme", write(tmp_path, GOOD))
    assert report.errors == []
    assert sorted(report.added) == ["lina", "lisi", "wangq", "zhangs"]
    people = await employees(tenant_db)
    lina = people["lina"]
    assert (lina.name, lina.department, lina.manager_userid, lina.roles) == ("李娜", "总部/研发中心/注册部", "wangq", "manager")
    assert (lina.pinyin, lina.initials) == ("lina", "ln")
    assert people["wangq"].roles == "manager;admin" and people["wangq"].manager_userid is None
    assert people["zhangs"].roles == ""
    async with tenant_db.session() as s:
        paths = set((await s.execute(select(Department.path))).scalars())
    assert paths == {"总部", "总部/研发中心", "总部/研发中心/注册部", "总部/市场部"}
    assert "新增 4 人" in report.summary()


async def test_bad_rows_are_reported_by_line_and_nothing_is_written(tenant_db: Database, tmp_path: Path) -> None:
    text = HEADER + (
        "wangq,王强,总部,,manager\n"          # line 2: fine
        "lina,李娜,总部/研发中心,ghost,\n"      # line 3: unknown manager
        "wangq,王强二,总部,,\n"                # line 4: duplicate userid
        "zhaol,,总部//注册部,,boss\n"          # line 5: empty name, bad path, bad role
        ",无名,总部,,\n"                       # line 6: empty userid
        "selfm,自己,总部,selfm,\n"             # line 7: own manager
    )
    report = await import_roster(tenant_db, "acme", write(tmp_path, text))
    assert '第 3 行：manager_userid "ghost" 不在名单中' in report.errors
    assert any(e.startswith("第 4 行") and "与第 2 行重复" in e for e in report.errors)
    line5 = [e for e in report.errors if e.startswith("第 5 行")]
    assert len(line5) == 3 and any("boss" in e for e in line5) and any("总部//注册部" in e for e in line5)
    assert any(e.startswith("第 6 行") and "userid 为空" in e for e in report.errors)
    assert any(e.startswith("第 7 行") and "本人" in e for e in report.errors)
    assert await count(tenant_db, Employee) == 0
    assert await count(tenant_db, Department) == 0
    assert "未做任何修改" in report.summary()


async def test_a_manager_cycle_is_refused(tenant_db: Database, tmp_path: Path) -> None:
    text = HEADER + "a,甲,总部,c,\nb,乙,总部,a,\nc,丙,总部,b,\nd,丁,总部,,\n"
    report = await import_roster(tenant_db, "acme", write(tmp_path, text))
    assert report.errors == ["第 2 行：上级关系成环：a → c → b → a"]
    assert await count(tenant_db, Employee) == 0


async def test_header_must_name_exactly_the_columns(tenant_db: Database, tmp_path: Path) -> None:
    missing = await import_roster(tenant_db, "acme", write(tmp_path, "userid,name,department,roles\nu1,甲,总部,\n"))
    assert len(missing.errors) == 1 and missing.errors[0].startswith("第 1 行：缺少列 manager_userid")
    unknown = await import_roster(
        tenant_db, "acme", write(tmp_path, HEADER.strip() + ",email\nu1,甲,总部,,,a@x.cn\n", "r2.csv")
    )
    assert any("未知的列 email" in e for e in unknown.errors)
    assert await count(tenant_db, Employee) == 0


async def test_reimport_upserts_deactivates_and_reactivates(tenant_db: Database, tmp_path: Path) -> None:
    await import_roster(tenant_db, "acme", write(tmp_path, GOOD))
    # lisi leaves, zhangs moves department, a newcomer joins.
    second = HEADER + (
        "wangq,王强,总部,,manager;admin\n"
        "lina,李娜,总部/研发中心/注册部,wangq,manager\n"
        "zhangs,张三,总部/研发中心/临床部,lina,\n"
        "zhaol,赵磊,总部/市场部,wangq,\n"
    )
    report = await import_roster(tenant_db, "acme", write(tmp_path, second, "r2.csv"))
    assert (report.added, report.updated, report.deactivated) == (["zhaol"], ["zhangs"], ["lisi"])
    assert report.reactivated == []
    people = await employees(tenant_db)
    assert len(people) == 5 and people["lisi"].active is False  # kept, not deleted
    assert people["zhangs"].department == "总部/研发中心/临床部"

    back = await import_roster(tenant_db, "acme", write(tmp_path, GOOD, "r3.csv"))
    assert back.reactivated == ["lisi"]
    assert sorted(back.deactivated) == ["zhaol"]
    people = await employees(tenant_db)
    assert people["lisi"].active is True and people["zhaol"].active is False


async def test_bom_csv_with_columns_in_another_order(tenant_db: Database, tmp_path: Path) -> None:
    text = "name,userid,roles,manager_userid,department\n王强,wangq,,,总部\n李娜,lina,HR ；manager,wangq, 总部 / 人力资源部 \n"
    path = write(tmp_path, text, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    report = await import_roster(tenant_db, "acme", path)
    assert report.errors == []
    lina = (await employees(tenant_db))["lina"]
    assert (lina.name, lina.department, lina.roles) == ("李娜", "总部/人力资源部", "manager;hr")


async def test_xlsx_roster(tenant_db: Database, tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["userid", "name", "department", "manager_userid", "roles"])
    ws.append([10001, "王强", "总部", None, "manager"])
    ws.append([10002, "李娜", "总部/研发中心", 10001, None])
    path = tmp_path / "roster.xlsx"
    wb.save(path)
    report = await import_roster(tenant_db, "acme", path)
    assert report.errors == [] and sorted(report.added) == ["10001", "10002"]
    assert (await employees(tenant_db))["10002"].manager_userid == "10001"


async def test_xlsx_bad_row_has_its_sheet_row_number(tenant_db: Database, tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["userid", "name", "department", "manager_userid", "roles"])
    ws.append(["u1", "王强", "总部", None, None])
    ws.append([None, None, None, None, None])
    ws.append(["u2", "李娜", "总部", "nobody", None])
    path = tmp_path / "roster.xlsx"
    wb.save(path)
    report = await import_roster(tenant_db, "acme", path)
    assert report.errors == ['第 4 行：manager_userid "nobody" 不在名单中']
    assert await count(tenant_db, Employee) == 0


async def test_dry_run_reports_the_diff_and_writes_nothing(tenant_db: Database, tmp_path: Path) -> None:
    await import_roster(tenant_db, "acme", write(tmp_path, GOOD))
    before = {u: (e.department, e.active) for u, e in (await employees(tenant_db)).items()}
    text = HEADER + "wangq,王强,总部,,manager;admin\nlina,李娜,总部/新部门,wangq,manager\nnew1,新人,总部,wangq,\n"
    report = await import_roster(tenant_db, "acme", write(tmp_path, text, "r2.csv"), dry_run=True)
    assert (report.added, report.updated, sorted(report.deactivated)) == (["new1"], ["lina"], ["lisi", "zhangs"])
    assert report.summary().startswith("（试运行，未写入）")
    assert {u: (e.department, e.active) for u, e in (await employees(tenant_db)).items()} == before
    async with tenant_db.session() as s:
        assert (await s.execute(select(Department).where(Department.path == "总部/新部门"))).first() is None


async def test_unknown_tenant_and_unreadable_files(tenant_db: Database, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope"):
        await import_roster(tenant_db, "nope", write(tmp_path, GOOD))
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(GOOD.encode("gbk"))
    assert "UTF-8" in (await import_roster(tenant_db, "acme", gbk)).errors[0]
    assert ".txt" in (await import_roster(tenant_db, "acme", write(tmp_path, GOOD, "r.txt"))).errors[0]
    assert await count(tenant_db, Employee) == 0


async def test_a_large_roster_in_one_go(tenant_db: Database, tmp_path: Path) -> None:
    lines = [HEADER.strip(), "u0,王总,总部,,manager"]
    lines += [f"u{i},员工{i},总部/部门{i % 7},u{(i - 1) // 10},{'manager' if i < 120 else ''}" for i in range(1, 1500)]
    report = await import_roster(tenant_db, "acme", write(tmp_path, "\n".join(lines) + "\n"))
    assert report.errors == [] and len(report.added) == 1500
    assert await count(tenant_db, Employee) == 1500
    assert await count(tenant_db, Department) == 8
    assert "等 1500 人" in report.summary()
