"""`dongxian demo`: a fresh SQLite database with a demo company, console on 127.0.0.1:8080.

The company is modelled on the medical-device maker of the product's origin
story: about forty people across 注册部, 销售部, 质量部, 市场部, 采购部, IT部,
客服部 and HR, with three-level goals (O1 新产品上市成功率 → O1-KR2 …).
"""
from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

from bot.core.clock import utcnow
from bot.core.config import Config, parse_config
from bot.demo_contributions import seed_contributions
from store import competencies as comp
from store.db import Database
from store.goal_changes import apply_change, propose
from store.goals import import_goals
from store.migrate import upgrade
from store.roster import ensure_tenant, import_roster

DATA = Path(__file__).parent / "demo_data"
DEMO_TENANT = "demo"


def demo_config(data_dir: str = "var", port: int = 8080, db_name: str = "demo.db") -> Config:
    return parse_config({
        "server": {"host": "127.0.0.1", "port": port, "data_dir": data_dir},
        "database": {"url": f"sqlite+aiosqlite:///{data_dir}/{db_name}"},
        "console": {"enabled": True},
        "tenants": [{"key": DEMO_TENANT, "name": "宁波康骨医疗器械有限公司", "timezone": "Asia/Shanghai"}],
    })


async def seed_demo(db: Database, config: Config, *, now: datetime | None = None) -> None:
    """Migrate and load the demo company's roster and goals, set in the quarter of `now`.

    The goal file names one quarter; the demo moves it to the current one, so a demo started next
    year still has this quarter's goals, changes and the last quarter's finished round."""
    now = now or utcnow()
    await upgrade(db)
    tenant = config.tenant(DEMO_TENANT)
    period = quarter(now.astimezone(tenant.tz).date())
    await ensure_tenant(db, tenant)
    report = await import_roster(db, tenant.key, DATA / "roster.csv", now=now)
    if report.errors:
        raise RuntimeError("demo roster is invalid: " + "; ".join(report.errors))
    with tempfile.TemporaryDirectory() as tmp:
        goals_file = Path(tmp) / "goals.csv"
        goals_file.write_text((DATA / "goals.csv").read_text(encoding="utf-8").replace(
            f",{DEMO_FILE_PERIOD}", f",{period}"), encoding="utf-8")
        goals = await import_goals(db, tenant.key, goals_file, now=now, by_userid="zhoumin")
    if goals.errors:
        raise RuntimeError("demo goals are invalid: " + "; ".join(goals.errors))
    for importer, name in ((comp.import_library, "competencies.csv"), (comp.import_focus, "competency_focus.csv"),
                           (comp.import_learning, "learning.csv")):
        loaded = await importer(db, tenant.key, DATA / name)
        if loaded.errors:
            raise RuntimeError(f"demo {name} is invalid: " + "; ".join(loaded.errors))
    await seed_finished_round(db, tenant.key, comp.previous_period(period), now=now)
    await seed_goal_changes(db, tenant.key, tenant.tz, now, period=period)
    await seed_contributions(db, tenant.key, tenant.tz, now)


# The quarter written in demo_data/goals.csv; seeding replaces it with the current one.
DEMO_FILE_PERIOD = "2026Q4"


def quarter(d: date) -> str:
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


# The last quarter's round of 注册部 (刘洋's team), finished: (self, manager) per focus competency
# C03 C06 C07 C11; 王强's C03 was calibrated to L2.
DEMO_ROUND = {
    "wangqiang": ((3, 2, 2, 2), (1, 2, 2, 2)),
    "li_na": ((2, 2, 3, 2), (2, 2, 2, 2)),
    "zhaolei": ((2, 1, 2, 2), (2, 1, 1, 2)),
    "sunli": ((2, 2, 2, 1), (1, 2, 2, 1)),
}


async def seed_finished_round(db: Database, tenant: str, period: str, *, now: datetime) -> None:
    """One finished assessment round, so the library, the reveal and a held calibration show from the start."""
    async with db.transaction() as s:
        lib = await comp.library(s, tenant)
        codes = ["C03", "C06", "C07", "C11"]
        for userid, sides in DEMO_ROUND.items():
            for side, who, levels in ((comp.SELF, userid, sides[0]), (comp.MANAGER, "liuyang", sides[1])):
                a = comp.Assessment(tenant=tenant, period=period, subject_userid=userid, assessor_userid=who,
                                    side=side, state=comp.SUBMITTED, codes=";".join(codes), created_at=now,
                                    submitted_at=now)
                s.add(a)
                await s.flush()
                assert a.id is not None
                for code, level in zip(codes, levels):
                    s.add(comp.Rating(tenant=tenant, assessment_id=a.id, code=code, level=level, evidence=[], at=now))
        cal = comp.Calibration(tenant=tenant, period=period, subject_userid="wangqiang", manager_userid="liuyang",
                               reasons=[{"code": "C03", "why": comp.GAP2}], state="held", opened_at=now,
                               due_on=now.date().isoformat(), held_at=now)
        s.add(cal)
        await s.flush()
        assert cal.id is not None and "C03" in lib
        s.add(comp.AgreedLevel(tenant=tenant, calibration_id=cal.id, period=period, subject_userid="wangqiang",
                               code="C03", level=2, note="已当面对齐：能归纳需求，验证话术还在练", by_userid="liuyang",
                               at=now))


# The article's case: a procurement-policy change yesterday; 注册部's manager 刘洋 cuts O1-KR2's
# weight by 30 % and adds O1-KR5; 陈杰 approves both today. One rename (not a calibration) by 销售部.
DEMO_CHANGES = (
    ("liuyang", "O1-KR2", "weight", "40", "28", "政策", "集采政策突变，注册路径需重排", {}),
    ("liuyang", "O1-KR5", "new", "", "集采替代方案推进进度", "政策", "集采",
     {"parent_code": "O1", "weight": 10.0, "department": "康骨医疗/研发中心/注册部"}),
    ("huangyan", "O1-KR1", "title", "新品首批订单≥300套", "新品首批订单≥320套", "市场", "渠道反馈", {}),
)


async def seed_goal_changes(db: Database, tenant: str, tz, now: datetime,  # type: ignore[no-untyped-def]
                            *, period: str) -> None:
    """The demo's goal changes, proposed yesterday and approved now (so the rate has something to show)."""
    today = now.astimezone(tz).date()
    async with db.transaction() as s:
        for by, code, name, old, new, cause, note, detail in DEMO_CHANGES:
            change = propose(s, tenant, goal_code=code, field_name=name, old=old, new=new, cause=cause, note=note,
                             event_date=today - timedelta(days=1), by=by, approver="chenjie",
                             now=now - timedelta(days=1),
                             detail={**detail, "period": period} if name == "new" else detail)
            await s.flush()
            await apply_change(s, change, by="chenjie", now=now, effective=today)


def reset_database_file(config: Config) -> None:
    url = config.database.url
    path = Path(url.split("///", 1)[1])
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.unlink()
