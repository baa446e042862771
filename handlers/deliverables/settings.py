"""[tenants.deliverables]: the field rules of each deliverable template and the caps of the check.

    [tenants.deliverables]
    templates = { "直播系统压测报告" = "并发量 ≥ 5000 绿 / ≥ 3000 黄; 错误率 ≤ 0.1% 绿; CPU峰值 截图 必填; 移动端并发 必填" }
    synonyms = { "移动端并发" = ["移动端并发数", "App并发"] }

A task whose deliverable requirement names a template (`交付:直播系统压测报告：CPU峰值截图…`)
is checked against its rules. A rule line that cannot be read fails at start-up with its dotted
key (`tenants[0].deliverables.templates`) and the template's name.
"""
from __future__ import annotations

from dataclasses import replace
from functools import cached_property

from pydantic import Field, field_validator, model_validator

from bot.core.config import Section
from handlers.deliverables.extract import Limits
from handlers.deliverables.rules import RuleError, TemplateRules, parse_rules


class DeliverableSettings(Section, name="deliverables"):
    """[tenants.deliverables]"""

    templates: dict[str, str] = {}  # template name → its field rules
    synonyms: dict[str, list[str]] = {}  # a field's label → more labels reports use for it
    min_ocr_confidence: float = Field(0.85, gt=0, le=1)  # below: yellow 待确认 and the owner is asked
    max_file_mb: float = Field(20.0, gt=0, le=200)
    max_pages: int = Field(30, ge=1, le=1000)
    max_megapixels: float = Field(25.0, gt=0, le=400)
    ocr_timeout_seconds: float = Field(60.0, gt=0, le=600)
    # The upload link on the task card: the address people's browsers reach this server at
    # (`https://dx.example.com`; unset: no link), the key its links are signed with (`${ENV}`, ≥ 32
    # characters; each tenant its own) and how long a link stays good.
    upload_url: str = ""
    upload_secret: str = Field("", repr=False)
    upload_hours: int = Field(72, ge=1, le=24 * 14)

    @field_validator("upload_url")
    @classmethod
    def _address(cls, v: str) -> str:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http://), e.g. https://dx.example.com")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _signed(self) -> "DeliverableSettings":
        if self.upload_url and len(self.upload_secret) < 32:
            raise ValueError("upload_secret (at least 32 characters, e.g. \"${DX_UPLOAD_SECRET}\") "
                             "is required when upload_url is set")
        return self

    @field_validator("templates")
    @classmethod
    def _readable(cls, v: dict[str, str]) -> dict[str, str]:
        for name, text in v.items():
            if not name.strip():
                raise ValueError("a template needs a name")
            try:
                parse_rules(name, text)
            except RuleError as exc:
                raise ValueError(str(exc)) from None
        return v

    @cached_property
    def rules(self) -> dict[str, TemplateRules]:
        out = {}
        for name, text in self.templates.items():
            parsed = parse_rules(name.strip(), text)
            fields = tuple(replace(f, synonyms=f.synonyms + tuple(self.synonyms.get(f.label, ())))
                           for f in parsed.fields)
            out[parsed.name] = TemplateRules(parsed.name, fields)
        return out

    def limits(self) -> Limits:
        return Limits(max_bytes=int(self.max_file_mb * 1024 * 1024), max_pages=self.max_pages,
                      max_pixels=int(self.max_megapixels * 1_000_000))
