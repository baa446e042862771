"""DingTalk callbacks and Stream frames → platform-neutral Events (or a refusal, nothing stored)."""
from __future__ import annotations

import json
import logging
from typing import Any

from bot.core.config import TenantConfig
from bot.core.events import Event
from bot.storable import UNSTORABLE, storable
from cards import dingtalk as render

log = logging.getLogger(__name__)


class InvalidCallback(ValueError):
    """A frame or request that is not a well-formed DingTalk callback; refused, nothing stored."""

# -- callbacks → events ---------------------------------------------------------------
def _str(d: dict[str, Any], key: str, *, required: bool = True) -> str:
    v = d.get(key)
    if isinstance(v, str) and v:
        return v
    if required:
        raise InvalidCallback(f"{key} missing or not a string")
    return ""


def robot_event(tenant: TenantConfig, data: Any) -> Event | None:
    """The Event of a robot message; None for a kind we do not read (pictures, audio …)."""
    if not isinstance(data, dict):
        raise InvalidCallback("robot message data is not an object")
    if not storable(data):
        raise InvalidCallback(f"robot message {UNSTORABLE}")
    msg_id = _str(data, "msgId")
    userid = _str(data, "senderStaffId")
    conv_type = data.get("conversationType")
    if conv_type not in ("1", "2"):
        raise InvalidCallback("conversationType is not '1' or '2'")
    msgtype = _str(data, "msgtype")
    robot_code = data.get("robotCode")
    assert tenant.dingtalk is not None
    if isinstance(robot_code, str) and robot_code and robot_code != tenant.dingtalk.robot_code:
        log.warning("dingtalk %s: message for robotCode %s, configured %s", tenant.key, robot_code,
                    tenant.dingtalk.robot_code)
    if msgtype == "text":
        text = data.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("content"), str):
            raise InvalidCallback("text message without text.content")
        content = text["content"]
    elif msgtype == "richText":
        parts = (data.get("content") or {}).get("richText") if isinstance(data.get("content"), dict) else None
        if not isinstance(parts, list):
            raise InvalidCallback("richText message without content.richText")
        content = "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    elif msgtype in ("picture", "file"):
        # content.downloadCode, exchanged with POST /v1.0/robot/messageFiles/download {downloadCode,
        # robotCode} for a downloadUrl (open.dingtalk.com … download-the-file-content-of-the-robot-
        # receiving-message); a file also has content.fileName. Files arrive in 1:1 chats only.
        media = data.get("content")
        code = media.get("downloadCode") if isinstance(media, dict) else None
        if not isinstance(code, str) or not code:
            raise InvalidCallback(f"{msgtype} message without content.downloadCode")
        assert isinstance(media, dict)
        name = media.get("fileName")
        return Event(tenant=tenant.key, platform="dingtalk", userid=userid, kind="file",
                     values={"ref": {"download_code": code}, "type": "image" if msgtype == "picture" else "file",
                             "filename": name if isinstance(name, str) else ""},
                     hint=_reply_hint(data, conv_type), dedup_key=f"msg:{msg_id}")
    else:
        log.info("dingtalk %s: ignoring a %s message from %s", tenant.key, msgtype, userid)
        return None
    at_users = data.get("atUsers") or []
    if not isinstance(at_users, list):
        raise InvalidCallback("atUsers is not a list")
    robot_id = data.get("chatbotUserId")
    mentions: list[str] = []
    for u in at_users:
        if not isinstance(u, dict) or (robot_id and u.get("dingtalkId") == robot_id):
            continue
        staff = u.get("staffId")
        if isinstance(staff, str) and staff and staff not in mentions:
            mentions.append(staff)
    return Event(tenant=tenant.key, platform="dingtalk", userid=userid, kind="text", text=content.strip(),
                 mentions=mentions, hint=_reply_hint(data, conv_type), dedup_key=f"msg:{msg_id}")


def _reply_hint(data: dict[str, Any], conv_type: str) -> dict[str, Any]:
    hint: dict[str, Any] = {"conversation_id": data.get("conversationId") if isinstance(data.get("conversationId"), str) else "",
                            "conversation_type": conv_type}
    webhook, expires = data.get("sessionWebhook"), data.get("sessionWebhookExpiredTime")
    if isinstance(webhook, str) and webhook.startswith(("https://", "http://")) and isinstance(expires, int):
        hint["session_webhook"] = webhook
        hint["expires"] = expires
    return hint


def _json_field(data: dict[str, Any], key: str) -> Any:
    v = data.get(key)
    if isinstance(v, str) and v:
        try:
            return json.loads(v)
        except ValueError:
            raise InvalidCallback(f"{key} is not JSON") from None
    return v


def card_event(tenant: TenantConfig, data: Any) -> Event:
    """The Event of a card button press (card instance callback)."""
    if not isinstance(data, dict):
        raise InvalidCallback("card callback data is not an object")
    if not storable(data):
        raise InvalidCallback(f"card callback {UNSTORABLE}")
    card_id = _str(data, "outTrackId")
    userid = _str(data, "userId")
    if data.get("userIdType", 1) not in (1, "1"):
        raise InvalidCallback("card callback userId is not a staff id (userIdType != 1)")
    action: dict[str, Any] | None = None
    for key in ("value", "content"):
        parsed = _json_field(data, key)
        if isinstance(parsed, dict) and isinstance(parsed.get("cardPrivateData"), dict):
            action = parsed["cardPrivateData"]
            break
    if action is None:
        raise InvalidCallback("card callback without cardPrivateData")
    params = action.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidCallback("cardPrivateData.params is not an object")
    ids = action.get("actionIds") or []
    if not isinstance(ids, list):
        raise InvalidCallback("cardPrivateData.actionIds is not a list")
    decoded = next((d for d in (render.parse_action_id(i) for i in ids) if d is not None), None)
    if decoded is not None:
        action_key, chosen = decoded
        raw_action = next(i for i in ids if render.parse_action_id(i) is not None)
    elif isinstance(params.get("key"), str) and params["key"]:
        # The general template's buttons send `params.key` = our encoded button key.
        raw_action = params["key"]
        action_key, chosen = render.parse_action_id(raw_action) or (raw_action, {})
    else:
        raise InvalidCallback("card callback names no button of ours")
    values = {k: v for k, v in params.items() if k != "key"}
    values.update(chosen)
    return Event(tenant=tenant.key, platform="dingtalk", userid=userid, kind="action", card_id=card_id,
                 action_key=action_key, values=values, hint={"out_track_id": card_id},
                 dedup_key=f"card:{card_id}:{userid}:{raw_action}"[:255])


def frame_problem(frame: dict[str, Any]) -> str:
    headers = frame["headers"]
    if frame.get("type") not in ("SYSTEM", "EVENT", "CALLBACK"):
        return f"unknown type {frame.get('type')!r}"
    if not isinstance(headers.get("messageId"), str) or not headers["messageId"]:
        return "no messageId"
    if not isinstance(headers.get("topic"), str):
        return "no topic"
    for key in ("time", "eventBornTime"):
        if key in headers and not (str(headers[key]).isascii() and str(headers[key]).isdigit()):
            return f"{key} is not milliseconds"
    data = frame.get("data", "")
    if not isinstance(data, str):
        return "data is not a JSON string"
    if data:
        try:
            parsed = json.loads(data)
        except ValueError:
            return "data is not JSON"
        if not isinstance(parsed, dict):
            return "data is not a JSON object"
    elif frame["type"] == "CALLBACK":
        return "callback without data"
    return ""


