"""The intent corpus: real-style messages, each with the intent a colleague would read in it.

tests/data/intent_corpus.tsv holds text, expected intent and a note. The test prints
the size and per-intent accuracy (also written to test-artifacts/intent-accuracy.json)
and fails on any miss, listing every one.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from hypothesis import given, strategies as st

from handlers.routes import build_router
from handlers.intent import Intent, classify
from tests.fuzz_budget import budget, fuzz_counts_report, tried  # noqa: F401  (fixture)

CORPUS = Path(__file__).parent / "data" / "intent_corpus.tsv"
ARTIFACT = Path(__file__).resolve().parent.parent / "test-artifacts" / "intent-accuracy.json"


def label(intent: Intent) -> str:
    if intent.kind == "command":
        return f"command:{intent.command}"
    if intent.kind == "weekly_action":
        return "weekly_action:" + ("complete" if intent.complete else "part")
    if intent.kind == "chitchat":
        return f"chitchat:{intent.chat}"
    return intent.kind


def load() -> list[tuple[str, str, str]]:
    with CORPUS.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(r["text"], r["expected"], r["note"]) for r in rows]


def test_the_corpus_is_big_and_varied() -> None:
    rows = load()
    assert len(rows) >= 250
    kinds = Counter(expected.split(":")[0] for _, expected, _ in rows)
    assert set(kinds) == {"command", "weekly_action", "chitchat", "doubtful", "unclear"}
    texts = [t for t, _, _ in rows]
    assert len(set(texts)) == len(texts), "a message is listed twice"
    assert any(any(0xFF01 <= ord(c) <= 0xFF5E for c in t) for t in texts)  # full-width input
    assert any(any(ord(c) >= 0x1F300 for c in t) for t in texts)  # emoji
    assert any("@" in t for t in texts) and any("O1-KR2" in t for t in texts)


def test_every_message_is_read_as_expected(capsys) -> None:  # type: ignore[no-untyped-def]
    rows = load()
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    misses = []
    for text, expected, note in rows:
        got = label(classify_text(text))
        kind = expected.split(":")[0]
        total[kind] += 1
        if got == expected:
            right[kind] += 1
        else:
            misses.append(f"{text!r}: expected {expected}, got {got} ({note})")
    report = {"size": len(rows), "per_intent": {
        k: {"messages": total[k], "correct": right[k], "accuracy": round(right[k] / total[k], 4)} for k in sorted(total)}}
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    with capsys.disabled():
        print(f"\nintent corpus: {len(rows)} messages")
        for k, v in report["per_intent"].items():
            print(f"  {k:14s} {v['correct']:4d}/{v['messages']:<4d} {v['accuracy']:.1%}")
    assert not misses, "\n".join(misses)


# -- any text ------------------------------------------------------------------------------------
_PIECES = ["O1-KR2", "@李娜", "完成2份报告", "你好", "好的", "，", "？", "状态", "👍", "\u200b", "请假", "明天", "ok", " "]


@budget(600)
@given(text=st.one_of(st.text(max_size=30), st.lists(st.sampled_from(_PIECES), max_size=6).map("".join)))
def test_any_text_gets_exactly_one_intent(text: str) -> None:
    tried("intent.classify")
    got = classify_text(text)
    assert got.kind in ("command", "weekly_action", "chitchat", "doubtful", "unclear")
    assert bool(got.command) == (got.kind == "command")
    assert bool(got.chat) == (got.kind == "chitchat")
    assert not got.complete or got.kind == "weekly_action"


@budget(300)
@given(thing=st.text(st.sampled_from("完成报告整理资料提交审核客户回访样品检测"), min_size=2, max_size=20),
       witness=st.sampled_from(["@李娜", "@lina", "＠王强", "@u1001"]), goal=st.sampled_from(["", "O1-KR2 ", "无 "]))
def test_a_whole_action_is_always_a_whole_action(thing: str, witness: str, goal: str) -> None:
    tried("intent.classify.action")
    got = classify_text(f"{goal}{thing} {witness}")
    assert (got.kind, got.complete) == ("weekly_action", True)


_ROOT = build_router()


def classify_text(text: str):  # type: ignore[no-untyped-def]
    """The intent with the bot's own command table, as the router sees a message."""
    return classify(text, commands=_ROOT.classify)
