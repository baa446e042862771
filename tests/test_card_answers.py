"""Typed answers to cards: the same button a press would give, or nothing when in doubt."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from handlers.card_answers import typed_answer
from tests.fuzz_budget import budget, fuzz_counts_report, tried  # noqa: F401  (fixture)

INVITE = [("accept", "接受见证"), ("decline", "无法见证"), ("feedback", "反馈")]
CONFIRM = [("confirm", "确认完成"), ("deny", "未完成"), ("feedback", "反馈")]
WHO = [("pick:li_na", "李娜（注册部）"), ("pick:li_na2", "李纳（质量部）"), ("pick:none", "都不是")]
GOALS = [("goal:O1-KR2", "O1-KR2 NMPA二类证平均"), ("goal:O2", "O2 新产品上市"), ("goal:none", "不关联目标")]
LAST_DAY = [("done", "完成"), ("not_done", "未完成")]


def key(text: str, buttons: list[tuple[str, str]], locale: str = "zh") -> str | None:
    got = typed_answer(text, buttons, locale=locale)
    return got.key if got else None


@pytest.mark.parametrize(("text", "expected"), [
    ("接受", "accept"), ("好的", "accept"), ("可以", "accept"), ("OK", "accept"), ("接受见证", "accept"),
    ("👍", "accept"), ("  接受。", "accept"), ("ｏｋ", "accept"),
    ("无法见证", "decline"), ("不行", "decline"), ("拒绝", "decline"), ("不是他", "decline"),
    ("反馈", "feedback"),
    ("第一个", "accept"), ("2", "decline"),
])
def test_the_witness_invitation(text: str, expected: str) -> None:
    assert key(text, INVITE) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("确认", "confirm"), ("确认完成", "confirm"), ("是的", "confirm"), ("完成", "confirm"),
    ("未完成", "deny"), ("还没完成", "deny"), ("不对", "deny"),
])
def test_the_confirmation(text: str, expected: str) -> None:
    assert key(text, CONFIRM) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("第二个", "pick:li_na2"), ("第2个", "pick:li_na2"), ("二", "pick:li_na2"), ("②", "pick:li_na2"),
    ("李娜", "pick:li_na"), ("李纳（质量部）", "pick:li_na2"), ("质量部", "pick:li_na2"),
    ("都不是", "pick:none"), ("不是他", "pick:none"), ("none", "pick:none"), ("最后一个", "pick:none"),
    ("第三个", "pick:none"),
])
def test_picking_a_person(text: str, expected: str) -> None:
    assert key(text, WHO) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("o1-kr2", "goal:O1-KR2"), ("O2", "goal:O2"), ("新产品上市", "goal:O2"), ("不关联目标", "goal:none"),
    ("都不是", "goal:none"), ("第一个", "goal:O1-KR2"),
])
def test_picking_a_goal(text: str, expected: str) -> None:
    assert key(text, GOALS) == expected


@pytest.mark.parametrize("text", ["", "   ", "第四个", "0", "王强", "李", "也许吧", "是", "明天再说"])
def test_doubt_is_no_answer(text: str) -> None:
    # 「是」 on a person card names nobody; 「李」 fits both; 「第四个」 is not there.
    assert key(text, WHO) is None


def test_yes_with_two_yes_buttons_is_no_answer() -> None:
    assert key("好的", [("accept", "接受"), ("confirm", "确认")]) is None


def test_english_words_work_on_an_english_tenant_and_on_a_chinese_one() -> None:
    assert key("accept", INVITE, "en") == "accept" and key("accept", INVITE) == "accept"
    assert key("not done", LAST_DAY, "en") == "not_done"


@budget(500)
@given(text=st.text(max_size=12), n=st.integers(0, 5))
def test_an_answer_is_always_one_of_the_cards_buttons(text: str, n: int) -> None:
    tried("card_answers.typed_answer")
    buttons = (WHO + INVITE)[:n]
    got = typed_answer(text, buttons)
    assert got is None or got.key in {k for k, _ in buttons}
