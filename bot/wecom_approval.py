"""WeCom 审批 → external events.

The callback: `sys_approval_change` (审批申请状态变化回调通知, developer.work.weixin.qq.com/document/path/91815
and 96508): <ApprovalInfo> with SpNo, SpName, SpStatus (1 审批中 2 已通过 3 已驳回 4 已撤销 6 通过后撤销
7 已删除 10 已支付), TemplateId, ApplyTime, Applyer/UserId, one <SpRecord> per node with its <Details>
(Approver/UserId, SpStatus, SpTime — 0 until that approver acts) and StatuChangeEvent. wechatpy has no
parser for it, so it is read here with defusedxml (no DTD, no entities), like the card events.

The form values come from `oa/getapprovaldetail` (document/path/91983): POST {"sp_no": "…"} →
info.apply_data.contents[] of {control, id, title:[{text, lang}], value:{text | new_number | new_money |
date:{type, s_timestamp} | selector:{options:[{value:[{text}]}]} …}}.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from xml.etree.ElementTree import ParseError

from bot.wecom_crypto import MAX_BODY_BYTES, CallbackRejected
from store.external_events import Incoming

SOURCE = "wecom_approval"
STATUS = {1: "pending", 2: "approved", 3: "rejected", 4: "revoked", 6: "revoked", 7: "deleted", 10: "paid"}


def parse_approval_change(xml: str) -> dict[str, Any]:
    """The ApprovalInfo of a decrypted sys_approval_change callback, as plain values."""
    raw = xml.encode("utf-8")
    if len(raw) > MAX_BODY_BYTES:
        raise CallbackRejected(413, "XML document too large")
    try:
        root = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError) as exc:
        raise CallbackRejected(400, f"malformed XML ({type(exc).__name__})") from None
    info = root.find("ApprovalInfo")
    if info is None:
        raise CallbackRejected(400, "sys_approval_change without ApprovalInfo")

    def text(node: Any, tag: str) -> str:
        return (node.findtext(tag) or "").strip()

    def number(node: Any, tag: str) -> int:
        v = text(node, tag)
        if not v.lstrip("-").isdigit():
            raise CallbackRejected(400, f"{tag} is not a number")
        return int(v)

    sp_no = text(info, "SpNo") or text(info, "SpNoStr")
    if not sp_no:
        raise CallbackRejected(400, "ApprovalInfo without SpNo")
    records = []
    for rec in info.findall("SpRecord"):
        details = [{"userid": text(d, "Approver/UserId"), "sp_status": number(d, "SpStatus"),
                    "sptime": number(d, "SpTime")} for d in rec.findall("Details")]
        records.append({"sp_status": number(rec, "SpStatus"), "details": details})
    return {"sp_no": sp_no, "sp_name": text(info, "SpName"), "sp_status": number(info, "SpStatus"),
            "template_id": text(info, "TemplateId"), "apply_time": number(info, "ApplyTime"),
            "applyer": text(info, "Applyer/UserId"), "sp_record": records,
            "change": text(info, "StatuChangeEvent")}


def _value(content: dict[str, Any]) -> Any:
    v = content.get("value") or {}
    control = content.get("control")
    if control == "Money":
        return v.get("new_money", "")
    if control == "Number":
        return v.get("new_number", "")
    if control == "Date":
        return (v.get("date") or {}).get("s_timestamp", "")
    if control == "Selector":
        opts = (v.get("selector") or {}).get("options") or []
        return "、".join(t.get("text", "") for o in opts for t in (o.get("value") or [])[:1])
    if control == "Contact":
        return "、".join(m.get("userid", "") for m in v.get("members") or [])
    return v.get("text", "")


def form_fields(detail: dict[str, Any]) -> dict[str, Any]:
    """Form label (zh_CN) → value of an oa/getapprovaldetail `info`."""
    out: dict[str, Any] = {}
    for c in (detail.get("apply_data") or {}).get("contents") or []:
        titles = c.get("title") or []
        label = next((t.get("text", "") for t in titles if t.get("lang") == "zh_CN"), "") \
            or (titles[0].get("text", "") if titles else "")
        if label:
            out[label] = _value(c)
    return out


def approval_files(detail: dict[str, Any]) -> list[dict[str, str]]:
    """The files of the form's File (附件) controls: `value.files[].file_id` (and `file_name` where
    given) — the field names of binarywang/WxJava `ContentValue.File` (weixin-java-cp, bean/oa/applydata).
    A file id is fetched with cgi-bin/media/get like a temporary media id: how WWdoc 91983 is understood,
    with no second source ([?]), so the fake serves only file ids it attached itself."""
    out = []
    for c in (detail.get("apply_data") or {}).get("contents") or []:
        if c.get("control") != "File":
            continue
        for f in (c.get("value") or {}).get("files") or []:
            if isinstance(f, dict) and f.get("file_id"):
                out.append({"file_id": str(f["file_id"]), "file_name": str(f.get("file_name") or "")})
    return out


def incoming(info: dict[str, Any], detail: dict[str, Any] | None) -> Incoming:
    """One status change of one approval as an external event.

    Its id is the number, the status, the change and the latest approver's time: WeCom's
    redelivery of the same change is the same id; the next approver's action is a new one.
    """
    times = [d["sptime"] for r in info["sp_record"] for d in r["details"]]
    latest = max(times + [info["apply_time"]])
    tasks, node_start = [], info["apply_time"]
    for i, rec in enumerate(info["sp_record"]):
        for d in rec["details"]:
            tasks.append({"id": f"{info['sp_no']}:{i}:{d['userid']}", "person": d["userid"],
                          "started_at": _iso(node_start), "finished_at": _iso(d["sptime"]) if d["sptime"] else None})
        acted = [d["sptime"] for d in rec["details"] if d["sptime"]]
        if rec["sp_status"] == 1 or not acted:
            break  # later nodes are not assigned yet
        node_start = max(acted)
    return Incoming(
        source=SOURCE, external_id=f"{info['sp_no']}:{info['sp_status']}:{info['change']}:{latest}",
        type="approval", person=info["applyer"], occurred_at=datetime.fromtimestamp(latest, timezone.utc),
        code=info["template_id"], status=STATUS.get(info["sp_status"], str(info["sp_status"])),
        title=info["sp_name"], link="", fields=form_fields(detail or {}),
        extra={"instance": info["sp_no"], "tasks": tasks, "files": approval_files(detail or {}),
               "approvers": [d["userid"] for r in info["sp_record"] for d in r["details"]]})


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()
