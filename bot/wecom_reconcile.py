"""The nightly sweep for WeCom 审批 callbacks that never arrived.

WeCom calls back once per status change and retries a few times; a callback lost while the bot was
down is gone. Each night `oa/getapprovalinfo` lists the approvals submitted in the window (template by
template, 100 a page, the window cut into spans of at most 31 days — developer.work.weixin.qq.com/
document/path/91816, fields as the wechat_sdk and Mud.Wechat.Work clients read them), and
`oa/getapprovaldetail` (document/path/91983) gives each one's present state, which is ingested through
the same contract as a callback.

The detail carries no StatuChangeEvent, so a reconciled event's id has an empty change
("SpNo:SpStatus::latest SpTime"). An approval whose status and latest approver time are stored already
(from its callback) is skipped, and a callback arriving after the sweep stored its state is skipped too
(`stored_by_sweep`): either way one fact is one event.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.config import TenantConfig
from bot.wecom_approval import SOURCE, incoming
from handlers.trace_rules import TraceSettings
from store import external_events as ext
from store.db import Database

log = logging.getLogger(__name__)

SPAN = timedelta(days=31)  # oa/getapprovalinfo: starttime and endtime at most 31 days apart
PAGE = 100  # oa/getapprovalinfo: size at most 100


class ApprovalApi(Protocol):
    async def approval_numbers(self, start: int, end: int, *, cursor: str = "", size: int = 100,
                               template_id: str = "") -> tuple[list[str], str]: ...

    async def approval_detail(self, sp_no: str) -> dict[str, Any]: ...


@dataclass
class SweepReport:
    listed: int = 0
    added: int = 0
    known: int = 0
    added_ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"审批单 {self.listed} 张，新补录 {self.added} 条，已有 {self.known} 条 / "
                f"{self.listed} approvals listed, {self.added} missed changes stored, {self.known} already known")


def approval_templates(tenant: TenantConfig) -> list[str]:
    """The templates to sweep: those the rules name; [""] (every template) when a rule names none."""
    rules = [r for r in TraceSettings.of(tenant).rules if r.source == SOURCE]
    if any(not r.code for r in rules):
        return [""]
    return sorted({r.code for r in rules})


def info_of(detail: dict[str, Any]) -> dict[str, Any]:
    """An oa/getapprovaldetail `info` in the shape bot/wecom_approval.parse_approval_change gives."""
    def num(v: Any) -> int:
        try:
            return int(v or 0)
        except (TypeError, ValueError):
            return 0

    records = [{"sp_status": num(r.get("sp_status")),
                "details": [{"userid": str((d.get("approver") or {}).get("userid", "")),
                             "sp_status": num(d.get("sp_status")), "sptime": num(d.get("sptime"))}
                            for d in r.get("details") or []]}
               for r in detail.get("sp_record") or []]
    return {"sp_no": str(detail.get("sp_no", "")), "sp_name": str(detail.get("sp_name", "")),
            "sp_status": num(detail.get("sp_status")), "template_id": str(detail.get("template_id", "")),
            "apply_time": num(detail.get("apply_time")),
            "applyer": str((detail.get("applyer") or {}).get("userid", "")), "sp_record": records, "change": ""}


def _state(external_id: str) -> tuple[str, str]:
    """(status, latest time) of a stored wecom_approval id SpNo:SpStatus:change:latest."""
    parts = external_id.split(":")
    return (parts[1], parts[-1]) if len(parts) >= 4 else ("", "")


async def stored_by_sweep(db: Database, tenant: str, info: dict[str, Any]) -> bool:
    """A callback whose state the sweep stored before it arrived."""
    item = incoming(info, None)
    status, latest = _state(item.external_id)
    return any(_state(i) == (status, latest) and i.split(":")[2] == ""
               for i in await ext.ids_like(db, tenant, SOURCE, f"{info['sp_no']}:{status}:"))


async def sweep(db: Database, tenant: str, api: ApprovalApi, templates: list[str], start: datetime,
                end: datetime, now: datetime) -> SweepReport:
    """Ingest every approval of `templates` ([""]: all) submitted in [start, end] whose state is not stored."""
    report = SweepReport()
    seen: set[str] = set()
    for template in templates:
        lo = start
        while lo < end:
            hi = min(lo + SPAN, end)
            cursor = ""
            while True:
                numbers, cursor = await api.approval_numbers(int(lo.timestamp()), int(hi.timestamp()), cursor=cursor,
                                                             size=PAGE, template_id=template)
                for sp_no in numbers:
                    if sp_no in seen:
                        continue
                    seen.add(sp_no)
                    report.listed += 1
                    await _one(db, tenant, api, sp_no, now, report)
                if not cursor:
                    break
            lo = hi
    return report


async def _one(db: Database, tenant: str, api: ApprovalApi, sp_no: str, now: datetime, report: SweepReport) -> None:
    detail = await api.approval_detail(sp_no)
    info = info_of(detail)
    if not info["sp_no"]:
        return
    item = incoming(info, detail)
    status, latest = _state(item.external_id)
    if any(_state(i) == (status, latest) for i in await ext.ids_like(db, tenant, SOURCE, f"{sp_no}:{status}:")):
        report.known += 1  # its callback came: nothing to add
        return
    if await ext.ingest(db, tenant, item, now):
        report.added += 1
        report.added_ids.append(item.external_id)
        log.info("WeCom approval %s of %s: status %s stored by the nightly sweep", sp_no, tenant, status)
    else:
        report.known += 1
