"""Role capability profiles (岗位画像), on SQLite and PostgreSQL: 周敏 (HR) asks for 注册部, whose five people
all wrote weekly actions for ten weeks, and gets a JD suggestion held as pending, with only counts in it;
a second build supersedes it; she approves it by pressing 通过. 产品研发部 has four such people: refused,
nothing stored. 王强 (an employee) asking is refused with the reason."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, inspect, select

from bot.cli import main

from bot.core.calendar import week_back, week_days
from bot.core.clock import FrozenClock
from bot.demo import DATA
from store import competencies as comp
from store import profiles as rp
from store import terms
from store.db import Database
from store.migrate import downgrade, upgrade
from store.models import AuditLog, Employee, Feedback, Project, Task, WeeklyAction
from store.statuses import ActionStatus, Impact, Polarity, TaskStatus, WitnessState
from tests.harness import ConsoleBot, at, console_bot

NOW = "2026-12-03 10:00"  # a Thursday of 2026-W49: the window is 2026-W23 … 2026-W48
LAST = "2026-W48"
REG = "康骨医疗/研发中心/注册部"
RND = "康骨医疗/研发中心/产品研发部"
# Weekly actions of 注册部, with colleagues' names in them as people write them.
REG_THINGS = ["完成2份临床评价报告初稿 @李娜", "帮李娜整理注册检验资料", "跟进3个产品的型式检验报告",
              "对接检验所，确认注册检验排期", "和王强一起准备NMPA发补资料", "复盘注册申报进度"]
RND_THINGS = ["完成髋关节样品设计评审", "整理设计开发文档", "跟进模具打样"]
STRONG = ("wangqiang", "li_na", "zhaolei")


async def seed_weeks(db: Database, people: dict[str, tuple[str, bool]], things: list[str], weeks: int = 10,
                     goal: str | None = "O1-KR2") -> None:
    """`weeks` weeks of weekly actions up to the window's last week; (witness, strong) per person."""
    async with db.transaction() as s:
        for userid, (witness, strong) in people.items():
            for i in range(weeks):
                week = week_back(LAST, i)
                day = week_days(week)[0]
                created = at(f"{day.isoformat()} 09:40")
                confirmed = strong or i % 3 == 0
                s.add(WeeklyAction(
                    tenant="demo", userid=userid, week=week, goal_code=goal if i % 2 == 0 else None,
                    thing=things[(i + len(userid)) % len(things)], witness_userid=witness,
                    status=ActionStatus.CONFIRMED if confirmed else ActionStatus.NOT_DONE,
                    witness_state=WitnessState.ACCEPTED, created_at=created,
                    done_at=created + timedelta(days=3) if confirmed else None,
                    confirmed_at=created + timedelta(days=4) if confirmed else None))


async def seed_registration(db: Database) -> None:
    # The strong three are witnessed by 质量部, praised by it and finish their tasks with IT on time.
    await seed_weeks(db, {"wangqiang": ("zhengshuang", True), "li_na": ("fengtao", True),
                          "zhaolei": ("zhengshuang", True), "sunli": ("wangqiang", False),
                          "liuyang": ("li_na", False)}, REG_THINGS)
    async with db.transaction() as s:
        for i, userid in enumerate(STRONG):
            for n in range(2):
                s.add(Feedback(tenant="demo", giver_userid="wuhao", receiver_userid=userid, tag="跨部门协作",
                               polarity=Polarity.PRAISE, impact=Impact.TEAM, event=f"注册检验问题当天闭环{n}",
                               ref_kind=None, created_at=at(f"2026-11-{10 + i + n} 15:00")))
        project = Project(tenant="demo", code="REG", name="注册提速", created_at=at("2026-09-01 10:00"))
        s.add(project)
        await s.flush()
        assert project.id is not None
        for i, userid in enumerate(STRONG):
            due = at(f"2026-11-{12 + i} 18:00")
            s.add(Task(tenant="demo", project_id=project.id, code=f"T{i + 1}", title="注册检验样品送检",
                       owner_userid=userid, collaborators="tangkai", due_at=due, status=TaskStatus.DONE,
                       created_at=at("2026-11-01 10:00"), status_updated_at=due - timedelta(hours=5),
                       completed_at=due - timedelta(hours=5)))
        # 王强 holds C03 at L3 (his manager's submitted assessment of 2026Q4).
        a = comp.Assessment(tenant="demo", period="2026Q4", subject_userid="wangqiang", assessor_userid="liuyang",
                            side=comp.MANAGER, state=comp.SUBMITTED, codes="C03;C06;C07",
                            created_at=at("2026-11-20 10:00"), submitted_at=at("2026-11-21 10:00"))
        s.add(a)
        await s.flush()
        assert a.id is not None
        s.add(comp.Rating(tenant="demo", assessment_id=a.id, code="C03", level=3, evidence=[],
                          at=at("2026-11-21 10:00")))


async def stored(db: Database) -> list[rp.RoleProfile]:
    async with db.session() as s:
        return list((await s.execute(select(rp.RoleProfile).order_by(rp.RoleProfile.id))).scalars())


def names_in(text: str, people: list[Employee]) -> list[str]:
    return [p.name for p in people if p.name in text] + [p.userid for p in people if p.userid in text]


async def roster(db: Database) -> list[Employee]:
    async with db.session() as s:
        return list((await s.execute(select(Employee).where(Employee.tenant == "demo"))).scalars())


async def markdowns(bot: ConsoleBot, userid: str) -> list[str]:
    """Each JD suggestion received, its parts joined (each part within WeCom's 2048-byte markdown)."""
    out: list[list[str]] = []
    for m in await bot.all_messages(userid):
        if m["kind"] == "markdown":
            assert len(m["text"].encode()) <= 2048
            if m["text"].startswith("# JD 建议") or not out:
                out.append([])
            out[-1].append(m["text"])
    return ["\n\n".join(p) for p in out]


async def test_hr_builds_a_profile_of_five_and_approves_it(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at(NOW))
    async with console_bot(db, clock, tmp_path) as bot:
        assert (await comp.import_library(db, "demo", DATA / "competencies.csv")).ok
        await seed_registration(db)

        # 周敏 greets, then asks with nothing after the word: how to ask, and nothing waiting.
        await bot.say("zhoumin", "你好")
        await bot.new("zhoumin")
        await bot.say("zhoumin", "岗位画像")
        reply = (await bot.texts("zhoumin"))[-1]
        assert "岗位画像 研发中心/注册部" in reply and "没有待审批" in reply
        await bot.say("zhoumin", "岗位画像 研发中心/注册部")
        card = await bot.last_card("zhoumin", "JD 建议待审批")
        assert "合格 5 人，取前 3 人" in card["body"] and "2026-W23 至 2026-W48" in card["body"]
        text = (await markdowns(bot, "zhoumin"))[-1]
        assert text.startswith(f"# JD 建议：{REG}")
        sent = [m for m in await bot.all_messages("zhoumin") if m["kind"] == "markdown"]
        assert len(sent) == 2 and len(text.encode()) > 2048  # in two parts, cut between sections
        assert "待审批" in text and "合格 5 人" in text and "0.35×关键动作完成率" in text
        # The data behind each line: the words and goals of the top three, with counts and weeks.
        assert "注册：3 人" in text and "检验：3 人" in text, text
        assert "O1-KR2 NMPA二类证平均获批周期≤82天：3 人 · 15 条关键动作 · 5 周" in text, text
        # 质量部 and IT部 have four people each (and fewer collaborators): named, they would name people,
        # so they are one row of 其他部门.
        assert "其他部门（人数或协作者太少，不单列）：见证 30 · 反馈 6 · 任务 3（3 人）" in text, text
        assert "质量部" not in text and "IT部" not in text, text
        assert "C03 客户需求洞察：1/3 人" in text, text
        # Counts only: no colleague's name or user id anywhere, not even those typed in the actions.
        people = await roster(db)
        assert names_in(text, people) == [] and names_in(card["body"], people) == []
        [row] = await stored(db)
        assert row.state == rp.PENDING and row.qualified == 5 and row.top == 3
        assert names_in(str(row.evidence), people) == [], row.evidence

        # 「收到」 is not a decision: asked again, still pending.
        await bot.say("zhoumin", "收到")
        assert "回复「通过」，或「驳回 原因」" in (await bot.texts("zhoumin"))[-1]
        assert (await stored(db))[0].state == rp.PENDING

        # Built again (typed full-width): the pending one is superseded and its card closed.
        await bot.say("zhoumin", "岗位画像　研发中心／注册部")
        first, second = await stored(db)
        assert (first.state, second.state) == (rp.SUPERSEDED, rp.PENDING)
        [closed] = [m["card"] for m in await bot.all_messages("zhoumin") if m["kind"] == "card" and m["card"]["id"] == card["id"]]
        assert closed["result"] == f"已被更新的画像 #{second.id} 取代", closed
        await bot.new("zhoumin")
        await bot.press("zhoumin", card, "通过")  # the old card: already answered
        assert await bot.texts("zhoumin") == ["这张卡片已经处理过了。"]
        assert (await stored(db))[0].state == rp.SUPERSEDED

        # 何欣 (HR too) cannot press 周敏's card.
        newer = await bot.last_card("zhoumin", "JD 建议待审批")
        await bot.new("hexin")
        await bot.press("hexin", newer, "通过")
        assert await bot.texts("hexin") == ["这张卡片不是发给你的。"]

        await bot.press("zhoumin", newer, "通过")
        rows = await stored(db)
        assert rows[1].state == rp.APPROVED and rows[1].decided_by == "zhoumin"
        assert any(f"已通过：岗位画像 #{second.id}" in t for t in await bot.texts("zhoumin"))
        async with db.session() as s:
            assert (await s.execute(select(func.count()).select_from(AuditLog).where(
                AuditLog.action == "role_profile_approve"))).scalar_one() == 1
        # Nothing waits any more; the approved one can be read again, without a card; an unknown number is said so.
        await bot.say("zhoumin", "岗位画像")
        assert "没有待审批" in (await bot.texts("zhoumin"))[-1]
        await bot.say("zhoumin", f"岗位画像 #{second.id}")
        again = await bot.new("zhoumin")
        assert [m["kind"] for m in again] == ["markdown", "markdown"] and "已通过" in again[0]["text"]
        await bot.say("zhoumin", "岗位画像 #99")
        assert (await bot.texts("zhoumin"))[-1].startswith("没有岗位画像 #99")


async def test_four_qualifying_people_produce_nothing(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at(NOW))
    async with console_bot(db, clock, tmp_path) as bot:
        await seed_weeks(db, {"xiezhen": ("qinfeng", True), "qinfeng": ("xiezhen", True),
                              "duxiao": ("yeqing", True), "yeqing": ("duxiao", False)}, RND_THINGS, goal=None)
        # In 注册部 only three have eight weeks or more; two wrote for five weeks.
        await seed_weeks(db, {"wangqiang": ("li_na", True), "li_na": ("zhaolei", True),
                              "zhaolei": ("li_na", True)}, REG_THINGS)
        await seed_weeks(db, {"sunli": ("li_na", True), "liuyang": ("li_na", True)}, REG_THINGS, weeks=5)
        await bot.say("zhoumin", "岗位画像 产品研发部")
        reply = (await bot.texts("zhoumin"))[-1]
        assert f"「{RND}」2026-W23 至 2026-W48 只有 4 人符合条件" in reply and "少于 5 人，未生成岗位画像" in reply
        await bot.say("zhoumin", "岗位画像 注册部")
        reply = (await bot.texts("zhoumin"))[-1]
        assert "只有 3 人符合条件" in reply and "部门共 5 人" in reply, reply
        # Narrowed to a role: 注册部's managers are one.
        await bot.say("zhoumin", "岗位画像 注册部 角色：主管")
        reply = (await bot.texts("zhoumin"))[-1]
        assert f"「{REG}」（角色：manager）" in reply and "只有 0 人符合条件" in reply and "部门共 1 人" in reply, reply
        await bot.say("zhoumin", "岗位画像 注册部 角色:老板")
        assert "没有「老板」这个角色" in (await bot.texts("zhoumin"))[-1]
        assert await stored(db) == [] and await markdowns(bot, "zhoumin") == []
        # A department nobody has, and a typo: said so, nothing stored.
        await bot.say("zhoumin", "岗位画像 法务部")
        assert "没有找到部门「法务部」" in (await bot.texts("zhoumin"))[-1]
        await bot.say("zhoumin", "岗位画像 注侧部")
        assert "没有找到部门「注侧部」" in (await bot.texts("zhoumin"))[-1]
        assert await stored(db) == []
        # 研发中心 as a whole: seven qualify (both departments), so it is produced, of its top three.
        await bot.say("zhoumin", "岗位画像 研发中心")
        [row] = await stored(db)
        assert (row.department, row.qualified, row.top, row.state) == ("康骨医疗/研发中心", 7, 3, rp.PENDING)


async def test_an_employee_and_a_manager_are_refused(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at(NOW))
    async with console_bot(db, clock, tmp_path) as bot:
        await seed_registration(db)
        await bot.say("wangqiang", "岗位画像 研发中心/注册部")
        assert (await bot.texts("wangqiang"))[-1] == "岗位画像只有 HR 可以生成和审批：它汇总整个部门的绩效数据。"
        await bot.say("liuyang", "岗位画像")
        assert "只有 HR" in (await bot.texts("liuyang"))[-1]
        assert await stored(db) == []
        # A pending profile: the manager cannot decide it by typing either.
        await bot.say("zhoumin", "岗位画像 注册部")
        [row] = await stored(db)
        await bot.say("liuyang", "通过")
        assert (await stored(db))[0].state == rp.PENDING
        await bot.say("zhoumin", "驳回，先和部门负责人确认")
        [row] = await stored(db)
        assert row.state == rp.REJECTED and row.decision_note == "先和部门负责人确认"
        assert "已驳回" in (await bot.texts("zhoumin"))[-1]


async def test_jd_duties_to_add_and_no_longer_seen(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at(NOW))
    async with console_bot(db, clock, tmp_path) as bot:
        await seed_registration(db)
        async with db.transaction() as s:
            await rp.set_jd(s, "demo", REG, "", "1. 负责注册检验的送检与跟踪\n2. 负责供应商现场审核\n3. 维护临床评价资料",
                            clock.now())
        await bot.say("zhoumin", "岗位画像 注册部")
        text = (await markdowns(bot, "zhoumin"))[-1]
        add = text.split("## 建议新增的职责")[1].split("## 不再出现的职责")[0]
        gone = text.split("## 不再出现的职责")[1].split("## 服务的目标")[0]
        # Words the JD already has are not suggested; the goal the JD does not name is.
        assert "- 注册：" not in add and "- 检验：" not in add and "- 临床：" not in add, add
        assert "O1-KR2" in add and "型式" in add, add
        assert "现行 JD 第 2 条「负责供应商现场审核」：26 周内的关键动作和任务里 0 次" in gone, gone
        assert "第 1 条" not in gone and "第 3 条" not in gone, gone
        assert "- 复盘：3 人 · 5 次" in text, text

        # Approved by typing it (full-width exclamation mark and all).
        await bot.say("zhoumin", "通过！")
        assert (await stored(db))[0].state == rp.APPROVED
        # The reviews stop: next build, a word of the approved profile no longer used is a duty no longer seen.
        async with db.transaction() as s:
            await s.execute(delete(WeeklyAction).where(WeeklyAction.thing == "复盘注册申报进度"))
        await bot.say("zhoumin", "岗位画像 注册部")
        text = (await markdowns(bot, "zhoumin"))[-1]
        gone = text.split("## 不再出现的职责")[1].split("## 服务的目标")[0]
        assert "- 复盘：上次通过的画像中 5 次 · 5 周，本期 0 次" in gone, gone
        assert [r.state for r in await stored(db)] == [rp.APPROVED, rp.PENDING]


def test_jieba_words_of_chinese_weekly_actions() -> None:
    names = ["李娜", "王强", "张伟"]
    assert terms.words("完成2份临床评价报告初稿 @李娜", names) == ["临床", "评价", "报告", "初稿"]
    assert terms.words("帮李娜整理注册检验资料", names) == ["整理", "注册", "检验", "资料"]
    assert terms.words("O1-KR2 跟进3个产品的型式检验报告", names) == ["产品", "型式", "检验", "报告"]
    # Full-width letters folded, the stop words (一起, 准备, 本周, 提交) and the names gone.
    assert terms.words("和王强一起准备ＮＭＰＡ发补资料，本周五前提交", names) == ["NMPA", "发补", "资料"]
    assert terms.words("张伟负责的髋关节假体注册证延续申请", names) == ["髋关节", "假体", "注册证", "延续", "申请"]
    assert terms.words("李娜和王强的交接", names) == ["交接"]
    assert terms.words("１２３ ， 。 的 了", names) == []


def test_command_line_builds_lists_and_approves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dongxian.db'}"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{url}"\n\n[[tenants]]\nkey = "demo"\nname = "康骨医疗"\n', encoding="utf-8")
    cfg.chmod(0o600)
    base = ["--tenant", "demo", "--config", str(cfg)]
    assert main(["db", "upgrade", "--config", str(cfg)]) == 0
    assert main(["org", "import", str(DATA / "roster.csv"), *base]) == 0

    async def seed() -> None:
        db = Database(url)
        try:
            await seed_registration(db)
            await seed_weeks(db, {u: ("qinfeng", True) for u in ("xiezhen", "qinfeng", "duxiao", "yeqing")},
                             RND_THINGS, goal=None)
        finally:
            await db.close()
    asyncio.run(seed())
    when = ["--at", "2026-12-03T10:00:00+08:00"]
    capsys.readouterr()
    assert main(["profiles", "build", "--department", "产品研发部", *when, *base]) == 1
    assert "只有 4 人符合条件" in capsys.readouterr().out
    assert main(["profiles", "build", "--department", "研发中心/注册部", "--by", "zhoumin", *when, *base]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#1 pending") and f"# JD 建议：{REG}" in out and "王强" not in out and "李娜" not in out
    assert main(["profiles", "list", "--state", "pending", *base]) == 0
    assert f"#1\tpending\t{REG}\t2026-W23..2026-W48\t5/3" in capsys.readouterr().out
    # Only an HR person decides.
    assert main(["profiles", "approve", "1", "--by", "wangqiang", *base]) == 2
    assert "不是 HR" in capsys.readouterr().out
    assert main(["profiles", "approve", "1", "--by", "zhoumin", *base]) == 0
    assert main(["profiles", "approve", "1", "--by", "zhoumin", *base]) == 1  # already decided
    assert main(["profiles", "list", "--state", "approved", *base]) == 0
    assert "#1\tapproved" in capsys.readouterr().out


async def test_the_migration_goes_down_and_up_again(db: Database) -> None:
    async def tables() -> set[str]:
        async with db.session() as s:
            conn = await s.connection()
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert {"role_profile", "role_jd"} <= await tables()
    await downgrade(db, "0010")
    assert not {"role_profile", "role_jd"} & await tables()
    await upgrade(db)
    assert {"role_profile", "role_jd"} <= await tables()
