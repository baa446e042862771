"""`dongxian demo`: a fresh SQLite database with a demo company, console on 127.0.0.1:8080.

The company is modelled on the medical-device maker of the product's origin
story: about forty people across 注册部, 销售部, 质量部, 市场部, 采购部, IT部,
客服部 and HR, with three-level goals (O1 新产品上市成功率 → O1-KR2 …).
"""
from __future__ import annotations

from pathlib import Path

from bot.core.clock import utcnow
from bot.core.config import Config, parse_config
from store.db import Database
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


async def seed_demo(db: Database, config: Config) -> None:
    """Migrate and load the demo company's roster and goals."""
    await upgrade(db)
    tenant = config.tenant(DEMO_TENANT)
    await ensure_tenant(db, tenant)
    report = await import_roster(db, tenant.key, DATA / "roster.csv", now=utcnow())
    if report.errors:
        raise RuntimeError("demo roster is invalid: " + "; ".join(report.errors))
    goals = await import_goals(db, tenant.key, DATA / "goals.csv", now=utcnow(), by_userid="zhoumin")
    if goals.errors:
        raise RuntimeError("demo goals are invalid: " + "; ".join(goals.errors))


def reset_database_file(config: Config) -> None:
    url = config.database.url
    path = Path(url.split("///", 1)[1])
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.unlink()
