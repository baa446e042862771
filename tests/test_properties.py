"""Property tests for everything people and operators type: replies, feedback, imports, config.

Each grammar is total (any text gives an answer, never an exception) and keeps
what it was given; each import either reports a clean result or reports errors
by line number and leaves the database exactly as it was; the config loader
answers a Config or a ConfigError naming the key, nothing else.
"""
from __future__ import annotations

from handlers.routes import classify_command

import csv
import io
import json
import os
import re
import unicodedata
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, strategies as st
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.core.config import Config, ConfigError, TenantConfig, load_config, parse_config
from bot.demo import DATA
from handlers.feedback import is_vague, parse_feedback
from handlers.visible_text import visible_length, visible_text
from handlers.reply_grammar import (MAX_THING_LENGTH, LeaveParseError, LeaveRequest, ParsedReply,
                                    canonical_goal_code, fold_width, parse_action_reply,
                                    parse_leave)
from store.db import Database
from store.statuses import Impact
from store.goals import import_goals
from store.roster import ensure_tenant, import_roster
from store.tasks import import_tasks
from tests.fuzz_budget import budget, fuzz_counts_report, tried  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)

# -- text strategies -----------------------------------------------------------------------------

# Pieces people really type, so random texts reach the interesting branches.
_PIECES = ["O1-KR2", "o1kr2", "#O1", "＃新产品", "O1 KR2", "Ｏ１－ＫＲ２", "无", "-", "跳过", "@李娜", "@lina",
           "＠王强", "@", "@ ", "a@b.com", "完成2份临床评价报告初稿", "修改", "反馈", "简报", "任务", "进度",
           "完成", "done", "请假", "至", "12-05", "2026-02-30", "本周跳过", "出差", "#主动补位", "客户级", "团队",
           "，", "：", "、", "。", ":", ";", "　", "\t", "\n", "🎉", "👍🏻", "é", "e\u0301", "\u200b", "\x00"]
texts = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(_PIECES) | st.text(max_size=6), max_size=12).map(lambda p: " ".join(p)),
    st.lists(st.sampled_from(_PIECES), max_size=8).map("".join),
)

_MENTION_STOP = set("@#,;:、。!?()[]【】（）「」“”\"'‘’<>《》，；：！？.")


def _name_char(c: str) -> bool:
    return not c.isspace() and fold_width(c) not in _MENTION_STOP and c not in _MENTION_STOP


name_chars = st.characters(codec="utf-8", categories=("L", "N", "S", "M", "Pd", "Pc")).filter(_name_char)
names = st.text(name_chars, min_size=1, max_size=12)

# -- the weekly reply ------------------------------------------------------------------------------


@budget(1000)
@given(text=texts, mentions=st.none() | st.lists(st.text(min_size=1, max_size=10), max_size=3))
@example(text="O1-KR2 完成2份临床评价报告初稿 @李娜", mentions=None)
@example(text="＠\u3000", mentions=None)
def test_parse_action_reply_is_total_and_consistent(text: str, mentions: list[str] | None) -> None:
    tried("reply_grammar.parse_action_reply")
    r = parse_action_reply(text, platform_mentions=mentions)
    assert isinstance(r, ParsedReply)
    # 20 字 counts what people see: grapheme clusters (changed from code points on purpose).
    assert r.thing_length == visible_length(r.thing or "") <= len(r.thing or "")
    assert r.too_long == (r.thing_length > MAX_THING_LENGTH)
    if r.thing is not None:
        assert r.thing == r.thing.strip() and r.thing
    if mentions:
        assert r.witness_tokens == mentions and r.witnesses_are_userids
    else:
        assert all(t and "@" not in t and not any(ch.isspace() for ch in t) for t in r.witness_tokens)
        if "@" not in fold_width(text):
            assert r.witness_tokens == []
    if r.goal_code is not None:
        assert re.fullmatch(r"O\d+(-KR\d+)?", r.goal_code)


thing_chars = st.characters(codec="utf-8", categories=("L", "N", "So", "M")).filter(
    lambda c: _name_char(c) and fold_width(c) not in "@#")


@budget(500)
@given(thing=st.lists(st.text(thing_chars, min_size=1, max_size=12), min_size=1, max_size=4).map(" ".join),
       witness=names)
def test_thing_length_counts_grapheme_clusters(thing: str, witness: str) -> None:
    tried("reply_grammar.thing_length")
    r = parse_action_reply(f"无 {thing} @{witness}")
    # The thing is kept in NFC; 20 汉字 are 20, an emoji (with ZWJ or skin tone) or a letter with
    # its combining marks is 1. Code points were counted before: that is what changed, on purpose.
    if not any(c in "\ufe0e\ufe0f" for c in thing):  # a lone variation selector shows nothing
        assert r.goal_none and r.thing == unicodedata.normalize("NFC", thing)
    assert r.thing == (visible_text(thing) or None)
    assert r.thing_length == visible_length(thing) <= len(thing)
    assert r.too_long == (visible_length(thing) > MAX_THING_LENGTH)


@budget(500)
@given(prefix=st.text(thing_chars, max_size=10), who=st.lists(names, min_size=1, max_size=3),
       sep=st.sampled_from(["@", "＠", "@ "]))
def test_mentions_round_trip(prefix: str, who: list[str], sep: str) -> None:
    tried("reply_grammar.mentions")
    text = prefix + "".join(f" {sep}{w}" for w in who)
    r = parse_action_reply(text)
    assert r.witness_tokens == [fold_width(w) for w in who]
    assert not r.witnesses_are_userids


_KNOWN_COMMANDS = {"", "done", "not_done", "help", "cancel", "continue", "status", "my_feedback", "edit", "feedback",
                   "brief", "task", "progress", "leave", "skip", "goals"}


@budget(1000)
@given(text=texts)
@example(text="  完成。 ")
def test_classify_command_is_total(text: str) -> None:
    tried("reply_grammar.classify_command")
    command, rest = classify_command(text)
    assert command in _KNOWN_COMMANDS
    if command == "":
        assert rest == text
    else:
        assert rest == rest.strip() and (rest == "" or rest in text.strip() or command in ("leave", "skip"))


@budget(500)
@given(word=st.sampled_from([("修改", "edit"), ("edit", "edit"), ("反馈", "feedback"), ("简报", "brief"),
                             ("任务", "task"), ("进度", "progress")]),
       sep=st.sampled_from([" ", ":", "：", "\u3000", " @"]), rest=texts)
def test_commands_with_an_argument_keep_it(word: tuple[str, str], sep: str, rest: str) -> None:
    tried("reply_grammar.classify_command.argument")
    command, got = classify_command(word[0] + sep + rest)
    assert command == word[1]
    assert got in (word[0] + sep + rest).strip()


@budget(800)
@given(text=texts, today=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
@example(text="请假 12-05 至 12-01", today=date(2026, 12, 1))
@example(text="请假 02-29", today=date(2026, 12, 1))
def test_parse_leave_answers_or_explains(text: str, today: date) -> None:
    tried("reply_grammar.parse_leave")
    try:
        got = parse_leave(text, today)
    except LeaveParseError as exc:
        assert str(exc) and exc.code in ("invalid_date", "end_before_start", "missing_date", "too_long", "past")
        assert (exc.code == "past") == (exc.suggested is not None)
        assert exc.suggested is None or exc.suggested.start <= exc.suggested.end
        return
    assert got is None or (isinstance(got, LeaveRequest) and got.start <= got.end)


@budget(300)
@given(o=st.integers(0, 999), kr=st.none() | st.integers(0, 999),
       style=st.sampled_from(["{o}-{k}", "{o}{k}", "#{o}-{k}", "{o}_{k}", "{o}.{k}"]),
       lower=st.booleans(), wide=st.booleans())
def test_goal_codes_normalise(o: int, kr: int | None, style: str, lower: bool, wide: bool) -> None:
    tried("reply_grammar.canonical_goal_code")
    token = style.format(o=f"O{o}", k=f"KR{kr}") if kr is not None else f"O{o}"
    if lower:
        token = token.lower()
    if wide:
        token = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in token)
    assert canonical_goal_code(token) == (f"O{o}-KR{kr}" if kr is not None else f"O{o}")

# -- micro-feedback ----------------------------------------------------------------------------------


@budget(1000)
@given(text=texts)
def test_parse_feedback_is_total(text: str) -> None:
    tried("feedback.parse_feedback")
    parts = parse_feedback(text)
    assert parts.impact is None or isinstance(parts.impact, Impact)
    assert all(m for m in parts.mentions)
    if parts.event is not None:
        assert parts.event and parts.event == parts.event.strip(" \t,;:、。，；：.!！?？")
        assert isinstance(is_vague(parts.event), bool)
    if "@" not in fold_width(text):
        assert parts.mentions == []
    if "#" not in fold_width(text):
        assert parts.tag is None


_IMPACT_WORDS = {"客户级", "团队级", "流程级", "客户", "customer", "团队", "team", "流程", "process"}
_TAG_STOP = set("@#,;:、。!?，；：！？")
tag_chars = st.characters(codec="utf-8", categories=("L", "N")).filter(
    lambda c: not c.isspace() and fold_width(c) not in _TAG_STOP and c not in _TAG_STOP)
event_word = st.text(thing_chars, min_size=1, max_size=8).filter(
    lambda w: fold_width(w).casefold() not in _IMPACT_WORDS)


@budget(500)
@given(who=names, tag=st.text(tag_chars, min_size=1, max_size=8).filter(
           lambda t: not t.endswith(("客户级", "团队级", "流程级"))),
       impact=st.sampled_from(["客户级", "团队级", "流程级"]),
       event=st.lists(event_word, min_size=1, max_size=5), order=st.permutations(range(4)))
def test_feedback_parts_round_trip(who: str, tag: str, impact: str, event: list[str], order: list[int]) -> None:
    tried("feedback.parse_feedback.round_trip")
    pieces = [f"@{who}", f"#{tag}", impact, " ".join(event)]
    parts = parse_feedback(" ".join(pieces[i] for i in order))
    assert parts.mentions == [who]
    assert parts.tag == tag
    assert parts.impact == Impact.from_label(impact)
    assert parts.event == " ".join(event).strip(" \t,;:、。，；：.!！?？")

# -- imports: a clean report, or errors by line and nothing written ------------------------------------


async def snapshot(db: Database) -> dict[str, list[str]]:
    """Every row of every table, as text: 'nothing written' means this does not change."""
    out: dict[str, list[str]] = {}
    async with db.session() as s:
        for name, table in sorted(SQLModel.metadata.tables.items()):
            rows = (await s.execute(select(table))).all()
            out[name] = sorted(repr(tuple(r)) for r in rows)
    return out


_FILE_LEVEL = ("文件不是 UTF-8 编码", "CSV 格式错误", "无法读取 XLSX 文件", "调整原因")


def check_errors(errors: list[str], text_lines: int) -> None:
    """Every error names its line (the header is line 1), or is about the file as a whole."""
    assert errors == sorted(errors, key=lambda e: int(m.group(1)) if (m := re.match(r"第 (\d+) 行", e)) else 0)
    for e in errors:
        m = re.match(r"第 (\d+) 行：\S", e)
        if m:
            assert 1 <= int(m.group(1)) <= text_lines, e
        else:
            assert e.startswith(_FILE_LEVEL), e


def cells(valid: list[str], invalid: list[str]) -> st.SearchStrategy[str]:
    """Mostly valid values, so whole files pass now and then and broken rows sit among good ones."""
    good = st.sampled_from(valid)
    return st.one_of(good, good, good, st.sampled_from(invalid), st.text(max_size=12))


@st.composite
def table_file(draw: st.DrawFn, columns: tuple[str, ...], values: dict[str, st.SearchStrategy[str]]) -> tuple[str, bytes]:
    """(suffix, file bytes): a CSV as Excel or a person might save it, or something else entirely."""
    kind = draw(st.sampled_from(["csv", "csv", "csv", "csv", "naive", "bytes", "xlsx-junk"]))
    if kind == "bytes":
        return ".csv", draw(st.binary(max_size=300))
    if kind == "xlsx-junk":
        return ".xlsx", draw(st.binary(max_size=200))
    header = list(draw(st.permutations(columns)))
    mutation = draw(st.sampled_from(["none"] * 6 + ["drop", "extra", "dup", "upper"]))
    if mutation == "drop":
        header.pop()
    elif mutation == "extra":
        header.append(draw(st.sampled_from(["note", "", "备注"])))
    elif mutation == "dup":
        header.append(header[0])
    elif mutation == "upper":
        header = [h.upper() for h in header]
    rows = draw(st.lists(st.fixed_dictionaries({c: values[c] for c in columns}), max_size=5))
    lines = [header] + [[r.get(h.lower(), "") for h in header] for r in rows]
    if draw(st.booleans()) and lines[1:]:
        lines[draw(st.integers(1, len(lines) - 1))].append(draw(st.sampled_from(["", "x"])))
    if kind == "naive":
        text = "\n".join(",".join(line) for line in lines) + draw(st.sampled_from(["", "\n", "\r\n", ",\n"]))
    else:
        buf = io.StringIO()
        csv.writer(buf).writerows(lines)
        text = buf.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "gb18030"]))
    return ".csv", text.encode(encoding, errors="replace")


ROSTER_VALUES = {
    "userid": cells(["wangqiang", "li_na", "zhoumin", "u001", "u002"], ["", "x" * 70]),
    "name": cells(["王强", "李娜", "周敏", "Tom Lee"], ["", " "]),
    "department": cells(["康骨医疗/研发中心/注册部", "康骨医疗", "总部 / 销售部"], ["", "总部//注册部", "/"]),
    "manager_userid": cells(["", "", "zhoumin", "wangqiang"], ["nobody", "u001"]),
    "roles": cells(["", "manager", "hr;admin", "HR；manager"], ["boss", "manager;;ceo"]),
}
GOAL_VALUES = {
    "code": cells(["O1", "O1-KR2", "o2kr1", "O3"], ["", "KR", "1O", "O1--KR2--X"]),
    "title": cells(["新产品上市成功率", "客户满意度提升"], [""]),
    "parent_code": cells(["", "", "O1", "o3"], ["O9", "bad code", "O1-KR2"]),
    "department": cells(["", "康骨医疗/销售部"], ["总部//x"]),
    "weight": cells(["", "30", "12.5%", "100"], ["101", "-1", "三十", "nan"]),
    "period": cells(["2026Q4", "2026q1"], ["", "2026Q5", "26Q1"]),
}
TASK_VALUES = {
    "project": cells(["P1", "P2"], ["", "has space", "P" * 41]),
    "project_name": cells(["", "直播系统", "注册项目"], ["其他"]),
    "pmo": cells(["", "zhoumin", "hexin"], ["nobody"]),
    "code": cells(["T1", "T2", "t3"], ["", "1bad", "T" * 40]),
    "title": cells(["直播系统压测", "提交注册资料"], ["", "长" * 101]),
    "owner": cells(["wangqiang", "王强", "li_na"], ["", "nobody"]),
    "collaborators": cells(["", "li_na;zhoumin", "李娜、周敏"], ["nobody", "wangqiang;nobody"]),
    "due": cells(["2026-12-01 12:00", "2026/11/30 18:00"], ["", "2026-13-01 12:00", "tomorrow", "2026-12-01"]),
    "deliverable": cells(["", "压测报告：CPU峰值截图"], ["长" * 501]),
}


@pytest.fixture
async def company(db: Database) -> Database:
    await ensure_tenant(db, TenantConfig(key="acme", name="Acme"))
    report = await import_roster(db, "acme", DATA / "roster.csv")
    assert not report.errors
    return db


async def _import_case(db: Database, tmp_path: Path, target: str, suffix: str, data: bytes, run: Any) -> None:
    tried(target)
    path = tmp_path / f"import{suffix}"
    path.write_bytes(data)
    before = await snapshot(db)
    report = await run(path)
    after = await snapshot(db)
    lines = data.count(b"\n") + 1
    if report.errors:
        check_errors(report.errors, lines)
        assert after == before, "an import with errors changed the database"
        assert report.summary().startswith(("名单有", "目标文件有", "任务文件有"))
    elif report.dry_run:
        assert after == before, "a dry run changed the database"


@budget(100)
@given(f=table_file(("userid", "name", "department", "manager_userid", "roles"), ROSTER_VALUES), dry=st.booleans())
async def test_roster_import_is_all_or_nothing(company: Database, tmp_path: Path, f: tuple[str, bytes], dry: bool) -> None:
    await _import_case(company, tmp_path, "import.roster", *f,
                       lambda p: import_roster(company, "acme", p, dry_run=dry))


@budget(100)
@given(f=table_file(("code", "title", "parent_code", "department", "weight", "period"), GOAL_VALUES),
       dry=st.booleans(), reason=st.sampled_from(["其他", "市场", "其它"]))
async def test_goal_import_is_all_or_nothing(company: Database, tmp_path: Path, f: tuple[str, bytes], dry: bool,
                                            reason: str) -> None:
    await _import_case(company, tmp_path, "import.goals", *f,
                       lambda p: import_goals(company, "acme", p, now=NOW, dry_run=dry, reason=reason))


@budget(100)
@given(f=table_file(("project", "project_name", "pmo", "code", "title", "owner", "collaborators", "due",
                     "deliverable"), TASK_VALUES), dry=st.booleans())
async def test_task_import_is_all_or_nothing(company: Database, tmp_path: Path, f: tuple[str, bytes], dry: bool) -> None:
    await _import_case(company, tmp_path, "import.tasks", *f,
                       lambda p: import_tasks(company, "acme", p, now=NOW, dry_run=dry))

# -- configuration ---------------------------------------------------------------------------------------

_WECOM = {"corp_id": "wwcorp", "agent_id": 1000002, "secret": "s" * 12, "token": "t" * 12,
          "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
_DINGTALK = {"client_id": "dingid", "client_secret": "d" * 12, "robot_code": "dingid", "mode": "http"}
BASE_CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "port": 8080, "max_body_bytes": 65536, "data_dir": "var", "log_format": "json"},
    "database": {"url": "sqlite+aiosqlite:///var/x.db"},
    "console": {"enabled": True, "token": "console-token-1"},
    "tenants": [
        {"key": "acme", "name": "示例", "timezone": "Asia/Shanghai", "morning_prompt_at": "09:30",
         "extra_holidays": [date(2026, 12, 31)], "feedback": {"tags": [{"name": "主动补位", "polarity": "认可"}]},
         "review_periods": [{"period": "2026Q4", "opens": date(2027, 1, 4)}], "wecom": dict(_WECOM)},
        {"key": "beta", "name": "B", "locale": "en", "tasks": {"escalate_after_hours": 2.5}, "dingtalk": dict(_DINGTALK)},
    ],
}

toml_scalars = st.one_of(
    st.text(max_size=20), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True), st.booleans(),
    st.dates(), st.times(), st.datetimes(), st.sampled_from(["${DX_FUZZ_UNSET}", "09:30", "25:99", "Mars/Olympus",
                                                              "Asia", "../etc/passwd", "", "http", "stream"]))
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
_KEYS = sorted({k for d in (BASE_CONFIG["server"], BASE_CONFIG["tenants"][0], BASE_CONFIG["tenants"][1], _WECOM,
                            _DINGTALK) for k in d} | {"server", "database", "console", "tenants", "url", "enabled"})


def _paths(node: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [where] if where else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, where + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, where + (i,))
    return out


def _dotted(path: tuple[Any, ...]) -> str:
    """The path as messages write it: bare keys as they are, any other key JSON-quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = str(part) if re.fullmatch(r"[A-Za-z0-9_-]+", str(part)) else json.dumps(str(part))
            out += ("." if out else "") + key
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def check_config_error(exc: ConfigError, data: Any) -> None:
    """Each line names a key: its path, or the path of the table a missing key belongs in."""
    # One line per problem; split only before the next problem, as a key may hold any character.
    lines = re.split(r"\n(?=config error at )", str(exc))
    known = {_dotted(p) for p in _paths(data)}
    for line in lines:
        assert line.startswith("config error at "), line
        rest = line[len("config error at "):]
        if rest.startswith("(top level): "):
            # the whole file (e.g. two tenants with one key), or a key that renders as nothing
            assert "appears twice" in rest or any(p == "" or "." in p and p.endswith(".") for p in known) \
                or "" in _flat_keys(data), line
            continue
        named = [p for p in known | {""} if rest.startswith(p) and rest[len(p):len(p) + 1] in (":", ".", "[")]
        assert named, line


def _flat_keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(map(str, node)) | {k for v in node.values() for k in _flat_keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _flat_keys(v)}
    return set()


@budget(400)
@given(data=st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), toml_values, max_size=5))
def test_parse_config_answers_config_or_named_error(data: dict[str, Any]) -> None:
    tried("config.parse_config.random")
    os.environ.pop("DX_FUZZ_UNSET", None)
    try:
        cfg = parse_config(data)
    except ConfigError as exc:
        check_config_error(exc, data)
    else:
        assert isinstance(cfg, Config)


@st.composite
def mutated_config(draw: st.DrawFn) -> tuple[dict[str, Any], str, tuple[Any, ...]]:
    data = json.loads(json.dumps(BASE_CONFIG, default=str))
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(["delete", "retype", "unknown", "env"]))
    parent = _get(data, path[:-1])
    if op == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif op == "unknown":
        target = _get(data, path) if isinstance(_get(data, path), dict) else parent
        if not isinstance(target, dict):
            op = "retype"
        else:
            where = path if target is _get(data, path) else path[:-1]
            target[draw(st.sampled_from(["colour", "secrets", "tokn", "port_"]))] = 1
            return data, op, where
    elif op == "env":
        parent[path[-1]] = "${DX_FUZZ_UNSET}"
        return data, op, path
    if op in ("retype", "delete"):
        parent[path[-1]] = draw(toml_values)
        op = "retype"
    return data, op, path


@budget(500)
@given(case=mutated_config())
def test_a_broken_config_names_the_key(case: tuple[dict[str, Any], str, tuple[Any, ...]]) -> None:
    tried("config.parse_config.mutated")
    os.environ.pop("DX_FUZZ_UNSET", None)
    data, op, path = case
    try:
        cfg = parse_config(data)
    except ConfigError as exc:
        check_config_error(exc, data)
        if op == "unknown":
            assert "unknown key" in str(exc)
        if op in ("env", "unknown"):
            assert _dotted(path) in str(exc), (str(exc), path)
    else:
        assert isinstance(cfg, Config) and op == "retype"


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(v), repr(v))
    if isinstance(v, (date, time, datetime)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v), ensure_ascii=False)


def to_toml(data: dict[str, Any]) -> str:
    return "\n".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in data.items()) + "\n"


@budget(400)
@given(source=st.one_of(
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), toml_values, max_size=4).map(
        lambda d: to_toml(d).encode("utf-8")),
    mutated_config().map(lambda c: to_toml(c[0]).encode("utf-8")),
    st.tuples(mutated_config(), st.integers(0, 400)).map(lambda c: to_toml(c[0][0]).encode("utf-8")[:c[1]]),
))
def test_load_config_answers_config_or_config_error(tmp_path: Path, source: bytes) -> None:
    tried("config.load_config")
    os.environ.pop("DX_FUZZ_UNSET", None)
    path = tmp_path / "config.toml"
    path.write_bytes(source)
    os.chmod(path, 0o600)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(("config error at ", f"config file {path} is not valid TOML")), str(exc)
    else:
        assert isinstance(cfg, Config)


def test_the_base_config_is_valid() -> None:
    """The mutations above start from a config that loads, so each error comes from the mutation."""
    cfg = parse_config(json.loads(json.dumps(BASE_CONFIG, default=str)))
    assert [t.platform for t in cfg.tenants] == ["wecom", "dingtalk"]
