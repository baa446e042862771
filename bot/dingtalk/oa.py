"""DingTalk OA approvals over Stream → external events.

Event frames (type EVENT, subscribed as topic "*"; headers eventId, eventType, eventBornTime,
eventCorpId as the dingtalk-stream SDK reads them) carry the same JSON as the HTTP event callback:
- `bpms_instance_change`: the whole approval — type start | finish | terminate, result agree | refuse
  on finish; processInstanceId, processCode, staffId (the applicant), createTime, finishTime, title, url;
- `bpms_task_change`: one approver's task — type start | finish | cancel, staffId (the approver),
  taskId, processInstanceId, processCode, createTime (assigned), finishTime (answered), result.
Events are deduplicated on eventId (DingTalk redelivers what was not acked).

The frames carry no form values: for a process code a rule names, the adapter reads the instance with
`GET /v1.0/workflow/processInstances` (bot/dingtalk/api.py) before the event is stored and acked, and
`with_detail` adds its form (name → value) and its approver tasks.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from store.external_events import Incoming

SOURCE = "dingtalk_oa"
TOPICS = ("bpms_instance_change", "bpms_task_change")


class InvalidOaEvent(ValueError):
    pass


def _ms(v: Any, what: str) -> datetime:
    if isinstance(v, bool) or not isinstance(v, (int, str)) or not str(v).isdigit():
        raise InvalidOaEvent(f"{what} is not milliseconds")
    return datetime.fromtimestamp(int(v) / 1000, timezone.utc)


def _s(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v:
        raise InvalidOaEvent(f"{key} missing")
    return v


def incoming(event_id: str, event_type: str, data: Any) -> Incoming | None:
    """The external event of one OA frame; None for an event type the bot does not read."""
    if event_type not in TOPICS:
        return None
    if not isinstance(data, dict):
        raise InvalidOaEvent("data is not an object")
    if not event_id:
        raise InvalidOaEvent("no eventId")
    kind = _s(data, "type")
    instance = _s(data, "processInstanceId")
    staff = _s(data, "staffId")
    created = _ms(data.get("createTime"), "createTime")
    finished = _ms(data["finishTime"], "finishTime") if data.get("finishTime") else None
    result = str(data.get("result") or "")
    common = dict(source=SOURCE, external_id=event_id, person=staff, code=str(data.get("processCode") or ""),
                  title=str(data.get("title") or ""), link=str(data.get("url") or ""))
    if event_type == "bpms_task_change":
        task_id = str(data.get("taskId") or "")
        if not task_id:
            raise InvalidOaEvent("taskId missing")
        status = {"start": "task_started", "finish": "task_finished", "cancel": "task_cancelled"}.get(kind)
        if status is None:
            raise InvalidOaEvent(f"unknown task type {kind!r}")
        if status == "task_finished" and finished is None:
            raise InvalidOaEvent("a finished task without finishTime")
        task = {"id": task_id, "person": staff, "started_at": created.isoformat(),
                "finished_at": finished.isoformat() if status == "task_finished" else None}
        return Incoming(type="approval_task", occurred_at=finished or created, status=status,
                        extra={"instance": instance, "tasks": [] if status == "task_cancelled" else [task],
                               "result": result}, **common)  # type: ignore[arg-type]
    status = {"start": "started", "terminate": "terminated"}.get(kind) or (
        {"agree": "approved", "refuse": "rejected"}.get(result, "") if kind == "finish" else "")
    if not status:
        raise InvalidOaEvent(f"unknown instance type {kind!r}/{result!r}")
    return Incoming(type="approval", occurred_at=finished or created, status=status,
                    extra={"instance": instance, "result": result}, **common)  # type: ignore[arg-type]


def with_detail(item: Incoming, result: dict[str, Any]) -> Incoming:
    """The event with its instance's form values (formComponentValues name → value) and approver tasks."""
    fields: dict[str, Any] = {}
    for c in result.get("formComponentValues") or []:
        if isinstance(c, dict) and c.get("name"):
            fields[str(c["name"])] = c.get("value") if c.get("value") is not None else ""
    tasks = [{"id": str(t.get("taskId", "")), "person": str(t.get("userId", "")), "status": str(t.get("status", "")),
              "result": str(t.get("result", "")), "created": str(t.get("createTime", "")),
              "finished": str(t.get("finishTime", "") or "")}
             for t in result.get("tasks") or [] if isinstance(t, dict)]
    item.fields = {**fields, **item.fields}
    item.extra = {**item.extra, "instance_tasks": tasks, "instance_status": str(result.get("status", "")),
                  "approvers": [t["person"] for t in tasks if t["person"]]}
    if not item.title and result.get("title"):
        item.title = str(result["title"])
    return item
