"""Micro-feedback as managers and employees use it, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from handlers.feedback import DEFAULT_TAGS
from bot.core.events import Event
from handlers.feedback import is_vague, match_tag, parse_feedback
from handlers.routes import classify_command
from store.audit import VIEW_FEEDBACK
from store.statuses import Impact, Polarity
from store.db import Database
from store.feedback import feedback_counts
from store.models import AuditLog, Feedback, WeeklyAction
from tests.harness import ConsoleBot, at, console_bot

EVENT = "周二夜里帮客户排查退货问题"


async def feedback_rows(db: Database) -> list[Feedback]:
    async with db.session() as s:
        return list((await s.execute(select(Feedback).order_by(Feedback.id))).scalars())


async def count_feedback(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(Feedback))).scalar_one())


async def menu(bot: ConsoleBot, userid: str, key: str) -> None:
    """A click on the app menu (WeCom sends these; the console has no menu bar)."""
    await bot.runtime.accept(Event(tenant=bot.tenant, platform="console", userid=userid, kind="menu",
                                   action_key=key, dedup_key=f"menu:{userid}:{key}:{bot.clock.now().timestamp()}"))
    await bot.runtime.settle()


async def said(bot: ConsoleBot, userid: str) -> list[str]:
    """The text messages `userid` got since the last look (card updates left out)."""
    return [m["text"] for m in await bot.new(userid) if m["kind"] == "text"]


async def open_card(bot: ConsoleBot, userid: str) -> dict[str, Any]:
    """The newest card `userid` can still answer."""
    cards = [m["card"] for m in await bot.all_messages(userid) if m["kind"] == "card" and not m["card"]["result"]
             and m["card"]["buttons"]]
    assert cards, f"{userid} has no open card"
    return cards[-1]


def button_texts(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["buttons"]]


# -- the parts, without a database ------------------------------------------------------

def test_one_message_is_split_into_person_tag_impact_and_event() -> None:
    p = parse_feedback(f"@小张 #主动补位 客户级 {EVENT}")
    assert (p.mentions, p.tag, p.impact, p.event) == (["小张"], "主动补位", Impact.CUSTOMER, EVENT)
    p = parse_feedback(f"＠小张　＃主动补位客户级，{EVENT}")  # full-width, glued, Chinese comma
    assert (p.mentions, p.tag, p.impact, p.event) == (["小张"], "主动补位", Impact.CUSTOMER, EVENT)
    p = parse_feedback("@小张 帮客户排查问题时发现团队级风险")  # 团队级 inside the event stays there
    assert p.impact is None and p.event == "帮客户排查问题时发现团队级风险"


def test_vague_praise_is_refused_and_facts_pass() -> None:
    for vague in ("再接再厉", "继续努力", "加油！", "不错", "很好", "表现不错，继续加油", "这周工作很认真，值得表扬",
                  "Good job, keep it up", "报告写了"):
        assert is_vague(vague), vague
    for concrete in (EVENT, "把注册检验排期改为并行，缩短两周", "Fixed the returns bug for a customer on Tuesday"):
        assert not is_vague(concrete), concrete


def test_tags_are_matched_fuzzily_and_never_invented() -> None:
    tags = list(DEFAULT_TAGS)
    assert match_tag("主动补位", tags)[0].name == "主动补位"  # type: ignore[union-attr]
    assert match_tag("补位", tags)[0].name == "主动补位"  # type: ignore[union-attr]
    assert match_tag("主动补为", tags)[0].name == "主动补位"  # type: ignore[union-attr]
    assert match_tag("客户需求", tags)[0].name == "客户需求深挖"  # type: ignore[union-attr]
    tag, close = match_tag("随便写写", tags)
    assert tag is None and all(t in tags for t in close)


# -- conversations ---------------------------------------------------------------------

async def test_manager_records_feedback_in_one_message_and_the_employee_is_told(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 21:30"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("liuyang", f"反馈 @王强 #主动补位 客户级 {EVENT}")
        [row] = await feedback_rows(db)
        assert (row.giver_userid, row.receiver_userid, row.tag, row.polarity, row.impact, row.event) == (
            "liuyang", "wangqiang", "主动补位", Polarity.PRAISE, Impact.CUSTOMER, EVENT)
        assert await said(bot, "wangqiang") == [f"刘洋 给了你一条反馈：\n#主动补位（认可）· 客户级\n{EVENT}"]
        assert await said(bot, "liuyang") == [
            f"已记录对 王强 的反馈：\n#主动补位（认可）· 客户级\n{EVENT}\n已通知 王强。"]

        # A tag typed loosely is matched; a missing impact is asked with a card, the rest kept.
        await bot.say("liuyang", "反馈 @李娜 #方案创新 把注册检验排期改为并行，缩短两周")
        impact = await open_card(bot, "liuyang")
        assert impact["title"] == "微反馈 · 影响范围？" and button_texts(impact) == ["客户级", "团队级", "流程级"]
        assert await count_feedback(db) == 1
        await bot.press("liuyang", impact, "流程级")
        row = (await feedback_rows(db))[-1]
        assert (row.receiver_userid, row.tag, row.impact, row.event) == (
            "li_na", "方案创新", Impact.PROCESS, "把注册检验排期改为并行，缩短两周")

        # An unknown tag is never invented: the library is offered, the draft waits.
        await bot.say("liuyang", "反馈 @赵磊 #随便写写 团队级 把注册资料目录整理成共享模板并讲给全组")
        assert "没有“随便写写”这个行为标签，请从标签库中选择。" in await said(bot, "liuyang")
        tags = await open_card(bot, "liuyang")
        assert tags["title"] == "微反馈 · 哪种行为？"
        assert button_texts(tags) == ["主动补位", "方案创新", "客户需求深挖", "跨部门协作", "风险预警", "更多标签"]
        assert await count_feedback(db) == 2
        await bot.press("liuyang", tags, "更多标签")
        more = await open_card(bot, "liuyang")
        assert button_texts(more)[:3] == ["知识沉淀", "响应不及时", "交付质量待提升"]
        await bot.press("liuyang", more, "知识沉淀")
        row = (await feedback_rows(db))[-1]
        assert (row.receiver_userid, row.tag, row.polarity, row.impact) == ("zhaolei", "知识沉淀", Polarity.PRAISE, Impact.TEAM)
        # The first tag card was closed when the second replaced it: it cannot record twice.
        old = await bot.all_messages("liuyang")
        assert any(m["kind"] == "card" and m["card"]["id"] == tags["id"] and m["card"]["result"] for m in old)
        await bot.press("liuyang", tags, "主动补位")
        assert await count_feedback(db) == 3
        assert (await said(bot, "liuyang"))[-1] == "这张卡片已经处理过了。"

        # Feedback given in the middle of one's own weekly action does not lose that draft: the
        # draft is put aside (and the bot says so), and 继续 brings it back.
        await bot.say("liuyang", "无 准备团队季度复盘材料")
        assert await said(bot, "liuyang") == ["请 @ 一位同事作为见证人，例如 @李娜"]
        await bot.say("liuyang", "反馈 @孙丽 #风险预警 客户级 发现说明书版本与注册证不一致并当天拦截")
        assert await count_feedback(db) == 4
        assert (await said(bot, "liuyang"))[0] == "已暂停填写本周关键动作，回复「继续」接着填。"
        await bot.say("liuyang", "继续")
        assert await said(bot, "liuyang") == ["请 @ 一位同事作为见证人，例如 @李娜"]
        await bot.say("liuyang", "@赵磊")
        async with db.session() as s:
            action = (await s.execute(select(WeeklyAction).where(WeeklyAction.userid == "liuyang"))).scalar_one()
        assert (action.thing, action.witness_userid) == ("准备团队季度复盘材料", "zhaolei")


async def test_card_flow_from_the_menu_and_from_a_witness_card(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-02 10:00"))
    # This tenant keeps feedback to reporting lines (peer feedback is on by default).
    async with console_bot(db, clock, tmp_path, feedback={"peer": False}) as bot:
        await menu(bot, "liuyang", "feedback")
        person = await open_card(bot, "liuyang")
        assert person["title"] == "微反馈 · 给谁？"
        assert sorted(button_texts(person)) == sorted(["王强", "李娜", "赵磊", "孙丽"])  # his reporting line
        await bot.press("liuyang", person, "王强")
        tag = await open_card(bot, "liuyang")
        await bot.press("liuyang", tag, "更多标签")
        await bot.press("liuyang", await open_card(bot, "liuyang"), "响应不及时")
        impact = await open_card(bot, "liuyang")
        await bot.press("liuyang", impact, "客户级")
        assert await said(bot, "liuyang") == [
            "请写下具体事件：王强 在什么时候、做了什么？例如：周二夜里帮客户排查退货问题"]
        await bot.say("liuyang", "下次注意")
        assert "太笼统" in (await said(bot, "liuyang"))[0]
        assert await count_feedback(db) == 0
        await bot.say("liuyang", "周一客户来电询问注册进度，隔了一天才回复")
        [row] = await feedback_rows(db)
        assert (row.receiver_userid, row.tag, row.polarity, row.impact, row.event) == (
            "wangqiang", "响应不及时", Polarity.IMPROVE, Impact.CUSTOMER, "周一客户来电询问注册进度，隔了一天才回复")
        assert (await said(bot, "wangqiang"))[-1].startswith("刘洋 给了你一条反馈：\n#响应不及时（改进）· 客户级")

        # `反馈` alone opens the same flow (the entry on platforms without an app menu);
        # a big reporting line is asked to @ the person instead of getting 39 buttons.
        await bot.say("chenjie", "反馈")
        assert await said(bot, "chenjie") == ["请 @ 要反馈的同事，例如：@王强"]
        await bot.say("chenjie", "@王强")
        assert (await open_card(bot, "chenjie"))["title"] == "微反馈 · 哪种行为？"
        await bot.say("chenjie", "取消")

        # The witness is the owner's manager: the invitation carries 反馈, linked to the action.
        await bot.say("sunli", "O1-KR2 提交一份补正资料 @刘洋")
        invite = await bot.last_card("liuyang", "见证邀请")
        assert button_texts(invite) == ["接受见证", "无法见证", "反馈"]
        await bot.press("liuyang", invite, "反馈")
        tag = await open_card(bot, "liuyang")
        assert tag["title"] == "微反馈 · 哪种行为？"  # the person is already known
        await bot.press("liuyang", tag, "主动补位")
        await bot.press("liuyang", await open_card(bot, "liuyang"), "团队级")
        await bot.say("liuyang", "主动把补正资料拆成三份并行准备，提前一天提交")
        row = (await feedback_rows(db))[-1]
        async with db.session() as s:
            action = (await s.execute(select(WeeklyAction).where(WeeklyAction.userid == "sunli"))).scalar_one()
        assert (row.receiver_userid, row.ref_kind, row.ref_id) == ("sunli", "action", action.id)
        # Giving feedback did not answer the invitation, which still works.
        await bot.press("liuyang", invite, "接受见证")
        assert "刘洋 已接受见证：提交一份补正资料" in await said(bot, "sunli")
        # A peer witness (no peer feedback in this tenant) gets no such button.
        await bot.say("zhaolei", "无 整理注册资料目录 @孙丽")
        assert button_texts(await bot.last_card("sunli", "见证邀请")) == ["接受见证", "无法见证"]


async def test_refusals_store_nothing(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    # Peer feedback is on by default; this tenant keeps feedback to reporting lines.
    async with console_bot(db, clock, tmp_path, feedback={"peer": False}) as bot:
        # Vague: refused with a request for the event; the rest of the draft is kept.
        await bot.say("liuyang", "反馈 @孙丽 #主动补位 团队级 继续加油")
        assert await said(bot, "liuyang") == [
            "“继续加油”太笼统了。请写具体事件：什么时候、做了什么、结果如何？例如：周二夜里帮客户排查退货问题"]
        await bot.say("liuyang", "再接再厉")
        assert "“再接再厉”太笼统了" in (await said(bot, "liuyang"))[0]
        assert await count_feedback(db) == 0
        await bot.say("liuyang", "周四晚上替请假的同事值守客服热线到十点")
        [row] = await feedback_rows(db)
        assert (row.receiver_userid, row.tag, row.impact) == ("sunli", "主动补位", Impact.TEAM)
        assert (await said(bot, "liuyang"))[0].startswith("已记录对 孙丽 的反馈")

        # Outside the giver's reporting line: 李纳 is in 质量部, under 吴昊.
        await bot.say("liuyang", f"反馈 @李纳 #主动补位 客户级 {EVENT}")
        assert await said(bot, "liuyang") == [
            "李纳 不在你的汇报线内，只能给自己汇报线内的同事反馈。可以 @ 另一位同事，或回复“取消”。"]
        # `@lina` is 李娜 or 李纳: only 李娜 is his, so there is nothing to choose.
        await bot.say("liuyang", "@lina")
        assert (await feedback_rows(db))[-1].receiver_userid == "li_na"
        assert (await said(bot, "liuyang"))[0].startswith("已记录对 李娜 的反馈")
        # An employee to a peer (this tenant allows no peer feedback), and to oneself.
        await bot.say("wangqiang", f"反馈 @李娜 #主动补位 客户级 {EVENT}")
        assert "不在你的汇报线内" in (await said(bot, "wangqiang"))[0]
        await bot.say("liuyang", f"反馈 @刘洋 #主动补位 客户级 {EVENT}")
        assert (await said(bot, "liuyang"))[0] == "不能给自己反馈，请 @ 一位同事。"
        await bot.say("liuyang", "取消")
        assert [r.receiver_userid for r in await feedback_rows(db)] == ["sunli", "li_na"]
        assert await said(bot, "li_na2") == []


async def test_peer_feedback_where_the_tenant_allows_it_and_silent_receivers(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    async with console_bot(db, clock, tmp_path, feedback={"peer": True, "notify_receiver": False}) as bot:
        await bot.say("wangqiang", f"反馈 @李纳 #跨部门协作 客户级 {EVENT}")
        [row] = await feedback_rows(db)
        assert (row.giver_userid, row.receiver_userid, row.tag) == ("wangqiang", "li_na2", "跨部门协作")
        assert await said(bot, "li_na2") == []  # this tenant does not tell the receiver
        assert await said(bot, "wangqiang") == [f"已记录对 李纳 的反馈：\n#跨部门协作（认可）· 客户级\n{EVENT}"]


async def test_who_may_read_feedback_and_every_view_is_audited(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("liuyang", f"反馈 @王强 #主动补位 客户级 {EVENT}")
        await bot.say("liuyang", "反馈 @李娜 #知识沉淀 团队级 把注册资料目录整理成共享模板")
        for u in ("liuyang", "wangqiang", "li_na"):
            await bot.new(u)

        await bot.say("wangqiang", "反馈 我的")
        [own] = await said(bot, "wangqiang")
        assert own.split("\n") == ["王强 收到的反馈（共 1 条）", "主动补位 1", f"· 12-01 刘洋 #主动补位（认可）客户级：{EVENT}"]
        if classify_command("我的反馈")[0] == "my_feedback":
            await bot.say("wangqiang", "我的反馈")
            assert await said(bot, "wangqiang") == [own]

        # An employee cannot read a colleague's feedback, nor a manager of another department.
        await bot.say("wangqiang", "反馈 查看 @李娜")
        assert await said(bot, "wangqiang") == ["你无权查看 李娜 的反馈：只能查看自己和汇报线内同事的反馈。"]
        await bot.say("wuhao", "反馈 查看 @王强")
        assert "你无权查看 王强 的反馈" in (await said(bot, "wuhao"))[0]
        # His manager, the manager above and HR can, and each such view is audited.
        await bot.say("liuyang", "反馈 查看 @李娜")
        assert "把注册资料目录整理成共享模板" in (await said(bot, "liuyang"))[0]
        await bot.say("chenjie", "反馈 查看 @wangqiang")
        assert EVENT in (await said(bot, "chenjie"))[0]
        await bot.say("hexin", "反馈 查看 @王强")
        assert EVENT in (await said(bot, "hexin"))[0]
        async with db.session() as s:
            views = [(a.actor_userid, a.action, a.subject) for a in (await s.execute(
                select(AuditLog).order_by(AuditLog.id))).scalars()]
        assert views == [("liuyang", VIEW_FEEDBACK, "li_na"), ("chenjie", VIEW_FEEDBACK, "wangqiang"),
                         ("hexin", VIEW_FEEDBACK, "wangqiang")]


async def test_feedback_counts_by_department_and_tag(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-11-30 08:30"))  # Monday of 2026-W49, Shanghai
    async with console_bot(db, clock, tmp_path) as bot:
        await bot.say("liuyang", f"反馈 @王强 #主动补位 客户级 {EVENT}")
        await bot.say("liuyang", "反馈 @李娜 #主动补位 团队级 周三主动接手赵磊的注册资料补正")
        await bot.say("wuhao", "反馈 @郑爽 #风险预警 流程级 发现来料批次异常并立即隔离")
        clock.set(at("2026-11-29 23:30"))  # Sunday night: still 2026-W48 in Shanghai (15:30 UTC)
        await bot.say("liuyang", "反馈 @赵磊 #知识沉淀 团队级 把注册资料目录整理成共享模板")
        async with db.session() as s:
            w49 = await feedback_counts(s, "demo", ["2026-W49"])
            both = await feedback_counts(s, "demo", ["2026-W48", "2026-W49"])
            assert await feedback_counts(s, "demo", []) == []
            assert await feedback_counts(s, "other", ["2026-W49"]) == []
        assert w49 == [("康骨医疗/研发中心/注册部", "主动补位", 2), ("康骨医疗/质量部", "风险预警", 1)]
        assert both == [("康骨医疗/研发中心/注册部", "主动补位", 2), ("康骨医疗/研发中心/注册部", "知识沉淀", 1),
                        ("康骨医疗/质量部", "风险预警", 1)]
        assert datetime(2026, 11, 29, 15, 30, tzinfo=timezone.utc) == at("2026-11-29 23:30")


async def test_feedback_through_wecom(sqlite_db: Database) -> None:
    """The app menu click, the cards as WeCom renders them, and the one-message form, on the WeCom fake.

    (The store is covered on both databases above; this is about the wire.)
    """
    db = sqlite_db
    import csv

    from bot.demo import DATA
    from handlers.routes import build_router
    from store.roster import ensure_tenant, import_roster
    from tests.fakes.wecom_server import FakeWeCom, running_bot

    fake = FakeWeCom()
    with open(DATA / "roster.csv", encoding="utf-8") as f:
        for person in csv.DictReader(f):
            fake.add_user(person["userid"], person["name"])
    await fake.start()
    try:
        async with running_bot(db, fake, FrozenClock(at("2026-12-01 10:00")), tenant_key="demo",
                               router=build_router()) as bot:
            await ensure_tenant(db, bot.runtime.config.tenant("demo"))
            assert not (await import_roster(db, "demo", DATA / "roster.csv")).errors

            async def press(userid: str, text: str) -> None:
                card = fake.last_card(userid).card
                key = next(b["key"] for b in card["button_list"] if b["text"] == text)
                assert await bot.client.press(userid, card["task_id"], key) == [200]
                await bot.runtime.settle()

            assert await bot.client.click("liuyang", "feedback") == [200]
            await bot.runtime.settle()
            assert fake.last_card("liuyang").card["main_title"]["title"] == "微反馈 · 给谁？"
            await press("liuyang", "王强")
            await press("liuyang", "主动补位")
            await press("liuyang", "客户级")
            assert await bot.client.say("liuyang", EVENT) == [200]
            await bot.runtime.settle()
            [row] = await feedback_rows(db)
            assert (row.receiver_userid, row.tag, row.impact, row.event) == ("wangqiang", "主动补位", Impact.CUSTOMER, EVENT)
            told = [d.text for d in fake.messages_to("wangqiang")]
            assert told == [f"刘洋 给了你一条反馈：\n#主动补位（认可）· 客户级\n{EVENT}"]
            # The answered cards were greyed out in place.
            assert all("replace_text" in s.card for s in fake.cards.values() if "liuyang" in s.userids)

            assert await bot.client.say("liuyang", "反馈 @李娜 #知识沉淀 团队级 把注册资料目录整理成共享模板") == [200]
            await bot.runtime.settle()
            assert [r.receiver_userid for r in await feedback_rows(db)] == ["wangqiang", "li_na"]
            assert fake.silently_dropped == []
    finally:
        await fake.stop()


async def test_feedback_through_dingtalk(sqlite_db: Database) -> None:
    """A group message whose @ DingTalk resolved, and the card flow on DingTalk's interactive cards."""
    db = sqlite_db
    from bot.demo import DATA
    from bot.core.config import parse_config
    from bot.dingtalk.adapter import DingTalkAdapter
    from bot.runtime import Runtime
    from handlers.routes import build_router
    from store.roster import ensure_tenant, import_roster
    from tests.fakes.dingtalk_server import FakeDingTalk, tenant_config

    fake = FakeDingTalk(redeliver_after=5.0)
    await fake.start()
    app = fake.add_app("dingdemo", "s3cret-demo", corp_id="dingcorp")
    for u in ("liuyang", "wangqiang", "li_na"):
        fake.add_user(app, u)
    config = parse_config({"database": {"url": db.url}, "tenants": [tenant_config(app, fake.base_url, key="demo")]})
    runtime = Runtime(config, db, FrozenClock(at("2026-12-01 10:00")), router=build_router())
    adapter = DingTalkAdapter(runtime)
    runtime.add_adapter(adapter)
    await ensure_tenant(db, config.tenant("demo"))
    assert not (await import_roster(db, "demo", DATA / "roster.csv")).errors
    await adapter.start()
    try:
        await fake.wait_connected(app)

        async def settle(frames: list[Any]) -> None:
            await fake.wait_acked(frames)
            await runtime.settle()

        # In a group, DingTalk resolves the @ itself: the mention arrives as a userid.
        f = await fake.push_robot_message(app, "liuyang", f"反馈 @王强 #主动补位 客户级 {EVENT}", conversation_type="2",
                                          conversation_id="cidGROUP==", at_users=["wangqiang"])
        await settle([f])
        [row] = await feedback_rows(db)
        assert (row.receiver_userid, row.tag, row.impact, row.event) == ("wangqiang", "主动补位", Impact.CUSTOMER, EVENT)
        assert any(EVENT in str(d.content) for d in fake.delivered["wangqiang"])

        # The card flow, pressing DingTalk's card buttons.
        await settle([await fake.push_robot_message(app, "liuyang", "反馈")])
        for label in ("李娜", "跨部门协作", "团队级"):
            card = fake.cards_of("liuyang")[-1]
            assert await fake.press(card.biz_id, "liuyang", label) == 0
            await settle([fr for fr in fake.frames.values() if fr.kind == "card"])
        await settle([await fake.push_robot_message(app, "liuyang", "周三陪质量部一起排查来料问题，当天定位供应商批次")])
        row = (await feedback_rows(db))[-1]
        assert (row.receiver_userid, row.tag, row.impact) == ("li_na", "跨部门协作", Impact.TEAM)
        assert fake.protocol_errors == []
    finally:
        await adapter.stop()
        await fake.stop()
