"""The weekly action reply, leave requests and chat commands, parsed from text alone."""
from __future__ import annotations

from handlers.routes import classify_command

from datetime import date

import pytest

from handlers.reply_grammar import (
    MAX_THING_LENGTH,
    LeaveParseError,
    LeaveRequest,
    canonical_goal_code,
    parse_action_reply,
    parse_leave,
)

# -- weekly action reply -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "goal", "goal_code", "goal_none", "thing", "witnesses"),
    [
        ("O1-KR2 完成2份临床评价报告初稿 @李娜", "O1-KR2", "O1-KR2", False, "完成2份临床评价报告初稿", ["李娜"]),
        ("o1kr2 完成2份报告 @lina", "o1kr2", "O1-KR2", False, "完成2份报告", ["lina"]),
        ("#新产品上市 准备展会资料 @王强", "#新产品上市", None, False, "准备展会资料", ["王强"]),
        ("无 整理客户回访记录 @zhangsan", None, None, True, "整理客户回访记录", ["zhangsan"]),
        ("完成2份报告 @李娜", None, None, False, "完成2份报告", ["李娜"]),
        ("@李娜", None, None, False, None, ["李娜"]),
        ("O1-KR2", "O1-KR2", "O1-KR2", False, None, []),
        ("#O1 梳理渠道名单 @王强", "#O1", "O1", False, "梳理渠道名单", ["王强"]),
        ("O3 招聘2名注册专员 @u1001", "O3", "O3", False, "招聘2名注册专员", ["u1001"]),
        ("o1-kr2 完成报告 @lina", "o1-kr2", "O1-KR2", False, "完成报告", ["lina"]),
        ("O01-KR02 完成报告 @lina", "O01-KR02", "O1-KR2", False, "完成报告", ["lina"]),
        ("O12_kr3 完成报告", "O12_kr3", "O12-KR3", False, "完成报告", []),
        ("O1 KR2 完成报告 @李娜", "O1 KR2", "O1-KR2", False, "完成报告", ["李娜"]),
        ("O1-KR2：完成报告 @李娜", "O1-KR2", "O1-KR2", False, "完成报告", ["李娜"]),
        ("O1-KR2完成报告 @李娜", "O1-KR2", "O1-KR2", False, "完成报告", ["李娜"]),
        ("o1kr2，完成报告 @李娜", "o1kr2", "O1-KR2", False, "完成报告", ["李娜"]),
        ("- 整理客户回访记录 @李娜", None, None, True, "整理客户回访记录", ["李娜"]),
        ("跳过 整理客户回访记录 @李娜", None, None, True, "整理客户回访记录", ["李娜"]),
        ("无目标 整理客户回访记录 @李娜", None, None, True, "整理客户回访记录", ["李娜"]),
        ("NONE 整理客户回访记录 @李娜", None, None, True, "整理客户回访记录", ["李娜"]),
        ("无", None, None, True, None, []),
        ("@李娜 O1-KR2 完成报告", "O1-KR2", "O1-KR2", False, "完成报告", ["李娜"]),
    ],
)
def test_reply_parts(text: str, goal: str | None, goal_code: str | None, goal_none: bool,
                     thing: str | None, witnesses: list[str]) -> None:
    r = parse_action_reply(text)
    assert r.goal == goal
    assert r.goal_code == goal_code
    assert r.goal_none is goal_none
    assert r.thing == thing
    assert r.witness_tokens == witnesses
    assert r.thing_length == (len(thing) if thing else 0)
    assert not r.witnesses_are_userids


def test_goal_title_words_after_hash() -> None:
    r = parse_action_reply("#新产品上市 准备展会资料 @王强")
    assert r.goal_title == "新产品上市" and r.goal_code is None
    r = parse_action_reply("# 新产品上市 准备展会资料")
    assert r.goal_title == "新产品上市" and r.thing == "准备展会资料"
    assert parse_action_reply("#O1 梳理渠道").goal_title is None


@pytest.mark.parametrize(
    "text",
    ["O2O活动策划 @李娜", "KR2 完成报告 @李娜", "Office培训 @李娜", "无菌检测报告 @李娜", "OKR复盘 @李娜"],
)
def test_first_words_that_only_look_like_a_goal_stay_in_the_thing(text: str) -> None:
    r = parse_action_reply(text)
    assert r.goal is None and not r.goal_none
    assert r.thing == text.split(" @")[0]


def test_full_width_forms() -> None:
    r = parse_action_reply("＃O1　完成　报告　＠李娜")
    assert (r.goal, r.goal_code, r.thing, r.witness_tokens) == ("＃O1", "O1", "完成 报告", ["李娜"])
    r = parse_action_reply("Ｏ１－ＫＲ２ 完成报告 ＠ｌｉｎａ")
    assert r.goal_code == "O1-KR2" and r.thing == "完成报告" and r.witness_tokens == ["lina"]
    r = parse_action_reply("＃新产品上市　准备展会资料　＠王强")
    assert r.goal_title == "新产品上市" and r.thing == "准备展会资料" and r.witness_tokens == ["王强"]


def test_chinese_punctuation_inside_the_thing_is_kept() -> None:
    r = parse_action_reply("O1 完成报告，提交注册 @李娜")
    assert r.thing == "完成报告，提交注册"


def test_extra_spaces_are_collapsed_and_trimmed() -> None:
    r = parse_action_reply("   O1-KR2    完成  2份   报告    @李娜   ")
    assert r.thing == "完成 2份 报告"
    assert r.thing_length == 8


def test_separators_around_mentions_are_dropped() -> None:
    r = parse_action_reply("完成报告，@李娜。")
    assert r.thing == "完成报告" and r.witness_tokens == ["李娜"]
    r = parse_action_reply("完成报告、 @李娜")
    assert r.thing == "完成报告" and r.witness_tokens == ["李娜"]


def test_mention_glued_to_the_thing() -> None:
    r = parse_action_reply("完成2份PPT@李娜")
    assert r.thing == "完成2份PPT" and r.witness_tokens == ["李娜"]
    r = parse_action_reply("完成报告@李娜@王强")
    assert r.thing == "完成报告" and r.witness_tokens == ["李娜", "王强"]


def test_mention_with_a_space_after_the_at_sign() -> None:
    r = parse_action_reply("完成报告 @ 李娜")
    assert r.thing == "完成报告" and r.witness_tokens == ["李娜"]


def test_userid_with_dots_and_trailing_full_stop() -> None:
    r = parse_action_reply("完成报告 @tony.wang.")
    assert r.witness_tokens == ["tony.wang"]


def test_two_witnesses_are_both_reported() -> None:
    r = parse_action_reply("完成报告 @李娜 @王强")
    assert r.witness_tokens == ["李娜", "王强"]


def test_email_address_is_not_a_mention() -> None:
    r = parse_action_reply("回复a@b.com 的询价 @李娜")
    assert r.witness_tokens == ["李娜"]
    assert r.thing == "回复a@b.com 的询价"


def test_a_lone_at_sign_is_dropped() -> None:
    r = parse_action_reply("完成报告 @")
    assert r.thing == "完成报告" and r.witness_tokens == []


def test_platform_mentions_replace_text_mentions() -> None:
    r = parse_action_reply("O1-KR2 完成报告 @李娜", platform_mentions=["u1001"])
    assert r.witness_tokens == ["u1001"]
    assert r.witnesses_are_userids
    assert r.thing == "完成报告" and r.goal_code == "O1-KR2"


def test_empty_platform_mentions_fall_back_to_text() -> None:
    r = parse_action_reply(" 完成报告 @lina", platform_mentions=[])
    assert r.witness_tokens == ["lina"] and not r.witnesses_are_userids
    assert r.thing == "完成报告"


def test_twenty_characters_is_the_limit() -> None:
    twenty = "完成临床评价报告初稿并提交注册部审核会签"
    assert len(twenty) == 20
    r = parse_action_reply(f"O1-KR2 {twenty} @李娜")
    assert r.thing == twenty and r.thing_length == 20 and not r.too_long
    r = parse_action_reply(f"O1-KR2 {twenty}稿 @李娜")
    assert r.thing_length == 21 and r.too_long
    assert MAX_THING_LENGTH == 20


def test_length_counts_code_points() -> None:
    r = parse_action_reply("完成报告👍 @李娜")
    assert r.thing_length == 5
    r = parse_action_reply("完成2份PPT @李娜")
    assert r.thing_length == 7


def test_full_width_space_counts_once_after_collapsing() -> None:
    r = parse_action_reply("完成　　报告 @李娜")
    assert r.thing == "完成 报告" and r.thing_length == 5


@pytest.mark.parametrize("text", ["", "   ", "\u3000"])
def test_empty_reply(text: str) -> None:
    r = parse_action_reply(text)
    assert r.is_empty and r.thing is None and r.thing_length == 0


@pytest.mark.parametrize(
    ("token", "code"),
    [("o1kr2", "O1-KR2"), ("O1-KR2", "O1-KR2"), ("#o1", "O1"), ("O1.KR2", "O1-KR2"),
     ("Ｏ１－ＫＲ２", "O1-KR2"), ("o7", "O7"), ("KR2", None), ("O", None), ("O1-KR", None), ("新产品", None)],
)
def test_canonical_goal_code(token: str, code: str | None) -> None:
    assert canonical_goal_code(token) == code


# -- leave -------------------------------------------------------------------

TODAY = date(2026, 12, 3)  # a Thursday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("请假 至 12-05", LeaveRequest(date(2026, 12, 3), date(2026, 12, 5), "", False)),
        ("请假 12-01 至 12-05 年假", LeaveRequest(date(2026, 12, 1), date(2026, 12, 5), "年假", False)),
        ("请假至2026-12-05", LeaveRequest(date(2026, 12, 3), date(2026, 12, 5), "", False)),
        ("请假 到 12月8日 病假", LeaveRequest(date(2026, 12, 3), date(2026, 12, 8), "病假", False)),
        ("请假 12/07~12/09", LeaveRequest(date(2026, 12, 7), date(2026, 12, 9), "", False)),
        ("请假 12-05", LeaveRequest(date(2026, 12, 5), date(2026, 12, 5), "", False)),
        ("请假 明天 看病", LeaveRequest(date(2026, 12, 4), date(2026, 12, 4), "看病", False)),
        ("请假 年假 12-07 至 12-11", LeaveRequest(date(2026, 12, 7), date(2026, 12, 11), "年假", False)),
        ("请假　至　１２－０５，年假", LeaveRequest(date(2026, 12, 3), date(2026, 12, 5), "年假", False)),
        ("请假 12-28 至 01-05 探亲", LeaveRequest(date(2026, 12, 28), date(2027, 1, 5), "探亲", False)),
        ("leave to 12-05 annual leave", LeaveRequest(date(2026, 12, 3), date(2026, 12, 5), "annual leave", False)),
        ("本周跳过 出差", LeaveRequest(date(2026, 11, 30), date(2026, 12, 6), "出差", True)),
        ("本周跳过", LeaveRequest(date(2026, 11, 30), date(2026, 12, 6), "", True)),
        ("本周跳过：外地参展", LeaveRequest(date(2026, 11, 30), date(2026, 12, 6), "外地参展", True)),
    ],
)
def test_leave_requests(text: str, expected: LeaveRequest) -> None:
    assert parse_leave(text, TODAY) == expected


def test_a_month_day_just_past_is_asked_about_not_moved_a_year() -> None:
    # 12-01 typed on 12-03 was two days ago: the request is refused with a question and
    # the next-year reading, for the caller to confirm; nothing is moved in silence.
    with pytest.raises(LeaveParseError) as err:
        parse_leave("请假 12-01", TODAY)
    assert err.value.code == "past" and str(err.value) == "12-01 已经过去了，是指 2027-12-01 吗？"
    assert err.value.suggested == LeaveRequest(date(2027, 12, 1), date(2027, 12, 1))
    with pytest.raises(LeaveParseError) as err:
        parse_leave("请假 至 12-02 年假", TODAY)
    assert err.value.suggested == LeaveRequest(TODAY, date(2027, 12, 2), "年假")
    # The nearest reading of a January date typed in December is next January.
    assert parse_leave("请假 至 01-04", TODAY) == LeaveRequest(TODAY, date(2027, 1, 4))


def test_week_skip_on_a_sunday_covers_that_week() -> None:
    r = parse_leave("本周跳过", date(2026, 12, 6))
    assert r is not None and (r.start, r.end) == (date(2026, 11, 30), date(2026, 12, 6))


def test_leap_day() -> None:
    r = parse_leave("请假 02-29", date(2027, 3, 1))
    assert r is not None and r.start == date(2028, 2, 29)
    with pytest.raises(LeaveParseError) as err:
        parse_leave("请假 02-29", date(2026, 3, 1))
    assert err.value.code == "invalid_date"


@pytest.mark.parametrize(("text", "token"), [("请假 至 13-45", "13-45"), ("请假 02-30", "02-30"),
                                             ("请假 至 2027-02-29", "2027-02-29"), ("请假 3天", "3")])
def test_invalid_dates_are_refused_in_chinese(text: str, token: str) -> None:
    with pytest.raises(LeaveParseError) as err:
        parse_leave(text, TODAY)
    assert str(err.value) == f"日期 {token} 无效，请写成 12-05 这样的格式"
    assert err.value.code == "invalid_date" and err.value.token == token


@pytest.mark.parametrize("text", ["请假 12-05 至 12-01", "请假 至 2025-12-05", "请假 2026-12-08 至 2026-12-05"])
def test_end_before_start_is_refused(text: str) -> None:
    with pytest.raises(LeaveParseError) as err:
        parse_leave(text, TODAY)
    assert err.value.code == "end_before_start"
    assert "早于开始日期" in str(err.value)


def test_missing_date_is_refused_with_an_example() -> None:
    with pytest.raises(LeaveParseError) as err:
        parse_leave("请假 年假", TODAY)
    assert err.value.code == "missing_date" and "请假 至 12-05" in str(err.value)


def test_leave_longer_than_a_year_is_refused() -> None:
    with pytest.raises(LeaveParseError) as err:
        parse_leave("请假 至 2028-12-05", TODAY)
    assert err.value.code == "too_long"


@pytest.mark.parametrize("text", ["完成2份报告 @李娜", "你好", "", "跳过"])
def test_not_a_leave_request(text: str) -> None:
    assert parse_leave(text, TODAY) is None


# -- chat commands -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("修改 完成3份报告", ("edit", "完成3份报告")),
        ("修改 @王强", ("edit", "@王强")),
        ("修改@王强", ("edit", "@王强")),
        ("修改：O1-KR3", ("edit", "O1-KR3")),
        ("修改", ("edit", "")),
        ("完成", ("done", "")),
        ("已完成", ("done", "")),
        ("已完成！", ("done", "")),
        ("done", ("done", "")),
        ("DONE", ("done", "")),
        ("ｄｏｎｅ", ("done", "")),
        ("  完成 ", ("done", "")),
        ("未完成", ("not_done", "")),
        ("帮助", ("help", "")),
        ("help", ("help", "")),
        ("Help", ("help", "")),
        ("?", ("help", "")),
        ("？", ("help", "")),
        ("取消", ("cancel", "")),
        ("我的", ("status", "")),
        ("本周", ("status", "")),
        ("我的数据", ("status", "")),
        ("反馈 @小张 #主动补位 客户级 周二夜里帮客户排查退货问题",
         ("feedback", "@小张 #主动补位 客户级 周二夜里帮客户排查退货问题")),
        ("简报 @小张 2026Q4", ("brief", "@小张 2026Q4")),
        ("任务 T12 进行中", ("task", "T12 进行中")),
        ("进度 直播压测 50%", ("progress", "直播压测 50%")),
        ("请假 至 12-05", ("leave", "请假 至 12-05")),
        ("请假至2026-12-05", ("leave", "请假至2026-12-05")),
        ("请假", ("leave", "请假")),
        ("本周跳过 出差", ("skip", "本周跳过 出差")),
        ("本周跳过", ("skip", "本周跳过")),
        ("修改　完成3份报告", ("edit", "完成3份报告")),
    ],
)
def test_commands(text: str, expected: tuple[str, str]) -> None:
    assert classify_command(text) == expected


@pytest.mark.parametrize(
    ("text", "key"),
    [("接受", "accept"), ("接受见证", "accept"), ("接受。", "accept"), ("Accept", "accept"),
     ("无法见证", "decline"), ("拒绝", "decline"), ("确认", "confirm"), ("确认完成", "confirm"), ("ｃｏｎｆｉｒｍ", "confirm"),
     ("尚未完成", "deny")],  # 还没完成 is the owner's 未完成 command
)
def test_typed_card_answers(text: str, key: str) -> None:
    # The words a card's buttons carry, typed instead of pressed (DingTalk's markdown fallback says which).
    from handlers.reply_grammar import CARD_ANSWERS
    from handlers.router import CommandTable
    assert classify_command(text) == ("answer", "")
    assert CARD_ANSWERS[CommandTable.key_of(text)] == key


@pytest.mark.parametrize("text", ["确认一下报价单 @李娜", "接受客户反馈并整理 @王强"])
def test_actions_starting_like_an_answer_are_actions(text: str) -> None:
    assert classify_command(text) == ("", text)


@pytest.mark.parametrize(
    "text",
    ["完成2份报告 @李娜", "修改注册资料 @李娜", "请假流程优化 @李娜", "反馈收集表整理 @王强",
     "任务分解 @王强", "简报模板更新 @王强", "进度表更新 @王强", "O1-KR2 完成报告 @李娜", "我的报告", "完成了一半"],
)
def test_weekly_actions_are_not_commands(text: str) -> None:
    assert classify_command(text) == ("", text)


@pytest.mark.parametrize("text", ["请假流程优化 @李娜", "leave the draft with QA @李娜"])
def test_weekly_actions_starting_like_leave_are_not_leave(text: str) -> None:
    assert parse_leave(text, TODAY) is None
    assert classify_command(text) == ("", text)
