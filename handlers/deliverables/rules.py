"""Field rules of a deliverable template, e.g.

    直播系统压测报告: 并发量 ≥ 5000 绿 / ≥ 3000 黄; 错误率 ≤ 0.1% 绿; CPU峰值 截图 必填; 移动端并发 必填

One field per `;`: its label, optional synonyms in brackets (`并发量(并发数|VU)`), up to two
thresholds (`OP VALUE[UNIT] 绿` and `OP VALUE[UNIT] 黄`; what meets neither is red), `必填`
(missing → yellow 缺项), `截图` (the value is expected on a screenshot) and `pattern=REGEX` (no spaces,
one group: the value) for a figure that labels alone cannot find. A rule line that cannot be read
fails at start-up with its template's name.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

Op = Literal[">=", ">", "<=", "<", "="]
_OPS: dict[str, Op] = {"≥": ">=", ">=": ">=", "＞=": ">=", "＞": ">", ">": ">", "≤": "<=", "<=": "<=", "＜=": "<=",
                       "＜": "<", "<": "<", "=": "=", "＝": "="}
_COLOR: dict[str, Literal["green", "yellow"]] = {"绿": "green", "绿灯": "green", "green": "green", "黄": "yellow", "黄灯": "yellow", "yellow": "yellow"}

# Units as they are written, and the unit they are counted in with the factor.
UNITS: dict[str, tuple[str, float]] = {
    "%": ("%", 1.0), "％": ("%", 1.0),
    "ms": ("ms", 1.0), "毫秒": ("ms", 1.0), "s": ("ms", 1000.0), "秒": ("ms", 1000.0), "sec": ("ms", 1000.0),
    "mb": ("MB", 1.0), "gb": ("MB", 1024.0), "kb": ("MB", 1 / 1024),
    "qps": ("/s", 1.0), "tps": ("/s", 1.0), "rps": ("/s", 1.0), "/s": ("/s", 1.0), "次/秒": ("/s", 1.0),
    "个": ("", 1.0), "人": ("", 1.0), "次": ("", 1.0), "万": ("", 10000.0), "k": ("", 1000.0),
}

# Labels reports use for the same figure; a template's own synonyms come on top.
BUILTIN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "并发量": ("并发数", "并发用户数", "最大并发", "并发用户", "并发", "concurrency", "concurrent users", "users",
            "user count", "vus", "vus_max", "threads", "线程数"),
    "错误率": ("失败率", "错误比例", "异常率", "error rate", "error %", "error%", "errors", "fail ratio",
            "failure rate", "errorpct", "http_req_failed"),
    "平均响应时间": ("平均响应", "平均耗时", "响应时间", "average response time", "avg response time", "mean response time",
               "meanrestime", "avg", "rt"),
    "P95响应时间": ("p95", "95%", "95% line", "95th pct", "p(95)", "pct2restime"),
    "P99响应时间": ("p99", "99%", "99% line", "99th pct", "p(99)", "pct3restime"),
    "吞吐量": ("tps", "qps", "rps", "requests/s", "throughput", "每秒请求数"),
    "CPU峰值": ("cpu峰值", "cpu最高", "cpu 峰值", "最大cpu", "cpu peak", "peak cpu", "cpu max", "cpu使用率峰值"),
    "内存峰值": ("内存最高", "最大内存", "memory peak", "peak memory", "mem peak"),
    "请求总数": ("总请求数", "请求数", "request count", "requests", "samplecount", "http_reqs"),
}


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Threshold:
    op: Op
    value: float  # in the field's unit
    color: Literal["green", "yellow"]

    def met(self, v: float) -> bool:
        return {">=": v >= self.value, ">": v > self.value, "<=": v <= self.value, "<": v < self.value,
                "=": abs(v - self.value) < 1e-9}[self.op]

    def text(self, unit: str) -> str:
        sign = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "=": "="}[self.op]
        return f"{sign} {self.value:g}{unit}"


@dataclass(frozen=True)
class FieldRule:
    label: str
    synonyms: tuple[str, ...] = ()
    unit: str = ""  # the canonical unit ("%", "ms", "MB", "/s" or "")
    green: Threshold | None = None
    yellow: Threshold | None = None
    required: bool = False
    screenshot: bool = False
    pattern: str = ""

    def names(self) -> tuple[str, ...]:
        """Every label this field is known by, folded for matching, longest first."""
        out = {fold_label(self.label), *(fold_label(s) for s in self.synonyms),
               *(fold_label(s) for s in BUILTIN_SYNONYMS.get(self.label, ()))}
        return tuple(sorted((n for n in out if n), key=lambda n: (-len(n), n)))


@dataclass(frozen=True)
class TemplateRules:
    name: str
    fields: tuple[FieldRule, ...] = field(default_factory=tuple)


def fold_label(s: str) -> str:
    """Labels compare without case, width, spaces or punctuation around them: `CPU 峰值：` = `cpu峰值`."""
    s = unicodedata.normalize("NFKC", s).casefold()
    return re.sub(r"[\s:：_\-·（）()\[\]【】]+", "", s)


_NUM = r"[-+]?\d+(?:[.,]\d+)?"
_THRESHOLD = re.compile(
    rf"(≥|>=|＞=|＞|>|≤|<=|＜=|＜|<|=|＝)\s*({_NUM})\s*(%|％|ms|毫秒|s|秒|mb|gb|kb|qps|tps|rps|/s|万|k|个|人|次)?\s*"
    r"(绿灯|绿|黄灯|黄|green|yellow)", re.I)
_SYNS = re.compile(r"^([^(（\s]+)\s*[(（]([^)）]*)[)）]")


def unit_of(raw: str | None) -> tuple[str, float]:
    if not raw:
        return "", 1.0
    return UNITS.get(raw.casefold(), (raw, 1.0))


def parse_field(text: str, template: str) -> FieldRule:
    spec = " ".join(text.split())
    pattern = ""
    m = re.search(r"pattern\s*=\s*(\S+)", spec)
    if m:
        pattern = m.group(1).strip()
        try:
            if re.compile(pattern).groups != 1:
                raise RuleError(f"{template}: pattern of '{spec}' needs exactly one group (the value)")
        except re.error as exc:
            raise RuleError(f"{template}: pattern of '{spec}' is not a regular expression: {exc}") from None
        spec = (spec[:m.start()] + " " + spec[m.end():]).strip()
    synonyms: tuple[str, ...] = ()
    sm = _SYNS.match(spec)
    if sm:
        label = sm.group(1)
        synonyms = tuple(s.strip() for s in re.split(r"[|｜,，、/]", sm.group(2)) if s.strip())
        rest = spec[sm.end():]
    else:
        head = re.match(r"^(\S+?)(?=\s|≥|>|≤|<|=|＞|＜|＝|$)", spec)
        if head is None:
            raise RuleError(f"{template}: a field without a label in '{text}'")
        label, rest = head.group(1), spec[head.end():]
    green = yellow = None
    unit = ""
    for tm in _THRESHOLD.finditer(rest):
        u, factor = unit_of(tm.group(3))
        if unit and u and u != unit:
            raise RuleError(f"{template}: {label} mixes units {unit} and {u}")
        unit = unit or u
        th = Threshold(_OPS[tm.group(1)], float(tm.group(2).replace(",", ".")) * factor, _COLOR[tm.group(4).casefold()])
        if th.color == "green":
            if green is not None:
                raise RuleError(f"{template}: {label} has two green thresholds")
            green = th
        else:
            if yellow is not None:
                raise RuleError(f"{template}: {label} has two yellow thresholds")
            yellow = th
    leftover = _THRESHOLD.sub(" ", rest)
    flags = set(re.split(r"[\s/／,，]+", leftover.strip())) - {""}
    unknown = flags - {"必填", "必须", "required", "截图", "screenshot", "选填", "optional"}
    if unknown:
        raise RuleError(f"{template}: cannot read '{' '.join(sorted(unknown))}' in the rule of {label} "
                        "(write e.g. 并发量 ≥ 5000 绿 / ≥ 3000 黄 必填)")
    if yellow is not None and green is None:
        raise RuleError(f"{template}: {label} has a yellow threshold but no green one")
    return FieldRule(label=label, synonyms=synonyms, unit=unit, green=green, yellow=yellow,
                     required=bool(flags & {"必填", "必须", "required"}),
                     screenshot=bool(flags & {"截图", "screenshot"}), pattern=pattern)


def parse_rules(name: str, text: str) -> TemplateRules:
    """One template's rule line (without the `NAME:` head)."""
    parts = [p.strip() for p in re.split(r"[;；\n]", text) if p.strip()]
    if not parts:
        raise RuleError(f"{name}: no field rules")
    fields = tuple(parse_field(p, name) for p in parts)
    labels = [fold_label(f.label) for f in fields]
    if len(set(labels)) != len(labels):
        raise RuleError(f"{name}: a field is named twice")
    return TemplateRules(name=name, fields=fields)


def parse_rule_line(line: str) -> TemplateRules:
    """`直播系统压测报告: 并发量 ≥ 5000 绿 / ≥ 3000 黄; …`."""
    m = re.match(r"^([^:：]+)[:：](.*)$", line, re.S)
    if m is None:
        raise RuleError(f"'{line[:40]}': write the template name, a colon, then its field rules")
    return parse_rules(m.group(1).strip(), m.group(2))


def template_for(deliverable_template: str, templates: dict[str, TemplateRules]) -> TemplateRules | None:
    """The rules whose template name the task's deliverable requirement names (the longest such name)."""
    text = fold_label(deliverable_template)
    found = [t for name, t in templates.items() if fold_label(name) and fold_label(name) in text]
    return max(found, key=lambda t: len(t.name)) if found else None
