"""Roles by hand: `dongxian org roles`, audited, and kept when the directory is synced again."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.core.clock import FrozenClock
from bot.wecom_directory import sync_wecom_directory
from store.db import Database
from store.migrate import upgrade
from store.models import AuditLog, Employee
from tests.fakes.wecom_server import FakeWeCom, running_bot
from tests.harness import at


def _config(tmp_path: Path) -> Path:
    db = tmp_path / "dongxian.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{db}"\n\n'
                   '[[tenants]]\nkey = "acme"\nname = "Acme"\n', encoding="utf-8")
    cfg.chmod(0o600)
    return cfg


def _roster(tmp_path: Path) -> Path:
    p = tmp_path / "roster.csv"
    p.write_text("userid,name,department,manager_userid,roles\n"
                 "boss,陈总,总部,,manager\nlina,李娜,总部/人力资源部,boss,\nwangq,王强,总部/研发,boss,\n",
                 encoding="utf-8")
    return p


async def _people(url: str) -> dict[str, str]:
    db = Database(url)
    try:
        async with db.session() as s:
            return {e.userid: e.roles for e in (await s.execute(select(Employee))).scalars()}
    finally:
        await db.close()


async def _audit(url: str) -> list[tuple[str, str, str]]:
    db = Database(url)
    try:
        async with db.session() as s:
            return [(a.actor_userid, a.action, a.subject) for a in (await s.execute(
                select(AuditLog).order_by(AuditLog.id))).scalars()]
    finally:
        await db.close()


def test_roles_are_set_added_removed_listed_and_audited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'dongxian.db'}"
    assert main(["db", "upgrade", "--config", str(cfg)]) == 0
    assert main(["org", "import", str(_roster(tmp_path)), "--tenant", "acme", "--config", str(cfg)]) == 0
    capsys.readouterr()

    base = ["org", "roles", "--config", str(cfg), "--tenant", "acme", "--by", "boss"]
    assert main([*base, "add", "lina", "HR"]) == 0
    assert capsys.readouterr().out.strip() == "李娜（lina）的角色：（无） → hr"
    assert main([*base, "add", "wangq", "pmo", "admin"]) == 0
    assert main([*base, "remove", "wangq", "admin"]) == 0
    assert main([*base, "set", "lina", "hr", "manager"]) == 0
    capsys.readouterr()
    assert main([*base, "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "boss\t陈总\t总部\tmanager", "lina\t李娜\t总部/人力资源部\tmanager;hr", "wangq\t王强\t总部/研发\tpmo"]

    # Bad requests say why and change nothing.
    assert main([*base, "add", "lina", "boss"]) == 1
    assert "无效的角色 boss" in capsys.readouterr().err
    assert main([*base, "add", "nobody", "hr"]) == 1
    assert "nobody" in capsys.readouterr().err
    import asyncio
    assert asyncio.run(_people(url)) == {"boss": "manager", "lina": "manager;hr", "wangq": "pmo"}
    assert asyncio.run(_audit(url)) == [
        ("boss", "change_roles", "lina: - → hr"), ("boss", "change_roles", "wangq: - → pmo;admin"),
        ("boss", "change_roles", "wangq: pmo;admin → pmo"), ("boss", "change_roles", "lina: hr → manager;hr")]


async def test_a_directory_sync_keeps_hand_set_roles(db: Database) -> None:
    from store.roles import change_roles

    fake = FakeWeCom()
    fake.add_department(2, "人力资源部", 1, leaders=["lina"])
    fake.departments[1]["department_leader"] = ["boss"]
    fake.add_user("boss", "陈总", [1])
    fake.add_user("lina", "李娜", [2])
    fake.add_user("zhou", "周敏", [2])
    await fake.start()
    try:
        async with running_bot(db, fake, FrozenClock(at("2026-12-01 09:00"))) as bot:
            tenant: Any = bot.runtime.config.tenants[0]
            await sync_wecom_directory(bot.runtime, tenant, now=at("2026-12-01 09:00"))
            # The sync makes department leaders managers, and nobody HR or PMO: that is granted by hand.
            await change_roles(db, "acme", "add", "zhou", ["hr"], by="boss", now=at("2026-12-01 09:05"))
            await change_roles(db, "acme", "add", "lina", ["pmo"], by="boss", now=at("2026-12-01 09:05"))
            again = await sync_wecom_directory(bot.runtime, tenant, now=at("2026-12-02 09:00"))
            assert again.updated == []
            async with db.session() as s:
                roles = {e.userid: e.roles for e in (await s.execute(select(Employee))).scalars()}
            assert roles == {"boss": "manager", "lina": "manager;pmo", "zhou": "hr"}
    finally:
        await fake.stop()
