"""Our Card/Message rendered for DingTalk robots.

Text and markdown become the robot message templates `sampleText` / `sampleMarkdown`.
Cards become 消息卡片高级版 instances of one general template made in the card builder
(docs/dingtalk-card-template.json): every card the bot sends fills the same
`cardParamMap` — a title, a markdown body, up to MAX_ROWS key-value rows, a result
line and up to MAX_BUTTONS buttons whose label, visibility, style and callback key are
template variables. cardParamMap values are strings: keys ≤100 bytes, values ≤1 KB
(create-and-deliver-cards page). A button's press reports `params.key`, which carries
our button key (and, for an option of a select, the select key and the option id);
the card has no select component, so each option becomes a button of its own.

Until a template id is configured, cards go out as markdown that names the words to
type instead of pressing (`card_markdown`).

A card's links (`Card.links`) go into the markdown body as `[text](url)` lines: the general
template's buttons are `request` buttons whose action type is fixed in the template, and whether
a template variable may switch one to `openLink` is not documented (protocols.md, StandardCard's
`actionType: "request" | "openLink"` is a fixed field of the card data), so no button is assumed.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from cards import texts
from cards.model import Button, Card, Message

ACTION_ID_PREFIX = "dx_"


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


MAX_ROWS = 6
MAX_BUTTONS = 10
PARAM_VALUE_MAX_BYTES = 1024
_STYLE = {"primary": "primary", "default": "normal", "danger": "danger"}
# CommonMark's backslash escapes, for the characters that make markup anywhere in a line,
# and for those that do only at its start (headings, lists, quotes, numbered lists). Escaped,
# `[登录](http://e.cn)` stays text instead of becoming a link with a hidden address.
_MD_INLINE = re.compile(r"([\\`*_\[\]<>~|])")
_MD_NUMBERED = re.compile(r"\d+(?=[.)])")


def escape_markdown(text: str) -> str:
    """User text made inert inside DingTalk markdown: markup characters backslash-escaped."""
    return _escape_line_starts(_MD_INLINE.sub(r"\\\1", text))


def _escape_line_starts(text: str) -> str:
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip(" \t")
        lead = line[:len(line) - len(stripped)]
        m = _MD_NUMBERED.match(stripped)
        if m:
            stripped = stripped[:m.end()] + "\\" + stripped[m.end():]
        elif stripped[:1] in ("#", "+", "-", "=", ">"):
            stripped = "\\" + stripped
        out.append(lead + stripped)
    return "\n".join(out)


def _clip(value: str) -> str:
    raw = value.encode()
    if len(raw) <= PARAM_VALUE_MAX_BYTES:
        return value
    return raw[:PARAM_VALUE_MAX_BYTES - 3].decode(errors="ignore") + "…"


def card_buttons(card: Card) -> list[tuple[Button, str]]:
    """(button, callback key) of a card's buttons; a select's options become buttons of their own."""
    out = [(b, action_id(b.key)) for b in card.buttons]
    if card.selects and card.submit is not None:
        for select in card.selects:
            for opt in select.options:
                out.append((Button(key=card.submit.key, text=opt.text), action_id(card.submit.key, {select.key: [opt.id]})))
    return out


class CardTooBig(ValueError):
    """More rows or buttons than the general template has slots for."""


def card_params(card: Card) -> dict[str, str]:
    """The general template's cardParamMap for a card in its current state (every slot set)."""
    if len(card.fields) > MAX_ROWS:
        raise CardTooBig(f"card {card.title!r} has {len(card.fields)} rows; the template has {MAX_ROWS}")
    buttons = [] if card.result else card_buttons(card)
    if len(buttons) > MAX_BUTTONS:
        raise CardTooBig(f"card {card.title!r} has {len(buttons)} buttons; the template has {MAX_BUTTONS}")
    params: dict[str, str] = {
        "title": _clip(card.title),
        "body": _with_links(escape_markdown(card.body), card),
        "result": _clip(f"✓ {card.result}" if card.result else ""),
        "result_show": "true" if card.result else "false",
    }
    for i in range(1, MAX_ROWS + 1):
        k, v = card.fields[i - 1] if i <= len(card.fields) else ("", "")
        params.update({f"row{i}_key": _clip(k), f"row{i}_value": _clip(v),
                       f"row{i}_show": "true" if i <= len(card.fields) else "false"})
    for i in range(1, MAX_BUTTONS + 1):
        b, key = buttons[i - 1] if i <= len(buttons) else (Button(key="", text=""), "")
        params.update({f"btn{i}_text": _clip(b.text), f"btn{i}_key": key,
                       f"btn{i}_style": _STYLE.get(b.style, "normal"),
                       f"btn{i}_show": "true" if i <= len(buttons) else "false"})
    return params


def _link_lines(card: Card) -> list[str]:
    # The address is ours (never user text); brackets in the label are escaped like any text.
    return [] if card.result else [f"[{escape_markdown(link.text)}]({link.url})" for link in card.links]


def _with_links(body: str, card: Card) -> str:
    """The body clipped so that the links after it stay whole (a cut address is a wrong one)."""
    links = "  \n".join(_link_lines(card))
    if not links:
        return _clip(body)
    room = PARAM_VALUE_MAX_BYTES - len(links.encode()) - 3
    raw = body.encode()
    head = body if len(raw) <= room else raw[:max(room - 3, 0)].decode(errors="ignore") + "…"
    return f"{head}  \n{links}" if head else links


def robot_message(message: Message) -> tuple[str, dict[str, Any]]:
    """(msgKey, msgParam) of a text or markdown message for robot sends."""
    if message.kind == "markdown":
        return "sampleMarkdown", {"title": message.title or message.text[:20], "text": message.text}
    if message.kind == "text":
        return "sampleText", {"content": message.text}
    raise ValueError(f"{message.kind} is not a plain robot message")


# sampleFile.fileType takes only these (robot-message-type page); other files go zipped.
SAMPLE_FILE_TYPES = frozenset({"xlsx", "pdf", "zip", "rar", "doc", "docx"})


def file_type(filename: str) -> str:
    return Path(filename).suffix.lstrip(".").lower()


def file_message(media_id: str, filename: str) -> tuple[str, dict[str, Any]]:
    """(msgKey, msgParam) of an uploaded file of a documented type."""
    suffix = file_type(filename)
    if suffix not in SAMPLE_FILE_TYPES:
        raise ValueError(f"sampleFile cannot carry a .{suffix} file")
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


def card_markdown(message: Message, locale: str = "zh") -> Message:
    """A card as markdown, its buttons as the words to type; its update as a short text; in `locale`.

    Used for shared cards (the 09:30 prompt goes by batchSend, 20 people a call) and for
    every card while no template id is configured. User text is escaped.
    """
    card = message.card
    assert card is not None
    if message.kind == "card_update":
        return Message(kind="text", text=f"✓ {card.result}" if card.result else card.title)
    lines = [f"### {escape_markdown(card.title)}"]
    if card.body:
        lines.append(escape_markdown(card.body).replace("\n", "  \n"))
    lines += ["- " + texts.t(locale, "render.field", label=escape_markdown(k), value=escape_markdown(v))
              for k, v in card.fields]
    for select in card.selects:
        lines.append(texts.t(locale, "render.field", label=f"**{escape_markdown(select.title)}**",
                             value=" / ".join(escape_markdown(o.text) for o in select.options)))
    if card.buttons and not card.result:
        words = " / ".join(texts.t(locale, "render.word", word=b.text) for b in card.buttons)
        lines.append(texts.t(locale, "render.reply_with", words=words))
    lines += _link_lines(card)
    if card.result:
        lines.append(f"✓ {escape_markdown(card.result)}")
    return Message(kind="markdown", title=card.title, text="\n\n".join(lines))

