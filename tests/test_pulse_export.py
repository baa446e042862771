"""Weekly figures against a hand count, reporting lines, and the XLSX/CSV export read back."""
import csv
from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

import store.pulse as pulse_mod
from store.db import Database
from store.export import export_weekly
from store.models import ActionEdit, Employee, Goal, Leave, Tenant, WeeklyAction
from store.pulse import action_status, compute_pulse, reporting_line, trend

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
W = "2026-W49"  # Mon 2026-11-30 … Sun 2026-12-06

# userid: (name, department, manager, active)
PEOPLE = {
    "boss": ("王总", "总部", None, True),
    "m1": ("李娜", "总部/研发", "boss", True),
    "a": ("张三", "总部/研发", "m1", True),
    "b": ("李四", "总部/研发", "m1", True),
    "c": ("王五", "总部/研发", "m1", True),
    "d": ("赵六", "总部/市场", "boss", True),
    "e": ("孙七", "总部/市场", "d", True),
    "f": ("周八", "总部/市场", "d", False),
    "g": ("吴九", "总部/市场", "e", True),
}
# (userid, week, status, goal_code, witness)
ACTIONS = [
    ("m1", W, "confirmed", "O1", "a"),
    ("a", W, "done", "O1-KR2", "b"),
    ("b", W, "open", None, "a"),
    ("d", W, "not_done", "O2", "e"),
    ("e", W, "confirmed", "", "d"),
    ("f", W, "confirmed", "O1", "e"),  # has left: a record, but outside the figures
    ("m1", "2026-W47", "confirmed", None, "b"),
    ("a", "2026-W48", "done", "O1-KR2", "b"),
    ("d", "2026-W48", "confirmed", "O2", "e"),
    ("e", "2026-W48", "confirmed", None, "d"),
    ("e", "2026-W41", "confirmed", None, "a"),  # outside the 8-week window of W49
]
LEAVES = [
    ("c", date(2026, 12, 3), date(2026, 12, 10)),  # overlaps W49, no action → skipped
    ("e", date(2026, 12, 1), date(2026, 12, 2)),  # overlaps W49 but filled → counts
    ("g", date(2026, 11, 25), date(2026, 11, 29)),  # W48 only
]


async def seed(db: Database) -> None:
    async with db.transaction() as s:
        s.add(Tenant(key="acme", name="Acme"))
        s.add(Tenant(key="other", name="Other"))
        for uid, (name, dept, mgr, active) in PEOPLE.items():
            s.add(Employee(tenant="acme", userid=uid, name=name, department=dept, manager_userid=mgr, active=active))
        s.add(Employee(tenant="other", userid="x", name="外人", department="总部/研发"))
        s.add(Employee(tenant="other", userid="a", name="别家张三", department="总部/研发"))
        s.add(Goal(tenant="acme", code="O1", title="新产品上市成功率"))
        s.add(Goal(tenant="acme", code="O1-KR2", title="NMPA二类证平均获批周期≤82天", parent_code="O1", level=2))
        for uid, week, status, goal, witness in ACTIONS:
            s.add(WeeklyAction(
                tenant="acme", userid=uid, week=week, status=status, goal_code=goal,
                thing=f"{uid} 的关键动作", witness_userid=witness, created_at=T0,
            ))
        s.add(WeeklyAction(tenant="other", userid="x", week=W, status="confirmed", goal_code="O1",
                           thing="别家的事", witness_userid="a", created_at=T0))
        for uid, start, end in LEAVES:
            s.add(Leave(tenant="acme", userid=uid, start_day=start, end_day=end, created_at=T0))
        s.add(Leave(tenant="other", userid="x", start_day=date(2026, 11, 30), end_day=date(2026, 12, 6), created_at=T0))
    async with db.transaction() as s:
        acts = {(w.userid, w.week): w for w in (await s.execute(
            select(WeeklyAction).where(WeeklyAction.tenant == "acme"))).scalars()}
        a49 = acts[("a", W)]
        a49.done_at = datetime(2026, 12, 3, 8, 30, tzinfo=timezone.utc)  # 16:30 in Shanghai
        m49 = acts[("m1", W)]
        m49.done_at = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
        m49.confirmed_at = datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
        acts[("b", W)].thing = "=1+1"  # must stay text in the export, never a formula
        for old, new in (("报告", "报告初稿"), ("报告初稿", "两份报告初稿")):
            s.add(ActionEdit(tenant="acme", action_id=a49.id, by_userid="a", at=T0,
                             field_name="thing", old_value=old, new_value=new))


def figures(f) -> tuple:  # type: ignore[no-untyped-def]
    return (f.population, f.skipped, f.filled, f.actions, f.done, f.linked, f.confirmed)


async def test_whole_tenant_figures_match_a_hand_count(db: Database) -> None:
    await seed(db)
    async with db.session() as s:
        p = await compute_pulse(s, "acme", W)
    depts = {d.dept: d for d in p.departments}
    assert [d.dept for d in p.departments] == sorted(depts)
    assert set(depts) == {"总部", "总部/研发", "总部/市场"}
    # 总部: only boss, who did not fill in.
    assert figures(depts["总部"]) == (1, 0, 0, 0, 0, 0, 0)
    assert depts["总部"].fill_rate == 0.0 and depts["总部"].completion_rate is None
    # 研发: m1, a, b, c; c on leave without an action is skipped.
    rd = depts["总部/研发"]
    assert figures(rd) == (4, 1, 3, 3, 2, 2, 1)
    assert (rd.fill_rate, rd.completion_rate, rd.linkage_rate, rd.witness_rate) == (1.0, 2 / 3, 2 / 3, 0.5)
    # 市场: d, e, g (f has left); e's empty goal code is not a link.
    mk = depts["总部/市场"]
    assert figures(mk) == (3, 0, 2, 2, 1, 1, 1)
    assert (mk.fill_rate, mk.completion_rate, mk.linkage_rate, mk.witness_rate) == (2 / 3, 0.5, 0.5, 1.0)
    assert p.total.dept == "全公司"
    assert figures(p.total) == (8, 1, 5, 5, 3, 3, 2)
    assert (p.total.fill_rate, p.total.witness_rate) == (5 / 7, 2 / 3)

    assert p.missing == ["boss", "g"]
    assert p.witness_counts == {"a": 1, "b": 0, "boss": 0, "c": 0, "d": 1, "e": 1, "g": 0, "m1": 0}
    assert p.witness_diversity == {"a": 0.5, "b": 1.0, "d": 0.5, "e": 0.5, "m1": 1.0}
    # d and e only ever witness each other; a and b do too, but b has a single action.
    assert p.mutual_pairs == [("d", "e")]


async def test_a_reporting_line_scopes_the_figures(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    await seed(db)
    async with db.session() as s:
        assert await reporting_line(s, "acme", "m1") == {"a", "b", "c"}
        team = await reporting_line(s, "acme", "d")
        assert team == {"e", "g"}  # f has left; g reports to e
        assert await reporting_line(s, "acme", "boss") == {"m1", "a", "b", "c", "d", "e", "g"}
        assert await reporting_line(s, "acme", "a") == set()
        p = await compute_pulse(s, "acme", W, people=team)
        # Chunked scopes must add up to the same figures.
        monkeypatch.setattr(pulse_mod, "_CHUNK", 1)
        p1 = await compute_pulse(s, "acme", W, people=team)
    for q in (p, p1):
        assert [(d.dept, figures(d)) for d in q.departments] == [("总部/市场", (2, 0, 1, 1, 1, 0, 1))]
        assert q.total.dept == "合计" and figures(q.total) == (2, 0, 1, 1, 1, 0, 1)
        assert q.missing == ["g"]
        assert q.witness_counts == {"e": 1, "g": 0}
        assert q.witness_diversity == {"e": 0.5}
        assert q.mutual_pairs == [("d", "e")]  # d is outside the scope but is e's only witness


async def test_reporting_line_survives_cycles_and_vacancies(db: Database) -> None:
    async with db.transaction() as s:
        s.add(Tenant(key="loop", name="Loop"))
        for uid, mgr, active in (("p", "q", True), ("q", "p", True), ("r", "q", True),
                                 ("top", None, True), ("gone", "top", False), ("kid", "gone", True)):
            s.add(Employee(tenant="loop", userid=uid, name=uid, manager_userid=mgr, active=active))
    async with db.session() as s:
        assert await reporting_line(s, "loop", "p") == {"q", "r"}
        assert await reporting_line(s, "loop", "top") == {"kid"}


async def test_trend_lists_weekly_totals_oldest_first(db: Database) -> None:
    await seed(db)
    async with db.session() as s:
        rows = await trend(s, "acme", "2026-w49", weeks=3)
        team = await trend(s, "acme", W, weeks=2, people={"d", "e"})
    assert [w for w, _ in rows] == ["2026-W47", "2026-W48", W]
    assert figures(rows[0][1]) == (8, 0, 1, 1, 1, 0, 1)
    assert figures(rows[1][1]) == (8, 1, 3, 3, 3, 2, 2)  # g on leave in W48
    assert rows[1][1].fill_rate == 3 / 7
    assert figures(rows[2][1]) == (8, 1, 5, 5, 3, 3, 2)
    assert [(w, figures(f)) for w, f in team] == [("2026-W48", (2, 0, 2, 2, 2, 1, 2)), (W, (2, 0, 2, 2, 1, 1, 1))]


@pytest.mark.parametrize(
    "status,week_over,shown",
    [
        ("confirmed", False, "已确认"), ("confirmed", True, "已确认"),
        ("done", False, "已完成"), ("done", True, "待见证"),
        ("open", False, "进行中"), ("open", True, "未完成"),
        ("not_done", False, "未完成"), ("not_done", True, "未完成"),
    ],
)
def test_action_status(status: str, week_over: bool, shown: str) -> None:
    assert action_status(SimpleNamespace(status=status), week_over) == shown


NOW = datetime(2026, 12, 5, 2, 0, tzinfo=timezone.utc)  # Saturday of W49 in Shanghai: W48 is over, W49 is not


async def test_xlsx_export_reads_back(db: Database, tmp_path: Path) -> None:
    await seed(db)
    out = await export_weekly(db, "acme", ["2026-W48", W], tmp_path / "weekly.xlsx", now=NOW)
    wb = load_workbook(out)
    assert wb.sheetnames == ["明细", "部门指标", "反馈标签", "任务交付", "交付物检查", "回款跟踪", "风险响应及时率", "贡献",
                             "能力评估", "目标校准", "管理者使用", "指标定义"]

    # 明细 lists every active person each week, filled in or not; f has left and shows only
    # where she filled in. (Columns changed on purpose: HR chases the missing from this sheet.)
    ws = wb["明细"]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == ["周", "周一", "工号", "姓名", "部门", "填写状态", "请假/跳过说明", "目标编号", "目标名称",
                             "关键动作", "见证人", "见证人接受", "见证人确认", "动作状态", "完成时间", "确认时间",
                             "修改次数"]
    by_key = {(r[0], r[2]): r for r in rows[1:]}
    assert len(rows) == 1 + 8 + 9 and ("2026-W41", "e") not in by_key and ("2026-W49", "x") not in by_key
    assert ("2026-W48", "f") not in by_key and by_key[(W, "f")][5] == "已填写"
    a49 = by_key[(W, "a")]
    assert a49[1] == datetime(2026, 11, 30)  # the Monday, as a date
    assert a49[3:14] == ("张三", "总部/研发", "已填写", None, "O1-KR2", "NMPA二类证平均获批周期≤82天", "a 的关键动作",
                         "李四", "未回应", "否", "已完成")
    assert a49[14] == datetime(2026, 12, 3, 16, 30) and a49[15] is None and a49[16] == 2
    assert by_key[("2026-W48", "a")][13] == "待见证"  # done, week over, never confirmed
    assert by_key[(W, "b")][13] == "进行中" and by_key[(W, "d")][13] == "未完成"
    assert by_key[(W, "m1")][12:14] == ("是", "已确认") and by_key[(W, "m1")][15] == datetime(2026, 12, 2, 10, 0)
    assert by_key[(W, "d")][7] == "O2" and not by_key[(W, "d")][8]  # O2 is not a known goal
    assert by_key[(W, "boss")][5:7] == ("未填写", None) and by_key[(W, "boss")][9] is None
    assert by_key[(W, "c")][5:7] == ("请假", "请假 12-03~12-10")
    assert by_key[(W, "e")][5:7] == ("已填写", "请假 12-01~12-02")  # filled in despite leave: counts
    assert by_key[("2026-W48", "g")][5] == "请假" and by_key[(W, "g")][5] == "未填写"
    b_row = next(r for r in ws.iter_rows(min_row=2) if r[2].value == "b" and r[0].value == W)
    assert b_row[9].value == "=1+1" and b_row[9].data_type == "s"

    dept = list(wb["部门指标"].iter_rows(values_only=True))
    assert dept[0][:3] == ("周", "部门", "人数")
    by_dept = {(r[0], r[1]): r for r in dept[1:]}
    assert set(by_dept) == {(w, d) for w in ("2026-W48", W) for d in ("总部", "总部/研发", "总部/市场", "全公司")}
    assert by_dept[(W, "总部/研发")][2:] == (4, 1, 3, 3, 2, 2, 1, 1.0, pytest.approx(2 / 3), pytest.approx(2 / 3), 0.5)
    assert by_dept[(W, "全公司")][2:9] == (8, 1, 5, 5, 3, 3, 2)
    assert by_dept[(W, "总部")][10] is None  # no actions: no completion rate
    rate_cell = next(r for r in wb["部门指标"].iter_rows(min_row=2) if r[1].value == "全公司")[9]
    assert rate_cell.number_format == "0.0%"

    defs = {r[0]: r[1] for r in wb["指标定义"].iter_rows(min_row=2, values_only=True)}
    assert "请假/跳过" in defs["填写率"] and "已完成" in defs["见证确认率"]
    assert "Asia/Shanghai" in defs["时间"]


async def test_csv_export_reads_back(db: Database, tmp_path: Path) -> None:
    await seed(db)
    out = await export_weekly(db, "acme", [W], tmp_path / "weekly.csv", now=NOW)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][0] == "周" and rows[0][-1] == "修改次数"
    by_user = {r[2]: r for r in rows[1:]}
    assert set(by_user) == {"boss", "m1", "a", "b", "c", "d", "e", "f", "g"}
    assert by_user["a"][1] == "2026-11-30"
    assert by_user["a"][11:] == ["未回应", "否", "已完成", "2026-12-03 16:30", "", "2"]
    assert by_user["m1"][15] == "2026-12-02 10:00"
    assert by_user["b"][9] == "'=1+1"
    assert by_user["c"][5:7] == ["请假", "请假 12-03~12-10"] and by_user["boss"][5] == "未填写"

    dept_file = tmp_path / "weekly-departments.csv"
    assert dept_file.read_bytes().startswith(b"\xef\xbb\xbf")
    dept = {r[1]: r for r in csv.reader(dept_file.read_text(encoding="utf-8-sig").splitlines()[1:])}
    assert dept["总部/研发"][2:] == ["4", "1", "3", "3", "2", "2", "1", "100.0%", "66.7%", "66.7%", "50.0%"]
    assert dept["总部"][9:] == ["0.0%", "", "", ""]
    assert dept["全公司"][2:9] == ["8", "1", "5", "5", "3", "3", "2"]
    assert not list(tmp_path.glob("*.part"))


async def test_export_refuses_bad_requests(db: Database, tmp_path: Path) -> None:
    await seed(db)
    out = tmp_path / "exports"
    with pytest.raises(ValueError, match=r"\.pdf"):
        await export_weekly(db, "acme", [W], out / "weekly.pdf", now=NOW)
    with pytest.raises(ValueError, match="2026-W60"):
        await export_weekly(db, "acme", ["2026-W60"], out / "weekly.xlsx", now=NOW)
    with pytest.raises(ValueError, match="nope"):
        await export_weekly(db, "nope", [W], out / "weekly.xlsx", now=NOW)
    assert not out.exists()
