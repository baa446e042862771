"""Contributions in chat, on SQLite and PostgreSQL: 王强 records a project revenue with 唐凯 as verifier,
唐凯 confirms it by typing 属实; 唐凯 then asking 王强 to verify his own is refused as reciprocal (the
same calendar month), as are self-verification, an amount over the monthly cap and what cannot be read —
each with its reason and nothing stored. The heat map renders with Chinese labels and leaves a 3-person
cell blank; the ranked list is for managers (their line) and HR only; the manager enters a reward amount
and HR's payroll export holds it, with nothing paid."""
from __future__ import annotations

import io
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from cards.chart import cjk_font_family
from cards.heatmap import SUPPRESSED, heatmap_figure
from handlers.context import Outgoing
from handlers.contributions import fmt_amount, heat_table, read_amount, read_draft, read_period
from store import contributions as cs
from store.db import Database
from store.models import WeeklyAction
from store.statuses import ActionStatus, WitnessState
from tests.harness import ConsoleBot, at, console_bot

CAPS = {"contributions": {"max_yuan_per_month": 200000, "max_per_month": 4}}


async def count(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(cs.Contribution))).scalar_one())


async def rows(db: Database) -> list[cs.Contribution]:
    async with db.session() as s:
        return list((await s.execute(select(cs.Contribution).order_by(cs.Contribution.id))).scalars())


async def refused(bot: ConsoleBot, db: Database, userid: str, text: str, expect: str) -> None:
    """`text` is answered with `expect` and stores nothing."""
    before = await count(db)
    await bot.new(userid)
    await bot.say(userid, text)
    replies = await bot.texts(userid)
    assert any(expect in r for r in replies), (text, replies)
    assert any("未记录" in r for r in replies), replies
    assert await count(db) == before, f"{text!r} stored something"


async def verified(db: Database, contributor: str, verifier: str, kind: str, unit: str, amount: float,
                   department: str, month: str = "2026-12") -> None:
    async with db.transaction() as s:
        s.add(cs.Contribution(tenant="demo", contributor_userid=contributor, verifier_userid=verifier,
                              department=department, kind=kind, unit=unit, amount=amount,
                              description=f"{contributor} 的贡献", links=[], month=month, state=cs.VERIFIED,
                              created_at=at("2026-12-02 10:00"), decided_at=at("2026-12-02 11:00")))


def test_amounts_as_people_type_them() -> None:
    assert read_amount("￥12万 发布会", cs.REVENUE)[:2] == (120000, cs.YUAN)  # type: ignore[index]
    assert read_amount("1.2w 发布会", cs.REVENUE)[:2] == (12000, cs.YUAN)  # type: ignore[index]
    assert read_amount("发布会 120,000元", cs.REVENUE)[:2] == (120000, cs.YUAN)  # type: ignore[index]
    assert read_amount("¥１２００００ 发布会", cs.REVENUE)[:2] == (120000, cs.YUAN)  # type: ignore[index]
    assert read_amount("16小时 报告", cs.SAVING)[:2] == (16, cs.HOURS)  # type: ignore[index]
    assert read_amount("16 hours reports", cs.SAVING)[:2] == (16, cs.HOURS)  # type: ignore[index]
    assert read_amount("8次 模板", cs.REUSE)[:2] == (8, cs.TIMES)  # type: ignore[index]
    assert read_amount("300 流程", cs.SAVING) is None  # ¥ or hours? not guessed
    assert read_amount("很多钱", cs.REVENUE) is None
    assert read_amount("发布会 12-20 上线", cs.REVENUE) is None  # a date, not ¥12
    assert read_amount("发布会 12-20 上线 ¥3000", cs.REVENUE)[:2] == (3000, cs.YUAN)  # type: ignore[index]
    assert read_amount("16小时", cs.REVENUE) is None  # revenue is money
    d = read_draft("revenue ¥1.2w 新官网上线 T3 O1-KR2 @唐凯")
    assert (d.kind, d.amount, d.unit, d.mentions) == (cs.REVENUE, 12000, cs.YUAN, ["唐凯"])
    assert d.links == ["task:T3", "goal:O1-KR2"] and "新官网上线" in d.description
    assert fmt_amount(120000, cs.YUAN) == "¥120,000"


async def test_a_contribution_verified_and_a_reciprocal_one_refused(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-03 10:00"))
    async with console_bot(db, clock, tmp_path, **CAPS) as bot:
        await bot.say("wangqiang", "贡献 项目收益 ￥12万 发布会提前两周上线 O1-KR2 @唐凯")
        reply = (await bot.texts("wangqiang"))[-1]
        assert "已记录：项目收益 ¥120,000 发布会提前两周上线 O1-KR2" in reply and "唐凯 核实" in reply
        card = await bot.last_card("tangkai", "请核实贡献")
        assert "王强 · 项目收益 ¥120,000" in card["title"] and "O1-KR2" in card["body"]
        assert [b["text"] for b in card["buttons"]] == ["属实", "不属实"]
        [c] = await rows(db)
        assert (c.state, c.verifier_userid, c.month, c.links) == (cs.PENDING, "tangkai", "2026-12", ["goal:O1-KR2"])

        # 唐凯 acknowledges first (收到 verifies nothing), then types 属实.
        await bot.new("tangkai")
        await bot.say("tangkai", "收到")
        assert await bot.texts("tangkai") and (await rows(db))[0].state == cs.PENDING
        await bot.say("tangkai", "属实！")
        assert (await rows(db))[0].state == cs.VERIFIED
        assert (await bot.last_card("tangkai", "请核实贡献"))["result"] == "已核实"
        assert any("唐凯 已核实你的贡献" in t for t in await bot.texts("wangqiang"))
        # The card pressed afterwards (a double click) changes nothing.
        await bot.press("tangkai", card, "属实")
        assert (await rows(db))[0].state == cs.VERIFIED

        # Reciprocal in the same month: 唐凯 verified 王强's, so 王强 cannot verify 唐凯's.
        await refused(bot, db, "tangkai", "贡献 知识复用 8次 运维手册被注册部复用 @王强", "你核实过 王强 的贡献")
        # … and a pending request counts as well: 王强 asks 李娜, so 李娜 cannot ask 王强 back.
        await bot.say("wangqiang", "贡献 流程节省 16小时 注册检验报告自动汇总 @李娜")
        await refused(bot, db, "li_na", "贡献 知识复用 3次 发补意见模板被复用 @王强", "你核实过 王强 的贡献")
        # 李娜 declines in words, with her reason; 王强 is told and it does not count.
        await bot.say("li_na", "不属实，只节省了 8 小时")
        saving = (await rows(db))[-1]
        assert saving.state == cs.DECLINED and saving.decline_reason == "只节省了 8 小时"
        assert any("李娜 认为这条贡献不属实（只节省了 8 小时）" in t for t in await bot.texts("wangqiang"))

        # The cycle is the calendar month: in January 唐凯 may ask 王强.
        clock.set(at("2027-01-05 10:00"))
        await bot.say("tangkai", "贡献 知识复用 8次 运维手册被注册部复用 @王强")
        assert "已记录：知识复用 8 次" in (await bot.texts("tangkai"))[-1]


async def test_self_over_cap_and_unreadable_are_refused_and_store_nothing(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-03 10:00"))
    async with console_bot(db, clock, tmp_path, **CAPS) as bot:
        await refused(bot, db, "wangqiang", "贡献 项目收益 ¥5000 发布会提前两周上线 @王强", "不能自己核实自己的贡献")
        await refused(bot, db, "wangqiang", "贡献 项目收益 ¥5000 发布会提前两周上线", "需要一位核实人")
        await refused(bot, db, "wangqiang", "贡献 项目收益 很多钱 发布会提前两周上线 @唐凯", "看不懂数额")
        await refused(bot, db, "wangqiang", "贡献 流程节省 300 流程优化 @唐凯", "看不懂数额")
        await refused(bot, db, "wangqiang", "贡献 发布会提前两周上线 ¥5000 @唐凯", "没有看出贡献类型")
        await refused(bot, db, "wangqiang", "贡献 项目收益 ¥5000 @唐凯", "请写一句发生了什么")
        await refused(bot, db, "wangqiang", "贡献 项目收益 ¥5000 集采方案 T99 @唐凯", "找不到关联的 T99")
        await refused(bot, db, "wangqiang", "贡献 项目收益 ¥5000 集采方案 @唐凯 @李娜", "只能 @ 一位核实人")

        # The cap is per person and month: ¥150,000 + ¥60,000 is over ¥200,000.
        await bot.say("wangqiang", "贡献 项目收益 15万元 集采中标 @唐凯")
        assert await count(db) == 1
        await refused(bot, db, "wangqiang", "贡献 项目收益 ¥60,000 新增经销商 @李娜", "超过每人每月上限")
        await bot.say("wangqiang", "贡献 项目收益 5万 新增经销商 @李娜")  # exactly at the cap
        assert await count(db) == 2
        # So is the number of contributions (4 a month here).
        await bot.say("wangqiang", "贡献 知识复用 3次 注册模板被复用 @李娜")
        await bot.say("wangqiang", "贡献 知识复用 2次 检验清单被复用 @李娜")
        await refused(bot, db, "wangqiang", "贡献 知识复用 1次 FAQ 被复用 @李娜", "每人每月最多 4 条")

        # The card path: 贡献 alone, pick the type, then the rest in words.
        await bot.say("sunli", "贡献")
        kinds = await bot.last_card("sunli", "记一条贡献")
        await bot.press("sunli", kinds, "2. 流程节省")
        assert any("流程节省：请回复" in t for t in await bot.texts("sunli"))
        await bot.say("sunli", "很快")  # unreadable: refused, the question stays open
        assert await count(db) == 4
        await bot.say("sunli", "１６ 小时 临床评价报告模板化")
        assert any("谁能核实这件事" in t for t in await bot.texts("sunli"))
        await bot.say("sunli", "@孙丽")  # herself: refused with the reason, asked again
        assert any("不能自己核实自己的贡献" in t for t in await bot.texts("sunli")) and await count(db) == 4
        await bot.say("sunli", "@赵磊")
        c = (await rows(db))[-1]
        assert (c.contributor_userid, c.kind, c.unit, c.amount, c.verifier_userid) == (
            "sunli", cs.SAVING, cs.HOURS, 16, "zhaolei")
        # 赵磊 presses 属实 on the card.
        await bot.press("zhaolei", await bot.last_card("zhaolei", "请核实贡献"), "属实")
        assert (await rows(db))[-1].state == cs.VERIFIED


async def test_heat_map_renders_chinese_and_suppresses_a_small_cell(db: Database, tmp_path: Path) -> None:
    if cjk_font_family() is None:
        pytest.skip("no CJK font on this machine (install fonts-noto-cjk)")
    clock = FrozenClock(at("2026-12-04 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        rd = "康骨医疗/研发中心/注册部"
        for who in ("wangqiang", "li_na", "zhaolei", "sunli", "liuyang"):  # five people of 研发中心
            await verified(db, who, "tangkai", cs.REVENUE, cs.YUAN, 10000, rd)
        await verified(db, "xiezhen", "tangkai", cs.REVENUE, cs.YUAN, 5000, "康骨医疗/研发中心/产品研发部")
        for who in ("li_na2", "zhengshuang", "fengtao"):  # three people of 质量部
            await verified(db, who, "wangqiang", cs.SAVING, cs.HOURS, 8, "康骨医疗/质量部")
        await verified(db, "fengtao", "wangqiang", cs.SAVING, cs.HOURS, 4, "康骨医疗/质量部")

        async with db.session() as s:
            data, table = await heat_table(Outgoing(s, bot.runtime.config.tenant("demo"), clock.now()), "2026Q4")
        small = data.cell("康骨医疗/质量部", cs.SAVING)
        assert small is not None and small.suppressed and small.evidence == 0 and small.people == 0
        big = data.cell("康骨医疗/研发中心", cs.REVENUE)
        assert big is not None and not big.suppressed and (big.evidence, big.people) == (6, 6)
        assert list(table.rows) == ["研发中心", "质量部"] and list(table.columns) == ["项目收益", "流程节省", "知识复用"]
        assert table.values == [[6, 0, 0], [0, None, 0]]

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig = heatmap_figure(table)
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
        missing = [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]
        assert not missing, missing
        assert buf.getvalue().startswith(b"\x89PNG")
        ax = fig.axes[0]
        cells = {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text() for t in ax.texts}
        assert cells[(0, 0)] == "6" and cells[(1, 1)] == SUPPRESSED  # 研发中心 × 项目收益; 质量部 × 流程节省
        assert "4" not in cells.values() and "3" not in cells.values()  # the small cell's figures are nowhere
        assert [t.get_text() for t in ax.get_yticklabels()] == ["研发中心", "质量部"]
        assert "项目收益" in [t.get_text() for t in ax.get_xticklabels()]

        # HR's Friday card brings the heat maps (this month and this quarter); a manager's does not.
        await bot.run_job("pulse", at("2026-12-04 17:30"))
        files = [m["file"]["name"] for m in await bot.all_messages("zhoumin") if m.get("file")]
        assert "贡献热力图-2026-12.png" in files and "贡献热力图-2026Q4.png" in files, files
        assert not [m for m in await bot.all_messages("liuyang") if m.get("file") and "贡献" in m["file"]["name"]]
        # The console shows it to HR, and refuses it to a manager.
        q = "tenant=demo&week=2026-W49&kind=contributions"
        r = await bot.client.get(f"/console/api/pulse/chart.png?{q}&userid=zhoumin&period=2026Q4")
        assert r.status == 200 and (await r.read()).startswith(b"\x89PNG")
        r = await bot.client.get(f"/console/api/pulse/chart.png?{q}&userid=liuyang")
        assert r.status == 403


async def seed_witnessing(db: Database, witness: str, owners: list[str]) -> None:
    async with db.transaction() as s:
        for i, owner in enumerate(owners):
            s.add(WeeklyAction(tenant="demo", userid=owner, week=f"2026-W{49 + i % 2}", thing=f"注册资料第{i}版",
                               witness_userid=witness, status=ActionStatus.CONFIRMED,
                               witness_state=WitnessState.ACCEPTED, created_at=at("2026-12-01 09:00"),
                               done_at=at("2026-12-03 09:00"), confirmed_at=at("2026-12-03 10:00") + timedelta(minutes=i)))


async def test_ranking_only_for_the_manager_chain_and_hr(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-10 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        rd = "康骨医疗/研发中心/注册部"
        await verified(db, "wangqiang", "tangkai", cs.REVENUE, cs.YUAN, 120000, rd)
        await verified(db, "li_na", "tangkai", cs.SAVING, cs.HOURS, 16, rd)
        await verified(db, "tangkai", "wangqiang", cs.REUSE, cs.TIMES, 8, "康骨医疗/IT部")
        # 孙丽 confirmed four colleagues' actions and got no recognition: a hidden contributor.
        await seed_witnessing(db, "sunli", ["wangqiang", "li_na", "zhaolei", "liuyang"])

        await bot.say("wangqiang", "贡献排名")
        assert (await bot.texts("wangqiang")) == ["贡献排名只给管理链上的主管（看自己的下属）和 HR 看，不公开。"]
        await bot.say("liuyang", "贡献排名 2026Q4")
        card = await bot.last_card("liuyang", "贡献排名 2026Q4")
        assert "你的下属" in card["title"] and "1. 王强（注册部）1 条 · ¥120,000" in card["body"]
        assert "2. 李娜（注册部）1 条 · 16 小时" in card["body"]
        assert "唐凯" not in card["body"]  # not in his line
        assert "隐性贡献者" in card["body"] and "孙丽（注册部）见证确认 4 次，认可 0 条，贡献 0 条" in card["body"]
        await bot.say("zhoumin", "贡献排名 12月")
        hr = await bot.last_card("zhoumin", "贡献排名 2026-12")
        assert "全公司" in hr["title"] and "唐凯（IT部）1 条 · 8 次" in hr["body"]
        # A manager of another department sees only theirs.
        await bot.say("hanmei", "贡献排名")
        other = await bot.last_card("hanmei", "贡献排名")
        assert "唐凯" in other["body"] and "王强" not in other["body"] and "孙丽" not in other["body"]


async def test_reward_suggestion_amount_and_payroll_export(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2027-01-04 09:30"))
    async with console_bot(db, clock, tmp_path) as bot:
        await verified(db, "wangqiang", "tangkai", cs.REVENUE, cs.YUAN, 120000, "康骨医疗/研发中心/注册部")
        await verified(db, "tangkai", "wangqiang", cs.REUSE, cs.TIMES, 8, "康骨医疗/IT部")
        # The first working day of January: each manager gets a card per report, once.
        assert await bot.run_job("contribution_rewards", at("2027-01-04 09:00")) == 2
        assert await bot.run_job("contribution_rewards", at("2027-01-04 09:05")) == 0
        card = await bot.last_card("liuyang", "奖励建议：王强 2026-12")
        assert "项目收益 ¥120,000" in card["body"] and "核实人 唐凯" in card["body"] and "不会自动发放" in card["body"]
        await bot.press("liuyang", card, "填写金额")
        assert any("请输入给 王强 的2026-12奖励金额" in t for t in await bot.texts("liuyang"))
        await bot.say("liuyang", "两千")  # not an amount: refused with the reason, nothing stored
        assert any("金额看不懂或不合理" in t for t in await bot.texts("liuyang"))
        await bot.say("liuyang", "¥200,000")  # over the ¥50,000 a typo would be
        assert any("金额看不懂或不合理" in t for t in await bot.texts("liuyang"))
        async with db.session() as s:
            assert await cs.rewards(s, "demo", "2026-12") == []
        await bot.say("liuyang", "￥2,000")
        assert any("已记录 王强 2026-12 的奖励建议 ¥2,000" in t for t in await bot.texts("liuyang"))
        # Not his person: 韩梅 cannot enter 王强's; an employee cannot export.
        await bot.say("hanmei", "奖励 @王强 500 2026-12")
        assert any("只有 王强 管理链上的主管" in t for t in await bot.texts("hanmei"))
        await bot.say("hanmei", "奖励 @唐凯 1.5k")
        await bot.say("wangqiang", "奖励导出 2026-12")
        assert "不公开" in (await bot.texts("wangqiang"))[-1]

        # HR's export for payroll: both rows, the evidence, and the note that nothing is paid.
        await bot.say("zhoumin", "奖励导出 2026-12")
        sheet = await workbook(bot, "zhoumin")
        assert sheet[0] == cs.REWARD_HEADER
        assert sheet[1][:5] == ["2026-12", "tangkai", "唐凯", "康骨医疗/IT部", 1500]
        assert sheet[2][:5] == ["2026-12", "wangqiang", "王强", "康骨医疗/研发中心/注册部", 2000]
        assert "wangqiang 的贡献" in sheet[2][5] and sheet[2][6] == "刘洋"
        assert any(cs.NOT_PAID in str(cell) for row in sheet for cell in row if cell)
        # A manager's export holds their line only.
        await bot.say("liuyang", "奖励导出 2026-12")
        assert [r[1] for r in (await workbook(bot, "liuyang"))[1:] if r and r[1] and r[0] == "2026-12"] == ["wangqiang"]


async def workbook(bot: ConsoleBot, userid: str) -> list[list[Any]]:
    msg = [m for m in await bot.all_messages(userid) if m["kind"] == "file"][-1]
    r = await bot.client.get(msg["file"]["url"])
    assert r.status == 200 and msg["file"]["name"] == "奖励建议-2026-12.xlsx"
    ws = openpyxl.load_workbook(io.BytesIO(await r.read())).active
    return [list(row) for row in ws.iter_rows(values_only=True)]


def test_periods_as_typed() -> None:
    class T:
        from zoneinfo import ZoneInfo
        tz = ZoneInfo("Asia/Shanghai")

    ctx: Any = type("C", (), {"now": at("2026-12-10 10:00"), "tenant": T})()
    assert read_period(ctx, "") == "2026-12" and read_period(ctx, "上月") == "2026-11"
    assert read_period(ctx, "2026q4") == "2026Q4" and read_period(ctx, "１１月") == "2026-11"
    assert read_period(ctx, "2026年3月") == "2026-03" and read_period(ctx, "13月") is None


async def test_the_demo_company_shows_one_cell_and_hides_the_small_ones(tmp_path: Path) -> None:
    from bot.demo import demo_config, seed_demo

    config = demo_config(str(tmp_path), db_name="contrib-demo.db")
    db = Database(config.database.url)
    try:
        await seed_demo(db, config)
        tenant = config.tenant("demo")
        async with db.session() as s:
            out = Outgoing(s, tenant, datetime.now(tenant.tz))
            data, table = await heat_table(out, read_period(out, "本月") or "")
            everyone = list((await s.execute(select(cs.Contribution))).scalars())
        shown = [c for c in data.cells.values() if not c.suppressed]
        assert [(c.department, c.kind, c.people) for c in shown] == [("康骨医疗/研发中心", cs.REVENUE, 5)]
        assert data.cell("康骨医疗/质量部", cs.SAVING).suppressed  # type: ignore[union-attr]
        # The demo obeys its own rules: nobody verifies the colleague who verified them.
        pairs = {(c.contributor_userid, c.verifier_userid) for c in everyone}
        assert not {(b, a) for a, b in pairs} & pairs and all(a != b for a, b in pairs)
    finally:
        await db.close()


def test_payroll_export_and_heat_map_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from bot.cli import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'dongxian.db'}"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{url}"\n\n[[tenants]]\nkey = "demo"\nname = "Demo"\n', encoding="utf-8")
    cfg.chmod(0o600)
    roster = tmp_path / "roster.csv"
    roster.write_text("userid,name,department,manager_userid,roles\nboss,陈总,总部,,manager\n"
                      "wangq,王强,总部/研发,boss,\nlina,李娜,总部/人力资源部,boss,hr\n", encoding="utf-8")
    assert main(["db", "upgrade", "--config", str(cfg)]) == 0
    assert main(["org", "import", str(roster), "--tenant", "demo", "--config", str(cfg)]) == 0

    async def seed() -> None:
        db = Database(url)
        try:
            async with db.transaction() as s:
                c = cs.Contribution(tenant="demo", contributor_userid="wangq", verifier_userid="lina",
                                    department="总部/研发", kind=cs.REVENUE, unit=cs.YUAN, amount=5000,
                                    description="=SUM(A1) 新客户", links=[], month="2026-11", state=cs.VERIFIED,
                                    created_at=at("2026-11-20 10:00"))
                s.add(c)
                await s.flush()
                await cs.set_reward(s, "demo", "wangq", "2026-11", 88850, [c.id or 0], "boss", at("2026-12-01 10:00"))
        finally:
            await db.close()

    asyncio.run(seed())
    out = tmp_path / "pay.xlsx"
    assert main(["contributions", "export", "--tenant", "demo", "--month", "2026-11", "--out", str(out),
                 "--config", str(cfg)]) == 0
    assert "1 reward suggestions of 2026-11" in capsys.readouterr().out
    ws = openpyxl.load_workbook(out).active
    row = [c.value for c in ws[2]]
    assert row[:5] == ["2026-11", "wangq", "王强", "总部/研发", 888.5] and row[6] == "陈总"
    assert row[5] == "#1 =SUM(A1) 新客户"  # the evidence, as text: a cell never starts with "="
    assert main(["contributions", "export", "--tenant", "demo", "--month", "2026-13", "--config", str(cfg)]) == 2
    png = tmp_path / "heat.png"
    assert main(["contributions", "heatmap", "--tenant", "demo", "--period", "2026Q4", "--out", str(png),
                 "--config", str(cfg)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
