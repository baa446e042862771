"""File drops and unmatched people: a sales sheet imported twice adds nothing the second time; an
event for someone not on the roster is kept as unmatched and listed, not dropped — SQLite and PostgreSQL;
and the `dongxian events` commands as an operator types them."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.core.clock import FrozenClock
from store.db import Database
from store.event_files import import_events
from tests.harness import SHANGHAI, at, console_bot
from tests.trace_support import events, receivables, records, trace_section

NOW = at("2026-12-02 10:00")
SHEET = ("id,person,status,occurred_at,title,合同金额,客户名称,回款日期\n"
         "XS-001,zhangwei,approved,2026-12-01 16:00,慈溪人民医院 关节产品合同,36万,慈溪市人民医院,2027-01-15\n"
         "XS-002,黄燕,approved,2026-12-01 17:30,余姚中医院 脊柱合同,\"85,000\",余姚市中医医院,2027/2/28\n"
         "XS-003,钱多多,approved,2026-12-02 09:00,新人合同,10000,北仑区人民医院,2027-03-01\n")


async def test_a_sales_sheet_imported_twice_creates_nothing_new(db: Database, tmp_path: Path) -> None:
    sheet = tmp_path / "回款.csv"
    sheet.write_text(SHEET, encoding="utf-8-sig")
    async with console_bot(db, FrozenClock(NOW), tmp_path, trace=trace_section()) as bot:
        report = await import_events(db, "demo", sheet, "sales_sheet", tz=SHANGHAI, now=NOW)
        assert (report.added, report.unchanged, report.errors) == (3, 0, [])
        await bot.runtime.settle()
        assert [(r.owner, r.amount_cents, r.due.isoformat() if r.due else None) for r in await receivables(db)] == [
            ("zhangwei", 36_000_000, "2027-01-15"), ("huangyan", 8_500_000, "2027-02-28")]
        assert (await bot.texts("huangyan"))[0].startswith("已建立回款跟踪：余姚中医院 脊柱合同｜客户 余姚市中医医院｜金额 ¥85,000.00")
        # 钱多多 is not on the roster: the event is kept as unmatched, with nothing applied for anyone.
        unmatched = [e for e in await events(db) if e.state == "unmatched"]
        assert [(e.external_id, e.person) for e in unmatched] == [("XS-003", "钱多多")]

        again = await import_events(db, "demo", sheet, "sales_sheet", tz=SHANGHAI, now=at("2026-12-03 10:00"))
        assert (again.added, again.unchanged) == (0, 3)
        await bot.runtime.settle()
        assert len(await events(db)) == 3 and len(await receivables(db)) == 2 and len(await records(db)) == 2
        assert await bot.texts("zhangwei") == ["已建立回款跟踪：慈溪人民医院 关节产品合同｜客户 慈溪市人民医院｜金额 ¥360,000.00｜回款日 2027-01-15"]

        # A file with a bad row writes nothing and names the line.
        bad = tmp_path / "bad.csv"
        bad.write_text("id,person,occurred_at\nXS-9,zhangwei,2026-12-01\n,zhangwei,2026-12-01\n", encoding="utf-8")
        report = await import_events(db, "demo", bad, "sales_sheet", tz=SHANGHAI, now=NOW)
        assert report.errors == ["第3行：id 为空 / line 3: empty id"] and len(await events(db)) == 3
        nohead = tmp_path / "nohead.csv"
        nohead.write_text("编号,人员\nXS-9,zhangwei\n", encoding="utf-8")
        report = await import_events(db, "demo", nohead, "sales_sheet", tz=SHANGHAI, now=NOW)
        assert "缺少 id 列" in report.errors[0]


def test_the_events_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/dx.db"
    config = tmp_path / "config.toml"
    config.write_text(f'''[database]
url = "{db_url}"
[[tenants]]
key = "acme"
name = "示例"
[[tenants.trace.rules]]
name = "线下合同"
source = "sales_sheet"
status = ["approved"]
effect = "receivable"
''', encoding="utf-8")
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    sheet = tmp_path / "回款.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    capsys.readouterr()
    assert main(["events", "import", str(sheet), "--source", "sales_sheet", "--tenant", "acme", "--config", str(config)]) == 0
    assert "新增 3 条事件，已有 0 条未变" in capsys.readouterr().out
    assert main(["events", "import", str(sheet), "--source", "sales_sheet", "--tenant", "acme", "--config", str(config)]) == 0
    assert "新增 0 条事件，已有 3 条未变" in capsys.readouterr().out
    assert main(["events", "import", str(sheet), "--source", "Sales Sheet", "--tenant", "acme", "--config", str(config)]) == 2
    capsys.readouterr()
    assert main(["events", "rules", "--tenant", "acme", "--config", str(config)]) == 0
    assert "线下合同\tsource=sales_sheet code=* type=* status=approved person=applicant → receivable" in capsys.readouterr().out
    # Nothing is unmatched until the service has applied the rules (it has not run here).
    assert main(["events", "unmatched", "--tenant", "acme", "--config", str(config)]) == 0
    assert "没有未匹配的事件" in capsys.readouterr().out
