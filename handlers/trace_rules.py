"""Mapping rules and webhook secrets of 自动留痕: the `[tenants.trace]` section.

    [[tenants.trace.rules]]
    name = "合同回款"          # shown in 留痕 and listed by `dongxian events rules`
    source = "wecom_approval"  # wecom_approval | dingtalk_oa | a webhook or file source name
    code = "3TkaH5KF…"         # WeCom TemplateId / DingTalk processCode / the sender's type code ("" any)
    status = ["approved"]      # normalised statuses that apply ([] any)
    person = "applicant"       # applicant | approvers | field (person_field names the form field)
    effect = "receivable"      # receivable (回款跟踪) | response (风险响应及时率) | trace (留痕 only)
                               # | deliverable (the form's 附件 go to the deliverable check of a task)
"""
from __future__ import annotations

from datetime import time
from typing import Any, Literal

from pydantic import Field, model_validator

from bot.core.config import Section, Strict

Effect = Literal["receivable", "response", "trace", "deliverable"]
# The statuses every source's own codes are normalised to (handlers/trace.py, bot/*).
STATUSES = ("pending", "approved", "rejected", "revoked", "deleted", "paid", "started", "terminated",
            "task_started", "task_finished", "task_cancelled")


class TraceRule(Strict):
    name: str = Field(min_length=1, max_length=64)
    source: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    code: str = ""
    type: str = ""
    status: list[str] = []
    person: Literal["applicant", "approvers", "field"] = "applicant"
    person_field: str = ""
    effect: Effect
    # 回款跟踪: the form labels holding the contract's facts, and the goal it counts toward
    amount_field: str = "合同金额"
    customer_field: str = "客户名称"
    due_field: str = "回款日期"
    goal_field: str = "目标编码"
    contract_field: str = "合同编号"  # what people name the contract by (回款 HT-2026-001 已到账 ¥50000)
    goal_code: str = ""
    # deliverable: the task whose check the attached files go to (its code); "" — the applicant's one
    # open task with a checked template, if they have exactly one
    task: str = ""
    # 风险响应及时率: the answer is on time within this many working hours of the assignment
    sla_hours: float = Field(8.0, gt=0, le=24 * 30)

    @model_validator(mode="after")
    def _check(self) -> "TraceRule":
        unknown = [s for s in self.status if s not in STATUSES]
        if unknown:
            raise ValueError(f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}")
        if self.person == "field" and not self.person_field:
            raise ValueError("person = \"field\" needs person_field")
        return self

    def matches(self, source: str, code: str, type_: str, status: str) -> bool:
        return (self.source == source and (not self.code or self.code == code)
                and (not self.type or self.type == type_) and (not self.status or status in self.status))


class HookSource(Strict):
    """One webhook sender at /hooks/{tenant}/{source}."""

    # standard: Standard Webhooks signatures (webhook-id / webhook-timestamp / webhook-signature);
    # static: a fixed key in a header, for tools that can send nothing else (宜搭 HTTP connector)
    mode: Literal["standard", "static"] = "standard"
    secret: str = Field(min_length=16)  # standard: "whsec_" + base64 of the key, or the raw key
    header: str = "X-Dongxian-Key"  # static mode: the header carrying the key
    tolerance_seconds: int = Field(300, ge=30, le=3600)


class TraceSettings(Section, name="trace"):
    """[tenants.trace]"""

    rules: list[TraceRule] = []
    hooks: dict[str, HookSource] = {}
    # 回款跟踪: the owner is reminded this many working days before the due date, the manager when overdue
    remind_days_before: int = Field(3, ge=0, le=60)
    remind_at: time = time(9, 30)
    # the nightly oa/getapprovalinfo sweep for callbacks WeCom never delivered; it lists approvals by
    # their submission time, so the window must reach back to contracts submitted weeks before they are
    # decided — 31 days, the most one request spans
    reconcile_at: time = time(2, 0)
    reconcile_days: int = Field(31, ge=1, le=31)

    def rules_for(self, source: str, code: str, type_: str, status: str) -> list[TraceRule]:
        return [r for r in self.rules if r.matches(source, code, type_, status)]

    def codes(self, source: str) -> list[str]:
        return sorted({r.code for r in self.rules if r.source == source and r.code})


def describe(rule: TraceRule) -> dict[str, Any]:
    return rule.model_dump()
