"""Peer recognition is on by default, within a monthly quota per giver; nobody praises themself."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.core.clock import FrozenClock
from store.db import Database
from store.models import Feedback
from tests.harness import at, console_bot
from tests.test_feedback import said

EVENT = "周二夜里帮客户排查退货问题"


async def given(db: Database) -> list[tuple[str, str]]:
    async with db.session() as s:
        return [(f.giver_userid, f.receiver_userid) for f in (await s.execute(select(Feedback).order_by(Feedback.id))).scalars()]


async def test_colleagues_recognise_each_other_by_default_within_a_monthly_quota(db: Database, tmp_path: Path) -> None:
    clock = FrozenClock(at("2026-12-01 10:00"))
    async with console_bot(db, clock, tmp_path, feedback={"peer_monthly_quota": 2}) as bot:
        # 王强 (注册部, no reports) thanks 李纳 of 质量部 and 许静 of 销售部: peers, outside any line.
        await bot.say("wangqiang", f"反馈 @李纳 #跨部门协作 客户级 {EVENT}")
        assert (await said(bot, "wangqiang"))[0].startswith("已记录对 李纳 的反馈")
        assert (await said(bot, "li_na2"))[0].startswith("王强 给了你一条反馈")
        await bot.say("wangqiang", "反馈 @许静 #主动补位 团队级 周三替她给华东客户补发了资料")
        # The third this month is over the quota of 2: refused, nothing stored.
        await bot.say("wangqiang", "反馈 @马军 #主动补位 团队级 周四帮忙核对了发货单")
        assert await said(bot, "wangqiang") == [
            "已记录对 许静 的反馈：\n#主动补位（认可）· 团队级\n周三替她给华东客户补发了资料\n已通知 许静。",
            "本月你已给汇报线以外的同事 2 条反馈，达到每月上限，下月 1 日恢复；给自己汇报线内同事的反馈不受限制。"]
        await bot.say("wangqiang", "取消")
        # Nobody gives themself feedback.
        await bot.say("wangqiang", f"反馈 @王强 #主动补位 客户级 {EVENT}")
        assert (await said(bot, "wangqiang"))[-1] == "不能给自己反馈，请 @ 一位同事。"
        await bot.say("wangqiang", "取消")

        # A manager's feedback to his own line does not use up the quota.
        for who in ("王强", "李娜", "赵磊"):
            await bot.say("liuyang", f"反馈 @{who} #主动补位 团队级 {EVENT}")
        await bot.say("liuyang", f"反馈 @李纳 #跨部门协作 客户级 {EVENT}")
        assert all(t.startswith("已记录对") for t in (await said(bot, "liuyang")) if "反馈：" in t)

        # The managers still see what their line received, whoever gave it.
        await bot.say("wuhao", "反馈 查看 @李纳")
        view = (await said(bot, "wuhao"))[0]
        assert view.startswith("李纳 收到的反馈（共 2 条）") and "王强" in view and "刘洋" in view

        # December's quota is spent; January brings a new one.
        clock.set(at("2027-01-04 10:00"))
        await bot.say("wangqiang", "反馈 @马军 #主动补位 团队级 周一帮忙核对了发货单")
        assert (await said(bot, "wangqiang"))[-1].startswith("已记录对 马军 的反馈")
    assert await given(db) == [
        ("wangqiang", "li_na2"), ("wangqiang", "xujing"), ("liuyang", "wangqiang"), ("liuyang", "li_na"),
        ("liuyang", "zhaolei"), ("liuyang", "li_na2"), ("wangqiang", "majun")]
