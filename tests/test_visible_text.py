"""「20 字」 counts what people see: grapheme clusters after NFC; invisible text is no text."""
from __future__ import annotations

import pytest

from handlers.reply_grammar import parse_action_reply
from handlers.visible_text import is_invisible, visible_length, visible_text


@pytest.mark.parametrize(("text", "n"), [
    ("完成2份临床评价报告初稿", 12),
    ("👨‍👩‍👧", 1),  # man, ZWJ, woman, ZWJ, girl
    ("👍🏻", 1),  # thumbs up with a skin tone
    ("🇨🇳", 1),  # a flag is two regional indicators
    ("e\u0301", 1),  # e + combining acute, NFC é
    ("a\u0308\u0308", 1),  # stacked marks stay on their letter
    ("完成\u200b报告", 4),  # a pasted zero-width space shows nothing
    ("\ufeff完成", 2),
    ("完成 报告", 5),  # a space is seen as a gap
])
def test_counts_what_is_on_the_screen(text: str, n: int) -> None:
    assert visible_length(text) == n


@pytest.mark.parametrize("text", ["", "   ", "\u200b", "\u200b\u200d\ufeff", "\u3000\u200b", "\x00", "\u2060"])
def test_invisible_text_is_no_text(text: str) -> None:
    assert is_invisible(text) and visible_text(text) == ""


def test_twenty_family_emoji_fit_in_twenty_characters() -> None:
    thing = "👨‍👩‍👧" * 20
    r = parse_action_reply(f"{thing} @李娜")
    assert r.thing == thing and r.thing_length == 20 and not r.too_long
    r = parse_action_reply(f"{thing}👍 @李娜")
    assert r.thing_length == 21 and r.too_long


def test_a_decomposed_accent_is_stored_composed() -> None:
    r = parse_action_reply("Cafe\u0301 visit @李娜")
    assert r.thing == "Café visit" and r.thing_length == 10


def test_an_invisible_thing_is_not_a_thing() -> None:
    r = parse_action_reply("\u200b\u200b @李娜")
    assert r.thing is None and r.witness_tokens == ["李娜"]
