"""HR's first Friday: the export names everyone, opens cleanly in Excel, and agrees with the cards.

周敏 (HR) exports week 2026-W49 of the demo company: 王强, 李娜 and 赵磊 filled in, 孙丽 skipped
the week (出差), 赵六-like 冯涛 is on leave, everyone else in 注册部's line is missing.
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.core.clock import FrozenClock
from store.db import Database
from store.export import export_weekly
from store.models import Tenant
from store.pulse import compute_pulse, trend
from tests.harness import at, console_bot

REG = "康骨医疗/研发中心/注册部"


async def _week_of_registration(bot) -> None:  # type: ignore[no-untyped-def]
    await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
    await bot.press("li_na", await bot.last_card("li_na", "见证邀请"), "接受见证")
    await bot.say("li_na", "无 整理注册资料目录 @赵磊")
    await bot.say("zhaolei", "O1 提交一份补正资料 @孙丽")
    await bot.say("sunli", "本周跳过 出差")
    await bot.say("fengtao", "请假 12-01 至 12-04 年假")
    await bot.say("wangqiang", "完成")
    await bot.press("li_na", await bot.last_card("li_na", "请确认完成"), "确认完成")


async def test_export_lists_missing_skipped_and_on_leave_people_in_excel_formats(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))  # Monday of 2026-W49
    async with console_bot(db, clock, tmp_path) as bot:
        await _week_of_registration(bot)
        out = await export_weekly(db, "demo", ["2026-W49"], tmp_path / "w49.xlsx", now=at("2026-12-05 10:00"))
    wb = load_workbook(out)
    ws = wb["明细"]
    header = [c.value for c in ws[1]]
    rows = {r[header.index("工号")].value: {h: c for h, c in zip(header, r)} for r in ws.iter_rows(min_row=2)}
    assert len(rows) == 40  # every active person of the demo company, once
    status = {u: r["填写状态"].value for u, r in rows.items()}
    assert (status["wangqiang"], status["li_na"], status["zhaolei"]) == ("已填写",) * 3
    assert status["sunli"] == "跳过" and rows["sunli"]["请假/跳过说明"].value == "本周跳过：出差"
    assert status["fengtao"] == "请假" and rows["fengtao"]["请假/跳过说明"].value == "请假 12-01~12-04 年假"
    assert status["liuyang"] == "未填写" and rows["liuyang"]["关键动作"].value is None
    assert sum(1 for v in status.values() if v == "未填写") == 40 - 5
    wq = rows["wangqiang"]
    assert (wq["见证人"].value, wq["见证人接受"].value, wq["见证人确认"].value, wq["动作状态"].value) == (
        "李娜", "已接受", "是", "已确认")
    assert (rows["li_na"]["见证人接受"].value, rows["li_na"]["见证人确认"].value) == ("未回应", "否")

    # Dates are dates, times are times, rates are percentages, durations are hours:minutes.
    assert wq["周一"].is_date and wq["周一"].value == datetime(2026, 11, 30) and wq["周一"].number_format == "yyyy-mm-dd"
    assert wq["确认时间"].is_date and wq["确认时间"].number_format == "yyyy-mm-dd hh:mm"
    for sheet in ("明细", "部门指标", "任务交付", "指标定义"):
        assert wb[sheet].freeze_panes == "A2", sheet
    widths = {c: ws.column_dimensions[c].width for c in "ACEJ"}
    assert widths["E"] >= len(REG) * 1.5 and widths["J"] >= 40  # a full department path, a sentence
    assert ws.auto_filter.ref == f"A1:Q{len(rows) + 1}"
    dept = wb["部门指标"]
    dhead = [c.value for c in dept[1]]
    reg = next(r for r in dept.iter_rows(min_row=2) if r[1].value == REG)
    assert reg[dhead.index("填写率")].number_format == "0.0%" and reg[dhead.index("见证确认率")].number_format == "0.0%"
    tasks = wb["任务交付"]
    thead = [c.value for c in tasks[1]]
    total = next(r for r in tasks.iter_rows(min_row=2) if r[0].value == "合计")
    assert total[thead.index("按时交付率")].number_format == "0.0%"
    assert total[thead.index("解除用时中位数（时:分）")].number_format == "[h]:mm"
    defs = {r[0]: r[1] for r in wb["指标定义"].iter_rows(min_row=2, values_only=True)}
    assert "未填写" in defs["填写状态"] and "首次预警" in defs["考核截止时间"]


async def test_a_department_has_the_same_figures_on_the_managers_card_hrs_card_and_the_export(
        db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await _week_of_registration(bot)
        clock.set(at("2026-12-04 17:30"))
        assert await bot.run_job("pulse", at("2026-12-04 17:30")) > 0
        # 刘洋 leads 注册部 and only 注册部: his card is the department's figures.
        team = dict(tuple(f) for f in (await bot.last_card("liuyang", "团队脉搏"))["fields"])
        company = await bot.last_card("zhoumin", "组织脉搏")
        out = await export_weekly(db, "demo", ["2026-W49"], tmp_path / "w49.xlsx", now=at("2026-12-04 17:30"))
    # 5 people (刘洋 included), 孙丽 skipped → 4 expected, 3 filled; 3 actions, 1 done, 1 confirmed.
    assert team["填写率"] == "75%（3/4）" and team["完成率"] == "33%（1/3）"
    assert team["目标关联度"] == "67%（2/3）" and team["见证确认率"] == "100%（1/1）"
    reg_line = next(line for line in company["body"].splitlines() if line.startswith("注册部："))
    assert reg_line == "注册部：填写 75% · 完成 33% · 关联 67% · 见证 100%"
    ws = load_workbook(out)["部门指标"]
    head = [c.value for c in ws[1]]
    row = dict(zip(head, next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[1] == REG)))
    assert (row["人数"], row["请假/跳过"], row["已填写"], row["关键动作数"], row["已完成"], row["关联目标"],
            row["见证确认"]) == (5, 1, 3, 3, 1, 2, 1)
    assert (row["填写率"], row["完成率"], row["目标关联度"], row["见证确认率"]) == (
        0.75, pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0)


async def test_no_week_before_go_live_counts(db: Database, tmp_path: Path) -> None:
    """The company goes live on Wednesday 2026-12-02: W49 is its first week, nothing before it counts."""
    from store.roster import import_roster
    from bot.demo import DATA

    clock = FrozenClock(at("2026-12-02 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        async with db.transaction() as s:
            (await s.get(Tenant, "demo")).live_from = None  # type: ignore[union-attr]
        assert not (await import_roster(db, "demo", DATA / "roster.csv", now=clock.now())).errors
        assert not (await import_roster(db, "demo", DATA / "roster.csv", now=at("2026-12-20 10:00"))).errors
        async with db.session() as s:
            assert (await s.get(Tenant, "demo")).live_from == date(2026, 12, 2)  # type: ignore[union-attr]
        await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")

        # The brief: one week expected, none missed before it.
        await bot.say("liuyang", "简报 @王强 2026Q4")
        brief = await bot.last_card("liuyang")
        text = brief["body"] + " ".join(v for _, v in brief["fields"])
        assert "1/1 周" in text and "W40" not in text
        # The trend starts at go-live; the pulse of the week before sends nothing; the export refuses it.
        async with db.session() as s:
            points = await trend(s, "demo", "2026-W49", weeks=12)
        assert [w for w, _ in points] == ["2026-W49"]
        assert await bot.run_job("pulse", at("2026-11-27 17:30")) == 0
        with pytest.raises(ValueError, match="上线日期"):
            await export_weekly(db, "demo", ["2026-W48"], tmp_path / "w48.xlsx", now=clock.now())
        out = await export_weekly(db, "demo", ["2026-W47", "2026-W49"], tmp_path / "w.xlsx", now=clock.now())
        assert {r[0] for r in load_workbook(out)["明细"].iter_rows(min_row=2, values_only=True)} == {"2026-W49"}
        # The console shows no figures for a week before go-live.
        r = await bot.client.get("/console/api/pulse", params={"tenant": "demo", "userid": "zhoumin", "week": "2026-W48"})
        body = await r.json()
        assert body["before_live"] is True and "total" not in body and body["live_from"] == "2026-12-02"
