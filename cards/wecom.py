"""Renders platform-neutral messages and cards to WeCom `message/send` bodies.

Hard limits (list lengths, byte limits of keys and ids) raise CardRenderError,
because a clipped key or id would no longer route a press. The documented
display lengths ("建议不超过…") are applied by clipping the visible text.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from cards import texts
from cards.model import Button, Card, Link, Message, Select

log = logging.getLogger(__name__)

TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 2048

TITLE_MAX_CHARS = 36
SUB_TITLE_MAX_CHARS = 160
H_KEYNAME_MAX_CHARS = 5
H_VALUE_MAX_CHARS = 30
H_LIST_MAX = 6
BUTTON_TEXT_MAX_CHARS = 10
BUTTONS_MAX = 6
KEY_MAX_BYTES = 1024
TASK_ID_MAX_BYTES = 128
OPTION_ID_MAX_BYTES = 128
CHECKBOX_OPTIONS_MAX = 20
CHECKBOX_TEXT_MAX_CHARS = 17
SELECT_LISTS_MAX = 3
SELECT_OPTIONS_MAX = 10
SELECT_TEXT_MAX_CHARS = 16
SELECT_TITLE_MAX_CHARS = 16
REPLACE_TEXT_MAX_CHARS = 10

TASK_ID_RE = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")

# Button styles 1..4 are 强调 / 次强调 / 中性 / 负向 (the official image, WWdoc 90372 copies); a wrong or
# missing style is 1. Declining and danger buttons are 负向 (4), never 中性 (3).
BUTTON_STYLE = {"primary": 1, "default": 2, "danger": 4}



def default_submit(locale: str = "zh") -> Button:
    """The submit button of a card with selects that names none of its own."""
    return Button(key="submit", text=texts.t(locale, "render.submit"), style="primary")


def truncated_mark(locale: str = "zh") -> str:
    return texts.t(locale, "render.truncated")


class CardRenderError(ValueError):
    """The message cannot be expressed within WeCom's limits (never retried)."""


def clip_bytes(text: str, limit: int, mark: str = "") -> str:
    """At most `limit` UTF-8 bytes, cut on a character boundary, with a visible mark if cut
    (`truncated_mark()` unless one is given)."""
    mark = mark or truncated_mark()
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    room = limit - len(mark.encode("utf-8"))
    if room <= 0:
        return raw[:limit].decode("utf-8", "ignore")
    return raw[:room].decode("utf-8", "ignore") + mark


def clip_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _check_bytes(value: str, limit: int, what: str) -> str:
    if not value:
        raise CardRenderError(f"{what} is empty")
    if len(value.encode("utf-8")) > limit:
        raise CardRenderError(f"{what} is longer than {limit} bytes")
    return value


def render_text(text: str, locale: str = "zh") -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": clip_bytes(text or " ", TEXT_MAX_BYTES, truncated_mark(locale))}}


def render_markdown(title: str, text: str, locale: str = "zh") -> dict[str, Any]:
    content = f"**{title}**\n{text}" if title else text
    return {"msgtype": "markdown",
            "markdown": {"content": clip_bytes(content or " ", MARKDOWN_MAX_BYTES, truncated_mark(locale))}}


def task_id_for(card: Card) -> str:
    """The card's id when WeCom accepts it; a stable derived id otherwise."""
    if card.id and TASK_ID_RE.match(card.id) and len(card.id.encode()) <= TASK_ID_MAX_BYTES:
        return card.id
    digest = hashlib.sha1(json.dumps(card.to_dict(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    log.warning("card id %r is not a valid WeCom task_id; using a derived one", card.id)
    return "x" + digest[:40]


def is_interactive(card: Card) -> bool:
    return bool(card.buttons or card.selects)


def _common(card: Card, card_type: str, locale: str) -> dict[str, Any]:
    horizontal: list[dict[str, Any]] = []
    overflow: list[str] = []
    for key, value in card.fields:
        if (len(horizontal) < H_LIST_MAX and 0 < len(key) <= H_KEYNAME_MAX_CHARS
                and len(value) <= H_VALUE_MAX_CHARS):
            horizontal.append({"keyname": key, "value": value or "-"})
        else:
            overflow.append(texts.t(locale, "render.field", label=key, value=value))
    sub = "\n".join([p for p in [card.body, *overflow] if p])
    body: dict[str, Any] = {
        "card_type": card_type,
        "main_title": {"title": clip_chars(card.title or " ", TITLE_MAX_CHARS)},
        "task_id": task_id_for(card),
    }
    if sub:
        body["sub_title_text"] = clip_chars(sub, SUB_TITLE_MAX_CHARS)
    if horizontal:
        body["horizontal_content_list"] = horizontal
    return body


def _button(b: Button) -> dict[str, Any]:
    return {"text": clip_chars(b.text, BUTTON_TEXT_MAX_CHARS), "style": BUTTON_STYLE.get(b.style, 2),
            "key": _check_bytes(b.key, KEY_MAX_BYTES, "button key"), "type": 0}


def _link(link: Link) -> dict[str, Any]:
    # button_list type 1 opens `url` (required for type 1; no key) — WWdoc 90236, protocols.md
    # "template_card shapes" [S]. The url is clipped by nobody: an address cut short is a wrong one.
    if not link.url.startswith(("https://", "http://")):
        raise CardRenderError(f"a link button needs an http(s) address, not {link.url[:40]!r}")
    return {"text": clip_chars(link.text, BUTTON_TEXT_MAX_CHARS), "style": BUTTON_STYLE.get("default", 2),
            "type": 1, "url": link.url}


def _submit(card: Card, locale: str) -> dict[str, Any]:
    b = card.submit or default_submit(locale)
    return {"text": clip_chars(b.text, BUTTON_TEXT_MAX_CHARS), "key": _check_bytes(b.key, KEY_MAX_BYTES, "submit key")}


def _option_id(oid: str) -> str:
    return _check_bytes(oid, OPTION_ID_MAX_BYTES, "option id")


def _checkbox(sel: Select, *, disabled: bool = False) -> dict[str, Any]:
    if len(sel.options) > CHECKBOX_OPTIONS_MAX:
        raise CardRenderError(f"select {sel.key!r} has more than {CHECKBOX_OPTIONS_MAX} options")
    box: dict[str, Any] = {
        "question_key": _check_bytes(sel.key, KEY_MAX_BYTES, "select key"),
        "option_list": [{"id": _option_id(o.id), "text": clip_chars(o.text, CHECKBOX_TEXT_MAX_CHARS),
                         "is_checked": False} for o in sel.options],
        "mode": 1 if sel.multi else 0,
    }
    if disabled:
        box["disable"] = True
    return box


def _select_list(selects: list[Select], *, disabled: bool = False) -> list[dict[str, Any]]:
    out = []
    for sel in selects:
        if len(sel.options) > SELECT_OPTIONS_MAX:
            raise CardRenderError(f"select {sel.key!r} has more than {SELECT_OPTIONS_MAX} options")
        if sel.multi:
            log.warning("WeCom drop-down lists are single choice; select %r loses multi", sel.key)
        item: dict[str, Any] = {
            "question_key": _check_bytes(sel.key, KEY_MAX_BYTES, "select key"),
            "title": clip_chars(sel.title, SELECT_TITLE_MAX_CHARS),
            "option_list": [{"id": _option_id(o.id), "text": clip_chars(o.text, SELECT_TEXT_MAX_CHARS)}
                            for o in sel.options],
        }
        if disabled:
            item["disable"] = True
        out.append(item)
    return out


def render_template_card(card: Card, *, answered: bool = False, fresh: bool = False,
                         locale: str = "zh") -> dict[str, Any]:
    """The template_card object of an interactive card (its answered state when `answered`), with
    the words the card itself does not say (the submit button, field punctuation) in `locale`.

    `fresh`: the answered state as a new message (after the response_code was used or expired):
    replace_text exists only in updates, so the result goes in the text.
    """
    if card.selects:
        if card.buttons:
            log.warning("card %s has selects and buttons; WeCom shows only the selects", card.id)
        if len(card.selects) == 1:
            body = _common(card, "vote_interaction", locale)
            body["checkbox"] = _checkbox(card.selects[0], disabled=answered)
        else:
            if len(card.selects) > SELECT_LISTS_MAX:
                raise CardRenderError(f"a card holds at most {SELECT_LISTS_MAX} selects")
            body = _common(card, "multiple_interaction", locale)
            body["select_list"] = _select_list(card.selects, disabled=answered)
        body["submit_button"] = _submit(card, locale)
    elif card.buttons:
        links = [] if answered else card.links
        if len(card.buttons) + len(links) > BUTTONS_MAX:
            raise CardRenderError(f"a card holds at most {BUTTONS_MAX} buttons")
        keys = [b.key for b in card.buttons]
        if len(set(keys)) != len(keys):
            raise CardRenderError("button keys repeat")
        body = _common(card, "button_interaction", locale)
        body["button_list"] = [_button(b) for b in card.buttons] + [_link(link) for link in links]
    else:
        raise CardRenderError("a card without buttons or selects is sent as text")
    if fresh and card.result:
        sub = "\n".join(p for p in [body.get("sub_title_text", ""), f"✓ {card.result}"] if p)
        body["sub_title_text"] = clip_chars(sub, SUB_TITLE_MAX_CHARS)
    elif answered and card.result:
        # The grey, unclickable button shows the short result; the full one goes in the text.
        body["replace_text"] = clip_chars(card.result, REPLACE_TEXT_MAX_CHARS)
        if len(card.result) > REPLACE_TEXT_MAX_CHARS:
            sub = "\n".join(p for p in [body.get("sub_title_text", ""), f"✓ {card.result}"] if p)
            body["sub_title_text"] = clip_chars(sub, SUB_TITLE_MAX_CHARS)
    return body


def render_message(message: Message, locale: str = "zh") -> dict[str, Any]:
    """The msgtype part of a message/send body (without touser/agentid) for text, markdown and cards."""
    if message.kind == "text":
        return render_text(message.text, locale)
    if message.kind == "markdown":
        return render_markdown(message.title, message.text, locale)
    if message.kind == "card":
        if message.card is None:
            raise CardRenderError("card message without a card")
        if not is_interactive(message.card) or message.card.result:
            return render_text(message.card.as_text(locale), locale)
        return {"msgtype": "template_card", "template_card": render_template_card(message.card, locale=locale)}
    raise CardRenderError(f"{message.kind} is not rendered as a single message/send body")


def render_card_update(card: Card, *, userid: str, agent_id: int, response_code: str,
                       locale: str = "zh") -> dict[str, Any]:
    """A message/update_template_card body that replaces the pressed card with its new state."""
    if not is_interactive(card):
        raise CardRenderError("only interactive cards can be updated")
    return {
        "userids": [userid],
        "agentid": agent_id,
        "response_code": response_code,
        "enable_id_trans": 0,
        "template_card": render_template_card(card, answered=bool(card.result), locale=locale),
    }
