"""The contribution, reward, payment and profile commands as people type them in chat, on SQLite and
PostgreSQL, and across features: 周敏 (HR) has a goal change, a JD suggestion and a contribution waiting
for her at once, and what she types decides exactly one of them or is asked about, never guessed."""
from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.demo import DATA
from cards.heatmap import HeatTable
from handlers import contributions
from store import competencies as comp
from store import contributions as cs
from store import profiles as rp
from store.db import Database
from store.export import export_weekly
from store.models import GoalAdjustment, WeeklyAction
from tests.harness import ConsoleBot, at, console_bot
from tests.test_competencies import ROUND, load_library
from tests.test_profiles import NOW, seed_registration
from tests.test_trace_payments import CONTRACT
from tests.trace_support import receivables, signed, trace_section


async def states(db: Database) -> tuple[list[str], list[str], list[str]]:
    """(goal changes, JD suggestions, contributions): the state of each, oldest first."""
    async with db.session() as s:
        gc = [str(g.status) for g in (await s.execute(select(GoalAdjustment).order_by(GoalAdjustment.id))).scalars()]
        prof = [str(p.state) for p in (await s.execute(select(rp.RoleProfile).order_by(rp.RoleProfile.id))).scalars()]
        con = [str(c.state) for c in (await s.execute(select(cs.Contribution).order_by(cs.Contribution.id))).scalars()]
    return gc, prof, con


async def weekly_actions(db: Database, userid: str) -> list[str]:
    async with db.session() as s:
        return [w.thing for w in (await s.execute(select(WeeklyAction).where(
            WeeklyAction.userid == userid, WeeklyAction.week == "2026-W49"))).scalars()]


async def cards_titled(bot: ConsoleBot, userid: str, title: str) -> list[dict]:
    return [m["card"] for m in await bot.new(userid) if m["kind"] == "card" and title in m["card"]["title"]]


async def test_one_hr_person_with_three_things_waiting_types_her_verdicts(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at(NOW))
    async with console_bot(db, clock, tmp_path) as bot:
        assert (await comp.import_library(db, "demo", DATA / "competencies.csv")).ok
        await seed_registration(db)
        # 何欣 (HR) proposes a goal change: her manager 周敏 approves it.
        await bot.say("hexin", "调整 O1-KR2 标题 NMPA二类证平均获批周期≤80天 原因:政策 集采")
        assert "等待 周敏 审批" in (await bot.texts("hexin"))[-1]
        # 王强 asks 周敏 to verify a contribution; 周敏 builds 注册部's JD suggestion.
        await bot.say("wangqiang", "贡献 项目收益 ¥5000 集采方案提前两周 @周敏")
        await bot.say("zhoumin", "岗位画像 注册部")
        assert await states(db) == (["proposed"], ["pending"], ["pending"])
        await bot.new("zhoumin")

        # Acknowledgements and thanks decide nothing and are not taken for a weekly action.
        for text in ("收到", "好的", "👍", "谢谢", "好的👍"):
            await bot.say("zhoumin", text)
            assert await bot.texts("zhoumin"), text
            assert await states(db) == (["proposed"], ["pending"], ["pending"]), text
        # 通过 / 同意 / 驳回 answer both the goal change and the JD suggestion: she is asked which.
        for text in ("通过", "同意", "驳回", "同意！", "驳回 先不改"):
            await bot.say("zhoumin", text)
            [reply] = await bot.texts("zhoumin")
            assert "没有改动任何一件" in reply, (text, reply)
            assert "目标调整待审批：O1-KR2" in reply and "JD 建议待审批：康骨医疗/研发中心/注册部" in reply
            assert "请核实贡献" not in reply  # 通过 is no answer to a contribution
            assert await states(db) == (["proposed"], ["pending"], ["pending"]), text
        assert await weekly_actions(db, "zhoumin") == []

        # 属实 answers only the contribution.
        await bot.say("zhoumin", "属实")
        assert any("已核实：项目收益 ¥5,000" in t for t in await bot.texts("zhoumin"))
        assert await states(db) == (["proposed"], ["pending"], ["verified"])

        # She presses 通过 on the JD card; now 同意 belongs to the goal change alone.
        await bot.press("zhoumin", await bot.last_card("zhoumin", "JD 建议待审批"), "通过")
        assert (await states(db))[1] == ["approved"]
        await bot.new("zhoumin")
        await bot.say("zhoumin", "同意")
        assert any("已同意" in t or "生效" in t for t in await bot.texts("zhoumin"))
        assert await states(db) == (["approved"], ["approved"], ["verified"])
        # Nothing is waiting any more: 通过 is answered, changes nothing, and is no weekly action.
        await bot.say("zhoumin", "通过")
        assert "现在没有等你决定的事" in (await bot.texts("zhoumin"))[-1]
        assert await weekly_actions(db, "zhoumin") == []


def test_collaborating_departments_too_small_to_name_are_folded() -> None:
    """A department is named only with 5 members and 5 distinct collaborators from it in the edges."""
    big = {f"b{i}": "公司/大部门" for i in range(6)}
    few = {f"f{i}": "公司/少协作部" for i in range(6)}
    dept_of = {**big, **few, "solo": "公司/一人部"}

    def v(witness: int, people: set[str], others: set[str]) -> dict:
        return {"witness": witness, "feedback": 1, "task": 0, "people": people, "others": others}
    by = {"公司/大部门": v(9, {"m1", "m2"}, set(big)),
          "公司/少协作部": v(4, {"m1"}, {"f0", "f1"}),
          "公司/一人部": v(2, {"m3"}, {"solo"})}
    rows = rp._name_large_enough(by, dept_of, rp.Rules())
    assert rows == [{"department": "公司/大部门", "witness": 9, "feedback": 1, "task": 0, "people": 2},
                    {"department": rp.OTHER_DEPARTMENTS, "witness": 6, "feedback": 2, "task": 0, "people": 2}]


async def test_the_weekly_export_holds_the_weeks_verified_contributions(db: Database, tmp_path: Path) -> None:
    """HR's weekly export (HR only: the console refuses others, the Friday card goes to HR) has a 贡献 sheet:
    the contributions verified in the weeks exported, never a pending or declined one, nor one of another week."""
    clock = FrozenClock(at("2026-12-01 10:00"))  # 2026-W49
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("wangqiang", "贡献 项目收益 ￥12万 发布会提前两周上线 O1-KR2 @唐凯")
        await bot.say("li_na", "贡献 流程节省 16小时 =注册检验报告自动汇总 @赵磊")
        await bot.say("zhaolei", "贡献 知识复用 8次 发补模板被复用 @王强")
        await bot.say("tangkai", "属实")
        await bot.say("zhaolei", "属实")
        await bot.say("wangqiang", "不属实 没有被复用")
        clock.set(at("2026-12-08 10:00"))  # 2026-W50: verified after the week exported
        await bot.say("sunli", "贡献 知识复用 3次 培训材料 @刘洋")
        await bot.say("liuyang", "属实")
    out = await export_weekly(db, "demo", ["2026-W49"], tmp_path / "w49.xlsx", now=at("2026-12-06 18:00"))
    ws = load_workbook(out)["贡献"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert rows[0] == cs.CONTRIBUTION_HEADER
    assert [r[2:] for r in rows[1:]] == [
        ["wangqiang", "王强", "康骨医疗/研发中心/注册部", "项目收益", 120000, "元", "发布会提前两周上线 O1-KR2", "唐凯",
         "goal:O1-KR2"],
        ["li_na", "李娜", "康骨医疗/研发中心/注册部", "流程节省", 16, "小时", "'=注册检验报告自动汇总", "赵磊", None]]
    assert rows[1][:2] == ["2026-12-01 10:00", "2026-12"]


async def verified(db: Database, contributor: str, department: str, kind: str, unit: str, amount: float,
                   month: str = "2026-12") -> None:
    async with db.transaction() as s:
        s.add(cs.Contribution(tenant="demo", contributor_userid=contributor, verifier_userid="chenjie",
                              department=department, kind=kind, unit=unit, amount=amount, description="方案",
                              links=[], month=month, state=cs.VERIFIED, created_at=at(f"{month}-02 10:00"),
                              decided_at=at(f"{month}-02 11:00")))


async def test_the_heat_map_in_chat_for_hr_and_for_a_managers_line(db: Database, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[HeatTable] = []
    real = contributions.heatmap_png

    def spy(table: HeatTable, locale: str = "zh") -> bytes:
        drawn.append(table)
        return real(table, locale)
    monkeypatch.setattr(contributions, "heatmap_png", spy)
    clock = FrozenClock(at("2026-12-10 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        for who in ("wangqiang", "li_na", "zhaolei", "sunli", "liuyang"):
            await verified(db, who, "康骨医疗/研发中心/注册部", cs.REVENUE, cs.YUAN, 1000)
        for who in ("li_na2", "zhengshuang", "fengtao"):  # three people: never shown
            await verified(db, who, "康骨医疗/质量部", cs.SAVING, cs.HOURS, 4)

        await bot.say("wangqiang", "热力图")
        assert await bot.texts("wangqiang") == ["贡献排名只给管理链上的主管（看自己的下属）和 HR 看，不公开。"]
        assert drawn == []
        # HR: the company, as an image; the 3-person cell blank.
        await bot.say("zhoumin", "热力图　本季度")
        [msg] = await bot.new("zhoumin")
        # (the console shows an image as a file, as it does HR's Friday chart)
        assert msg["kind"] == "file" and msg["file"]["name"] == "贡献热力图-2026Q4.png", msg
        assert "贡献热力图 2026Q4" in msg["text"]
        r = await bot.client.get(msg["file"]["url"])
        assert r.status == 200 and (await r.read()).startswith(b"\x89PNG")
        assert "2026Q4" in drawn[-1].title and list(drawn[-1].rows) == ["研发中心", "质量部"]
        assert drawn[-1].values == [[5, 0, 0], [0, None, 0]]
        # 刘洋 sees his line only; 吴昊's line is the three of 质量部: the same suppression holds.
        await bot.say("liuyang", "热力图 2026-12")
        assert (await bot.new("liuyang"))[-1]["file"]["name"] == "贡献热力图-2026-12.png"
        assert list(drawn[-1].rows) == ["研发中心"] and drawn[-1].values == [[5, 0, 0]]
        await bot.say("wuhao", "热力图 12月")
        assert list(drawn[-1].rows) == ["质量部"] and drawn[-1].values == [[0, None, 0]]
        # Nothing verified in November; a month that does not exist.
        await bot.say("hanmei", "热力图 2026-11")
        assert await bot.texts("hanmei") == ["2026-11 还没有已核实的贡献（你的下属），没有热力图。"]
        await bot.say("zhoumin", "热力图 13月")
        assert "13月" in (await bot.texts("zhoumin"))[-1]
        assert len(drawn) == 3


async def contributions_of(db: Database, userid: str) -> list[cs.Contribution]:
    async with db.session() as s:
        return list((await s.execute(select(cs.Contribution).where(
            cs.Contribution.contributor_userid == userid).order_by(cs.Contribution.id))).scalars())


async def test_contributions_as_people_type_them(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-03 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        # An ordinary weekly action that starts with 贡献: it stays a weekly action (asked for its goal).
        await bot.say("zhaolei", "贡献了一份方案 @李娜")
        assert (await bot.last_card("zhaolei"))["title"] == "关联哪个目标？"
        await bot.say("zhaolei", "取消")
        await bot.say("zhaolei", "供应商资料整理 @李娜")  # starts like the slip 供献, but no type word
        assert await contributions_of(db, "zhaolei") == []
        await bot.say("zhaolei", "取消")
        # The input method's slip, full-width input and a colon are still a contribution.
        await bot.new("zhaolei")
        await bot.say("zhaolei", "供献 项目收益 ¥5000 集采方案提前 @李娜")
        assert "已记录：项目收益 ¥5,000 集采方案提前" in (await bot.texts("zhaolei"))[-1]
        await bot.say("zhaolei", "贡献　流程节省　１６小时　报告自动汇总　＠唐凯")
        assert "已记录：流程节省 16 小时 报告自动汇总" in (await bot.texts("zhaolei"))[-1]
        await bot.say("zhaolei", "贡献：知识复用 8次 发补模板 @王强")
        assert "已记录：知识复用 8 次 发补模板" in (await bot.texts("zhaolei"))[-1]
        # No type: refused with the reason, nothing stored.
        await bot.say("zhaolei", "贡献 ¥5000 方案 @孙丽")
        assert "没有看出贡献类型" in (await bot.texts("zhaolei"))[-1]
        assert len(await contributions_of(db, "zhaolei")) == 3
        # The type alone: the rest is asked for, then the verifier.
        await bot.say("sunli", "贡献 项目收益")
        assert "项目收益：请回复 数额 和 发生了什么" in (await bot.texts("sunli"))[-1]
        await bot.say("sunli", "¥3000 新经销商签约")
        await bot.say("sunli", "@刘洋")
        [c] = await contributions_of(db, "sunli")
        assert (c.kind, c.amount, c.verifier_userid, c.description) == (cs.REVENUE, 3000, "liuyang", "新经销商签约")

        # 李娜 has a card to verify: greetings, thanks and emoji verify nothing and are answered.
        for text in ("你好", "谢谢", "👍", "好的", "收到🙏", "同意"):
            await bot.say("li_na", text)
            assert await bot.texts("li_na"), text
            assert (await contributions_of(db, "zhaolei"))[0].state == cs.PENDING, text
        assert await weekly_actions(db, "li_na") == []
        await bot.say("li_na", "通过")  # a goal approval's word: the card asks for 属实, and says so
        assert (await bot.texts("li_na"))[-1].startswith("「通过」不是这些卡片的回答，没有改动任何内容。")
        await bot.say("li_na", "属实")
        assert (await contributions_of(db, "zhaolei"))[0].state == cs.VERIFIED


async def test_a_contribution_in_the_middle_of_a_self_assessment(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-14 10:00"))
    async with console_bot(db, clock, tmp_path, **ROUND) as bot:
        await load_library(db, tmp_path)
        await bot.say("zhaolei", "自评")
        assert (await bot.last_card("zhaolei", "C03"))["title"]
        await bot.new("zhaolei")
        await bot.say("zhaolei", "贡献 项目收益 ¥5000 集采方案提前 @李娜")
        replies = await bot.texts("zhaolei")
        assert any("已暂停能力评估" in t for t in replies) and any("已记录：项目收益 ¥5,000" in t for t in replies)
        await bot.say("zhaolei", "继续")
        await bot.say("zhaolei", "Ｌ２")  # the assessment goes on where it was
        async with db.session() as s:
            a = await comp.assessment(s, "demo", "2026Q4", "zhaolei", comp.SELF)
            assert a is not None
            levels = {code: r.level for code, r in (await comp.ratings(s, "demo", a.id or 0)).items()}
        assert levels.get("C03") == 2, levels
        assert len(await contributions_of(db, "zhaolei")) == 1


async def test_rewards_typed_by_the_wrong_people_and_with_typos(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2027-01-05 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await verified(db, "wangqiang", "康骨医疗/研发中心/注册部", cs.REVENUE, cs.YUAN, 120000)
        await verified(db, "li_na", "康骨医疗/研发中心/注册部", cs.REVENUE, cs.YUAN, 1000)

        async def none_stored() -> None:
            async with db.session() as s:
                assert await cs.rewards(s, "demo", "2026-12") == []
        await bot.say("wangqiang", "奖励 @王强 2000")  # an employee, himself
        assert await bot.texts("wangqiang") == ["只有 王强 管理链上的主管可以填写 王强 的奖励。"]
        await bot.say("li_na", "奖励 @王强 2000")  # a colleague
        assert await bot.texts("li_na") == ["只有 王强 管理链上的主管可以填写 王强 的奖励。"]
        await bot.say("wuhao", "奖励 @李娜 2000")  # a manager outside the line
        assert await bot.texts("wuhao") == ["只有 李娜 管理链上的主管可以填写 李娜 的奖励。"]
        await none_stored()
        # Amounts: 两千 and 2000 2000 are not read; 2,000元 and ￥２０００ are.
        for typo in ("两千", "2000 2000", "-2000", "2000%"):
            await bot.say("liuyang", f"奖励 @王强 {typo}")
            assert "金额看不懂或不合理" in (reply := (await bot.texts("liuyang"))[-1]), typo
            assert "请写 1 到 50,000 之间的元数" in reply and reply.endswith("未记录。"), reply
        await none_stored()
        await bot.say("liuyang", "奖励 @王强 2,000元")
        assert "已记录 王强 2026-12 的奖励建议 ¥2,000" in (await bot.texts("liuyang"))[-1]
        await bot.say("chenjie", "奖励 ＠李娜 ￥２０００")  # the manager above the manager, full-width
        assert "已记录 李娜 2026-12 的奖励建议 ¥2,000" in (await bot.texts("chenjie"))[-1]
        async with db.session() as s:
            assert sorted((r.userid, r.amount_fen) for r in await cs.rewards(s, "demo", "2026-12")) == [
                ("li_na", 200000), ("wangqiang", 200000)]


async def test_payments_typed_the_way_people_type_them(db: Database, tmp_path: Path) -> None:
    now = at("2026-12-02 10:00")
    clock = FrozenClock(now)
    async with console_bot(db, clock, tmp_path, trace=trace_section(remind_days_before=3)) as bot:
        body, headers = signed(CONTRACT, "msg_pay_1", now)
        assert (await bot.client.post("/hooks/demo/crm", data=body, headers=headers)).status == 202
        await bot.runtime.settle()
        await bot.new("zhangwei")

        async def paid() -> int:
            [row] = await receivables(db)
            return row.paid_cents
        # Not allowed (neither the owner nor above him), however it is typed.
        for text in ("回款HT-2026-118 已到账5万", "回款 HT-2026-118 ￥50,000"):
            await bot.say("wangqiang", text)
            assert await bot.texts("wangqiang") == ["只有合同 HT-2026-118 的负责人、其上级或管理员可以登记回款"], text
        assert await paid() == 0
        # The owner: the number straight after the word, 5万, then ￥50,000.
        await bot.say("zhangwei", "回款HT-2026-118 已到账5万")
        assert (await bot.texts("zhangwei"))[-1].startswith("已登记回款 ¥50,000.00")
        await bot.say("zhangwei", "回款 HT-2026-118 ￥50,000")
        assert (await bot.texts("zhangwei"))[-1].startswith("已登记回款 ¥50,000.00")
        assert await paid() == 10_000_000
        # A weekly action about payments is not a payment.
        await bot.say("zhangwei", "回款情况跟进 @许静")
        assert await paid() == 10_000_000
        assert "回款跟踪" not in " ".join(await bot.texts("zhangwei"))


async def test_a_weekly_action_that_starts_like_a_verdict_decides_nothing(db: Database, tmp_path: Path) -> None:
    """陈杰 has a goal change to approve and no approval exchange open: what he types as his week's action
    (拒绝…, now …) rejects nothing; a bare 驳回 asks for the reason and then rejects it."""
    clock = FrozenClock(at("2026-12-03 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("huangyan", "调整 O1-KR1 标题 新品首批订单≥320套 原因:市场 渠道反馈")
        await bot.say("chenjie", "本周")  # a command: the approval exchange is put aside
        for text in ("拒绝了3个不合格供应商的报价 @吴昊", "now the launch plan is done @guoqing", "不同意见已汇总 @吴昊"):
            await bot.say("chenjie", text)
            await bot.say("chenjie", "取消")
            assert (await states(db))[0] == ["proposed"], text
        await bot.new("chenjie")
        await bot.say("chenjie", "驳回")
        assert (await bot.texts("chenjie"))[-1] == "请回复驳回的原因（一句话）"
        await bot.say("chenjie", "渠道数据还没核实")
        assert (await states(db))[0] == ["rejected"]


async def test_a_contribution_in_the_middle_of_a_task_update(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("guoqing", "任务 发布会 T13 物料采购 @宋佳 12-02 18:00")
        await bot.say("songjia", "进度 T13 阻塞")
        assert (await bot.texts("songjia"))[-1] == "T13 因为什么阻塞？请回复原因，例如：等采购确认"
        await bot.say("songjia", "贡献 知识复用 5次 供应商比价模板被复用 @罗毅")
        replies = await bot.texts("songjia")
        assert any("已暂停" in t for t in replies) and "已记录：知识复用 5 次" in replies[-1], replies
        await bot.say("songjia", "继续")
        assert (await bot.texts("songjia"))[-1] == "T13 因为什么阻塞？请回复原因，例如：等采购确认"
        await bot.say("songjia", "等供应商报价")
        assert (await bot.texts("songjia"))[-1] == "已更新 T13：阻塞（等供应商报价）"
        [c] = await contributions_of(db, "songjia")
        assert (c.kind, c.amount, c.verifier_userid) == (cs.REUSE, 5, "luoyi")
