"""Our Card/Message rendered for DingTalk robots.

Text and markdown become the robot message templates `sampleText` / `sampleMarkdown`.
Cards become DingTalk's built-in `StandardCard` interactive card, which needs no
template made by hand in the card builder. A `request` button reports its press back
with the button's component id, so the id carries our button key (and, for an option
of a select, the select key and the option id). StandardCard has no select
component, so each option of a select becomes a button of its own that submits that
one choice.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cards.model import Button, Card, Message

ACTION_ID_PREFIX = "dx_"
# StandardCard samples only ever show these two button states.
_STATUS = {"primary": "primary", "default": "normal", "danger": "normal"}


def action_id(key: str, values: dict[str, list[str]] | None = None) -> str:
    """A component id that encodes a button key (and a select choice): letters, digits and '_'."""
    payload = [key] if not values else [key, values]
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return ACTION_ID_PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()


def parse_action_id(component_id: str) -> tuple[str, dict[str, list[str]]] | None:
    """(button key, select values) from an id made by `action_id`; None for anything else."""
    if not isinstance(component_id, str) or not component_id.startswith(ACTION_ID_PREFIX):
        return None
    body = component_id[len(ACTION_ID_PREFIX):].upper()
    if not body or len(body) > 2000:
        return None
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
        payload = json.loads(raw.decode())
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], str) or not payload[0]:
        return None
    values: dict[str, list[str]] = {}
    if len(payload) > 1:
        raw_values = payload[1]
        if not isinstance(raw_values, dict) or not all(
                isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
                for k, v in raw_values.items()):
            return None
        values = raw_values
    return payload[0], values


def _markdown_body(card: Card) -> str:
    lines: list[str] = []
    if card.body:
        lines.append(card.body)
    for k, v in card.fields:
        lines.append(f"**{k}**：{v}")
    if card.result:
        lines.append(f"✓ {card.result}")
    return "\n\n".join(lines) or card.title


def _button(button: Button, component_id: str) -> dict[str, Any]:
    return {
        "type": "button",
        "label": {"type": "text", "text": button.text, "id": f"{component_id}_label"},
        "actionType": "request",
        "status": _STATUS.get(button.style, "normal"),
        "id": component_id,
    }


def card_data(card: Card) -> dict[str, Any]:
    """The StandardCard `cardData` (before JSON encoding) for a card in its current state."""
    contents: list[dict[str, Any]] = [{"type": "markdown", "text": _markdown_body(card), "id": "dx_body"}]
    if not card.result:
        actions = [_button(b, action_id(b.key)) for b in card.buttons]
        if card.selects and card.submit is not None:
            for select in card.selects:
                contents.append({"type": "markdown", "text": f"**{select.title}**", "id": f"dx_sel_{len(contents)}"})
                for opt in select.options:
                    actions.append(_button(Button(key=card.submit.key, text=opt.text),
                                           action_id(card.submit.key, {select.key: [opt.id]})))
        if actions:
            contents.append({"type": "divider", "id": "dx_divider"})
            contents.append({"type": "action", "id": "dx_actions", "actions": actions})
    return {
        "config": {"autoLayout": True, "enableForward": False},
        "header": {"title": {"type": "text", "text": card.title}},
        "contents": contents,
    }


def robot_message(message: Message) -> tuple[str, dict[str, Any]]:
    """(msgKey, msgParam) of a text or markdown message for robot sends."""
    if message.kind == "markdown":
        return "sampleMarkdown", {"title": message.title or message.text[:20], "text": message.text}
    if message.kind == "text":
        return "sampleText", {"content": message.text}
    raise ValueError(f"{message.kind} is not a plain robot message")


def file_message(media_id: str, filename: str) -> tuple[str, dict[str, Any]]:
    """(msgKey, msgParam) of an uploaded file."""
    suffix = Path(filename).suffix.lstrip(".").lower() or "file"
    return "sampleFile", {"mediaId": media_id, "fileName": filename, "fileType": suffix}


def image_message(media_id: str) -> tuple[str, dict[str, Any]]:
    """(msgKey, msgParam) of an uploaded image; a media id is accepted as the photo URL."""
    return "sampleImageMsg", {"photoURL": media_id}


def session_webhook_body(message: Message) -> dict[str, Any]:
    """The body of a sessionWebhook reply (text or markdown only: it cannot carry cards)."""
    if message.kind == "markdown":
        return {"msgtype": "markdown", "markdown": {"title": message.title or message.text[:20], "text": message.text}}
    if message.kind == "text":
        return {"msgtype": "text", "text": {"content": message.text}}
    raise ValueError(f"{message.kind} cannot go through a session webhook")


def broadcast_markdown(message: Message) -> Message:
    """A shared card as markdown (its presses become replies); its update as a short text."""
    card = message.card
    assert card is not None
    if message.kind == "card_update":
        return Message(kind="text", text=f"✓ {card.result}" if card.result else card.title)
    lines = [f"### {card.title}"]
    if card.body:
        lines.append(card.body.replace("\n", "  \n"))
    lines += [f"- {k}：{v}" for k, v in card.fields]
    if card.buttons:
        lines.append("回复 " + " / ".join(f"「{b.text}」" for b in card.buttons))
    return Message(kind="markdown", title=card.title, text="\n\n".join(lines))
