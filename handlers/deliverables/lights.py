"""Readings → a light per field and one for the deliverable (the worst field).

    green  meets the green threshold (or, without thresholds, is there)
    yellow meets only the yellow threshold · 缺项: a required field is missing ·
           待确认: an OCR reading below the confidence floor, or one that would be red
           (OCR alone never makes a light red: the owner is asked first)
    red    meets neither threshold, read from a machine-readable or text file or confirmed
A file that could not be read at all is yellow with its reason.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from handlers.deliverables.extract import Extraction, Reading
from handlers.deliverables.rules import FieldRule, TemplateRules

Light = Literal["green", "yellow", "red", "none"]
LIGHTS: tuple[Light, ...] = ("green", "yellow", "red", "none")
RANK: dict[str, int] = {"none": 0, "green": 1, "yellow": 2, "red": 3}
MISSING, UNSURE, UNREAD = "缺项", "待确认", "无法读取"


@dataclass
class FieldResult:
    label: str
    light: Light
    value: float | None = None
    raw: str = ""
    unit: str = ""
    method: str = ""
    confidence: float = 1.0
    snippet: str = ""
    note: str = ""  # 缺项 | 待确认 | the threshold it missed
    confirm: bool = False  # the owner is asked whether the reading is right

    def shown(self) -> str:
        return self.raw or (f"{self.value:g}{self.unit}" if self.value is not None else "—")


@dataclass
class Verdict:
    light: Light
    fields: list[FieldResult] = field(default_factory=list)
    reason: str = ""  # 缺项 / 待确认 / 无法读取 / a threshold, for the one-line summary

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.fields]


def as_light(stored: str) -> Light:
    """A light read back from a stored check; "" (no light yet) and anything unknown are none."""
    return next((light for light in LIGHTS if light == stored), "none")


def _threshold_light(rule: FieldRule, value: float) -> tuple[Light, str]:
    if rule.green is None:
        return "green", ""
    if rule.green.met(value):
        return "green", ""
    if rule.yellow is not None and rule.yellow.met(value):
        return "yellow", rule.green.text(rule.unit)
    return "red", (rule.yellow or rule.green).text(rule.unit)


def judge_field(rule: FieldRule, reading: Reading | None, min_confidence: float) -> FieldResult:
    if reading is None:
        return FieldResult(rule.label, "yellow" if rule.required else "none", unit=rule.unit,
                           note=MISSING if rule.required else "")
    light, note = _threshold_light(rule, reading.value)
    res = FieldResult(rule.label, light, reading.value, reading.raw, rule.unit, reading.method,
                      round(reading.confidence, 3), reading.snippet, note)
    if reading.method == "ocr":
        if reading.confidence < min_confidence or light == "red":
            res.light, res.note, res.confirm = "yellow", UNSURE, True
    return res


def judge(rules: TemplateRules, extraction: Extraction, min_confidence: float) -> Verdict:
    if extraction.problem:
        fields = [FieldResult(r.label, "yellow" if r.required else "none", unit=r.unit,
                              note=MISSING if r.required else "") for r in rules.fields]
        return Verdict("yellow", fields, UNREAD)
    fields = [judge_field(r, extraction.readings.get(r.label), min_confidence) for r in rules.fields]
    return verdict_of(fields)


def verdict_of(fields: list[FieldResult]) -> Verdict:
    worst: Light = "green"
    for f in fields:
        if RANK[f.light] > RANK[worst]:
            worst = f.light
    notes = [f.note for f in fields if f.light == worst and f.note]
    reason = MISSING if MISSING in notes else UNSURE if UNSURE in notes else (notes[0] if notes else "")
    return Verdict(worst, fields, reason)


def confirm(fields: list[FieldResult], label: str, rules: TemplateRules, *, value: float | None = None) -> list[FieldResult]:
    """The owner's answer about one OCR reading: right (value None) or the right value; it now counts as read."""
    rule = next(r for r in rules.fields if r.label == label)
    out = []
    for f in fields:
        if f.label == label:
            v = f.value if value is None else value
            light, note = _threshold_light(rule, v if v is not None else 0.0)
            raw = f.raw if value is None else f"{value:g}{rule.unit}"
            f = FieldResult(f.label, light, v, raw, rule.unit, "ocr+confirmed" if value is None else "typed",
                            1.0, f.snippet, note, False)
        out.append(f)
    return out
