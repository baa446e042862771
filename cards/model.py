"""Platform-neutral outbound messages.

Handlers build these; the outbox stores them as JSON; each adapter renders them
to its platform's wire format (WeCom template_card, DingTalk card, console JSON).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cards import texts

ButtonStyle = Literal["primary", "default", "danger"]


@dataclass(frozen=True)
class Button:
    key: str
    text: str
    style: ButtonStyle = "default"


@dataclass(frozen=True)
class Link:
    """A button that opens a web page (the deliverable upload form) instead of reporting a press."""

    text: str
    url: str


@dataclass(frozen=True)
class Option:
    id: str
    text: str


@dataclass(frozen=True)
class Select:
    """A choice list on a card; submitted with the card's submit button."""

    key: str
    title: str
    options: tuple[Option, ...]
    multi: bool = False


@dataclass
class Card:
    title: str
    body: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    selects: list[Select] = field(default_factory=list)
    submit: Button | None = None
    # Set by the store when the card is issued; platforms echo it back on a press.
    id: str = ""
    # Shown instead of the buttons once the card has been answered.
    result: str = ""
    # One card shared by many recipients (the 09:30 prompt): identical outbox payloads,
    # so adapters can send it to up to 1000 (WeCom) or 20 (DingTalk) people per call.
    broadcast: bool = False
    # Buttons that open a page; where a platform has no such button they are a line with the address.
    links: list[Link] = field(default_factory=list)

    def as_text(self, locale: str = "zh") -> str:
        """A plain-text rendering, for logs, the console and text-only channels, punctuated for `locale`."""
        lines = [texts.t(locale, "render.title", title=self.title)]
        if self.body:
            lines.append(self.body)
        lines += [texts.t(locale, "render.field", label=k, value=v) for k, v in self.fields]
        for s in self.selects:
            lines.append(texts.t(locale, "render.field", label=s.title, value=" / ".join(o.text for o in s.options)))
        if self.result:
            lines.append(f"✓ {self.result}")
        elif self.buttons:
            lines.append(" ".join(f"[{b.text}]" for b in self.buttons))
        if self.submit and not self.result:
            lines.append(f"[{self.submit.text}]")
        if not self.result:
            lines += [f"{link.text}：{link.url}" for link in self.links]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fields"] = [list(f) for f in self.fields]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Card":
        return cls(
            title=d["title"],
            body=d.get("body", ""),
            fields=[(k, v) for k, v in d.get("fields", [])],
            buttons=[Button(**b) for b in d.get("buttons", [])],
            selects=[
                Select(key=s["key"], title=s["title"], multi=s.get("multi", False),
                       options=tuple(Option(**o) for o in s["options"]))
                for s in d.get("selects", [])
            ],
            submit=Button(**d["submit"]) if d.get("submit") else None,
            id=d.get("id", ""),
            result=d.get("result", ""),
            broadcast=d.get("broadcast", False),
            links=[Link(**link) for link in d.get("links", [])],
        )


@dataclass
class Message:
    """One outbound message to one person.

    kind: text | markdown | card | card_update | file
    - text/markdown: `text` (markdown also `title`)
    - card: `card`
    - card_update: `card` is the card's new state (same id); `hint` carries what the
      platform needs to update it (WeCom ResponseCode from the press)
    - file: `path` of a file on disk, `filename`, `text` as caption
    """

    kind: Literal["text", "markdown", "card", "card_update", "file", "image"]
    text: str = ""
    title: str = ""
    card: Card | None = None
    path: str = ""
    filename: str = ""
    hint: dict[str, Any] = field(default_factory=dict)

    def plain(self, locale: str = "zh") -> str:
        if self.card is not None:
            return self.card.as_text(locale)
        if self.kind in ("file", "image"):
            return f"{self.text}\n📎 {self.filename}".strip()
        return self.text

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for k in ("text", "title", "path", "filename"):
            if getattr(self, k):
                d[k] = getattr(self, k)
        if self.card is not None:
            d["card"] = self.card.to_dict()
        if self.hint:
            d["hint"] = self.hint
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Message":
        return cls(
            kind=d["kind"],
            text=d.get("text", ""),
            title=d.get("title", ""),
            card=Card.from_dict(d["card"]) if d.get("card") else None,
            path=d.get("path", ""),
            filename=d.get("filename", ""),
            hint=d.get("hint", {}),
        )


def text(t: str) -> Message:
    return Message(kind="text", text=t)


def markdown(title: str, t: str) -> Message:
    return Message(kind="markdown", title=title, text=t)
