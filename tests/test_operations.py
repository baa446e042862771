"""Operator-facing surfaces: metrics, masked secrets in logs, JSON logs, SQLite backup."""
from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.logs import RedactSecrets, secrets_of, setup_logging
from store.db import Database
from tests.harness import at, console_bot


async def test_metrics_report_inbox_outbox_jobs_and_latency(sqlite_db: Database, tmp_path: Path) -> None:
    async with console_bot(sqlite_db, FrozenClock(at("2026-12-01 09:30")), tmp_path) as bot:
        await bot.run_job("morning_prompt", at("2026-12-01 09:30"))
        await bot.say("wangqiang", "O1-KR2 完成2份报告 @李娜")
        text = await (await bot.client.get("/metrics")).text()
    assert 'dongxian_outbox_messages{platform="console",status="sent"}' in text
    assert 'dongxian_job_sends_total{job="morning_prompt"} 40.0' in text
    assert 'dongxian_inbound_events_total{outcome="accepted",platform="console"} 1.0' in text
    assert 'dongxian_handler_seconds_count{kind="text"} 1.0' in text
    assert "dongxian_inbox_pending 0.0" in text


def test_configured_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    cfg = parse_config({"console": {"enabled": True, "token": "console-token-abcdef"},
                        "tenants": [{"key": "acme", "name": "A", "wecom": {
                            "corp_id": "ww1", "agent_id": 1, "secret": "wecom-secret-123456",
                            "token": "callback-token-xyz", "encoding_aes_key": "K" * 43}}]})
    log = logging.getLogger("dongxian.test")
    caplog.handler.addFilter(RedactSecrets(secrets_of(cfg)))
    log.warning("gettoken?corpsecret=%s failed", "wecom-secret-123456")
    try:
        raise RuntimeError("bad key " + "K" * 43)
    except RuntimeError:
        log.exception("decrypt failed with token callback-token-xyz")
    assert "wecom-secret-123456" not in caplog.text
    assert "K" * 43 not in caplog.text and "callback-token-xyz" not in caplog.text
    assert "corpsecret=*** failed" in caplog.text


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_config({"server": {"log_format": "json"}, "console": {"token": "tok-0123456789"}})
    setup_logging(cfg)
    try:
        logging.getLogger("dongxian.test").warning("hello tok-0123456789")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        rec = json.loads(line)
        assert rec["level"] == "WARNING" and rec["message"] == "hello ***"
    finally:
        setup_logging()


async def test_db_backup_makes_a_consistent_copy(sqlite_db: Database, tmp_path: Path) -> None:
    async with console_bot(sqlite_db, FrozenClock(at("2026-12-01 09:30")), tmp_path) as bot:
        await bot.say("wangqiang", "O1-KR2 完成2份报告 @李娜")
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[database]\nurl = "{sqlite_db.url}"\n', encoding="utf-8")
        out = tmp_path / "backup.db"
        proc = subprocess.run([sys.executable, "-m", "bot.cli", "db", "backup", "--config", str(cfg), "--out", str(out)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    copy = sqlite3.connect(out)
    assert copy.execute("select thing from weeklyaction").fetchall() == [("完成2份报告",)]
    copy.close()
