"""The words of weekly actions and task titles (Chinese word segmentation with jieba).

jieba ships its dictionary inside the package, so nothing is downloaded; its first cut
builds a prefix dictionary (about half a second) and would log that on every start, which
is noise in a server's log, so its logger is quietened. What a profile may show is only
what describes work: stop words, numbers, goal codes, single characters and punctuation are
dropped, and so is every colleague's name (removed from the text before it is cut, then any
word still overlapping a name), because a term must never point at a person.
"""
from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from typing import Iterable

with warnings.catch_warnings():
    # jieba 0.42.1 predates Python 3.11; keep whatever it still warns about at import out of our output.
    warnings.simplefilter("ignore")
    import jieba

jieba.setLogLevel(logging.WARNING)

# Function words and the verbs every weekly action has (完成, 跟进 …): they say nothing about the role.
STOP_WORDS = frozenset("""
的 了 和 与 及 并 或 在 对 把 被 将 给 从 向 为 以 于 等 之 其 这 那 这个 那个 一个 一些 一下 一起 一份 一次
我 我们 你 你们 他 他们 她 她们 它 本人 大家 自己 相关 有关 进行 开展 完成 推进 跟进 负责 协助 配合 帮助 帮
做 做好 搞定 处理 工作 事情 事项 任务 问题 情况 方面 部分 内容 东西 本周 下周 上周 本月 下月 今天 明天 周一 周二
周三 周四 周五 周六 周日 上午 下午 晚上 以及 还有 已经 正在 需要 可以 能够 确保 保证 争取 尽快 按时 及时 所有
全部 每个 每周 各个 多个 两个 三个 初步 继续 持续 主要 重点 相应 对应 通过 根据 按照 关于 由于 因为 所以 但是
然后 同时 其中 以上 以下 之前 之后 期间 当前 目前 月底 周末 提前 左右 准备 安排 落实 输出 提交 更新 确认
""".split())
# Goal codes (O1, O1-KR2) are shown as goals, not as words.
_GOAL_CODE = re.compile(r"\bO\d+(?:-KR\d+)?\b", re.IGNORECASE)
_MENTION = re.compile(r"@\S+")
_WORD = re.compile(r"^(?:[\u3400-\u9fff]{2,}|[A-Za-z][A-Za-z\-+#]{1,})$")


def ready() -> None:
    """Load the dictionary now (about a second the first time in a process; nothing after)."""
    jieba.initialize()


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def words(text: str, names: Iterable[str] = ()) -> list[str]:
    """The words of `text` that may describe work, in order (repeats kept)."""
    t = _MENTION.sub(" ", _GOAL_CODE.sub(" ", _fold(text)))
    people = sorted({n for n in names if len(n) >= 2}, key=len, reverse=True)
    for name in people:
        t = t.replace(name, " ")
    out = []
    for w in jieba.lcut(t):
        w = w.strip()
        if not _WORD.match(w) or w.casefold() in STOP_WORDS or w in STOP_WORDS:
            continue
        if any(n in w or w in n for n in people):
            continue
        out.append(w)
    return out


def mentions(term: str, text: str) -> bool:
    """Whether `text` (a JD) already speaks of `term`."""
    return _fold(term).casefold() in _fold(text).casefold()
