"""Words that answer what a card asks, typed instead of pressed, per locale.

The grammar that uses them is handlers/card_answers.py; the lists are data so that
a locale (or a word people keep typing) is added here without touching code.
"""
from __future__ import annotations

# Each class is what a button means, whatever its card: a 接受 on an invitation and a
# 确认完成 on a confirmation are both "yes".
ANSWER_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "yes": {
        "zh": ("是", "是的", "对", "对的", "好", "好的", "可以", "行", "没问题", "确认", "确定", "接受", "同意",
               "嗯", "嗯嗯", "收到", "确认完成", "完成", "已完成", "完成了", "接受见证", "愿意", "👍", "👌", "✅"),
        "en": ("yes", "y", "ok", "okay", "sure", "accept", "confirm", "confirmed", "agree", "yep"),
    },
    "no": {
        "zh": ("不", "不是", "否", "不对", "不行", "不可以", "拒绝", "不接受", "不同意", "无法见证", "不能见证",
               "没法见证", "未完成", "没完成", "还没完成", "尚未完成", "不确认", "❌"),
        "en": ("no", "n", "nope", "decline", "deny", "reject", "not done"),
    },
    "none": {
        "zh": ("都不是", "都不对", "一个都不是", "都不", "不是他", "不是她", "不是这些人", "不是这几个", "没有我要的",
               "都不要", "以上都不是"),
        "en": ("none", "none of them", "neither", "not them", "none of these"),
    },
}

# 第二个, 2, ②, 二: the n-th option of the card.
ORDINAL_WORDS: dict[str, int] = {
    "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1, "最后": -1,
}
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"

# Button keys (or key suffixes after ':') whose meaning is known.
KEY_CLASSES: dict[str, str] = {
    "accept": "yes", "confirm": "yes", "yes": "yes", "done": "yes",
    "decline": "no", "deny": "no", "no": "no", "not_done": "no",
    "none": "none",
}
