"""Files the bot writes are its owner's alone, even when it is started with umask 022.

The database and its WAL, `dongxian db backup`, the weekly export and a brief
document hold people's data: 0600, and the directories the bot creates 0700.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.core.clock import FrozenClock
from bot.core.files import private_dir
import handlers.brief_document as brief_document
from store.db import Database
from store.export import export_weekly
from store.migrate import upgrade
from tests.harness import at, console_bot


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(0o022))  # a permissive umask, as many services have


def test_the_cli_creates_the_database_and_backups_owner_only(tmp_path: Path) -> None:
    db_path = tmp_path / "var" / "nested" / "dongxian.db"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{db_path}"\n', encoding="utf-8")
    up = cli("db", "upgrade", "--config", str(cfg))
    assert up.returncode == 0, up.stderr
    assert mode(db_path) == 0o600
    assert mode(db_path.parent) == 0o700 and mode(db_path.parent.parent) == 0o700
    for side in (Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        if side.exists():
            assert mode(side) == 0o600, side
    out = tmp_path / "backup.db"
    bk = cli("db", "backup", "--config", str(cfg), "--out", str(out))
    assert bk.returncode == 0, bk.stderr
    assert mode(out) == 0o600


async def test_exports_briefs_and_a_reopened_database_are_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.umask(0o022)  # in this process too: the modes are set explicitly, not left to the umask
    try:
        path = tmp_path / "open.db"
        path.touch(mode=0o644)
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db)
        assert mode(path) == 0o600 and mode(Path(f"{path}-wal")) == 0o600
        async with console_bot(db, FrozenClock(at("2026-12-01 10:00")), tmp_path / "data") as bot:
            await bot.say("wangqiang", "O1-KR2 完成2份报告 @李娜")
        for name in ("x.xlsx", "x.csv"):
            out = await export_weekly(db, "demo", ["2026-W49"], tmp_path / "exports" / name)
            assert mode(out) == 0o600 and mode(out.parent) == 0o700
        assert mode(tmp_path / "exports" / "x-departments.csv") == 0o600
        await db.close()
        monkeypatch.setattr(brief_document, "render_html", lambda b: "<html>王强的反馈</html>")
        doc = brief_document.write_document(SimpleNamespace(tenant="demo", userid="wangqiang", period="2026-Q4"),
                                            tmp_path / "data2")
        assert mode(doc) == 0o600 and mode(doc.parent) == 0o700 and mode(tmp_path / "data2") == 0o700
        existing = tmp_path / "mine"
        existing.mkdir(mode=0o755)
        private_dir(existing)
        assert mode(existing) == 0o755  # a directory the bot did not create is not the bot's to change
    finally:
        os.umask(old)
